"""The reference test loop: repetitions over the shuffled test loader, metrics, mean and 95% intervals.

T2M_EVALUATOR_SPEC §5: per batch, co-embeddings of the ground truth and of the generated motions (zeroed beyond
each length); after the pass MultiModality (optional), Diversity real, Diversity generated — in that order, from
the global NumPy RNG — then FID against the same repetition's GT embeddings, R-precision and MM-Dist (matching
score). The log lines and summary block use the reference's format so logs can be compared line by line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...motion.features import recover_from_ric
from . import metrics as M

Generator = Callable[[tuple], torch.Tensor]
"""batch (the loader's 7-tuple) → generated motions [B, T, D], normalised with the evaluator statistics."""

SUMMARY_KEYS = ("fid", "diversity", "r_precision_top1", "r_precision_top2", "r_precision_top3", "mm_dist",
                "multimodality")
"""Documented metric keys of `ProtocolResult.summary` (each ``{"mean": float, "conf95": float}``)."""


@dataclass
class ProtocolResult:
    per_repetition: list[dict] = field(default_factory=list)
    summary: dict[str, dict[str, float | None]] = field(default_factory=dict)
    log: str = ""

    def to_dict(self) -> dict:
        return {"summary": self.summary, "per_repetition": self.per_repetition}


def zero_beyond(motions: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
    """Frames ≥ m set to 0 (normalised space), as the reference does before scoring generated motions."""
    keep = torch.arange(motions.shape[1], device=motions.device)[None, :] < m_lens.to(motions.device)[:, None]
    return motions * keep[..., None].to(motions.dtype)


def _mae(gt: torch.Tensor, pred: torch.Tensor, m_lens: torch.Tensor, inv_transform: Callable, joints_num: int
         ) -> tuple[float, int]:
    """Σ over samples of m·(mean |joints_gt − joints_pred| over the first m frames), and Σ m."""
    gt_raw, pred_raw = inv_transform(gt.float().cpu()), inv_transform(pred.float().cpu())
    total, frames = 0.0, 0
    for i, m in enumerate(m_lens.tolist()):
        jg = recover_from_ric(gt_raw[i, :m], joints_num)
        jp = recover_from_ric(pred_raw[i, :m], joints_num)
        total += float((jg - jp).abs().mean()) * m
        frames += m
    return total, frames


def one_repetition(evaluator, batches: Iterable[tuple], generate: Generator, inv_transform: Callable,
                   cal_mm: bool = False, mm_batches: int = 3, mm_repeats: int = 30, mm_times: int = 10,
                   joints_num: int | None = None, diversity_times: int | None = None) -> dict:
    """One pass; returns the reference's per-repetition values (and the 'real' ones).

    ``diversity_times`` overrides the reference's 300/100 pair count (only for reduced smoke-test protocols).
    """
    gt_all, gen_all, mm_acts = [], [], []
    top_real, top_gen = np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64)
    match_real, match_gen = 0, 0
    mae_sum, mae_frames, n = 0.0, 0, 0
    for b, batch in enumerate(batches):
        word, pos, _, sent_len, motions, m_lens, _ = batch
        m_lens = torch.as_tensor(m_lens)
        text_emb, gt_emb = evaluator.get_co_embeddings(word, pos, sent_len, motions, m_lens)
        reps = mm_repeats if cal_mm and b < mm_batches else 1
        embs = []
        for _ in range(reps):
            pred = zero_beyond(generate(batch), m_lens)
            _, gen_emb = evaluator.get_co_embeddings(word, pos, sent_len, pred, m_lens)
            embs.append(gen_emb)
        if reps > 1:
            mm_acts.append(torch.stack(embs, dim=1).cpu().numpy())
        text_np, gt_np, gen_np = (t.float().cpu().numpy() for t in (text_emb, gt_emb, embs[-1]))
        counts, trace = M.r_precision_counts(text_np, gt_np)
        top_real += counts
        match_real += np.float32(trace)
        counts, trace = M.r_precision_counts(text_np, gen_np)
        top_gen += counts
        match_gen += np.float32(trace)
        gt_all.append(gt_np)
        gen_all.append(gen_np)
        s, f = _mae(motions, pred, m_lens, inv_transform, joints_num or (motions.shape[-1] + 1) // 12)
        mae_sum, mae_frames, n = mae_sum + s, mae_frames + f, n + len(m_lens)
    if n == 0:
        raise ValueError("the loader produced no batch (fewer items than one batch?)")
    gt_all, gen_all = np.concatenate(gt_all), np.concatenate(gen_all)
    mm = M.multimodality(np.concatenate(mm_acts), mm_times) if cal_mm and mm_acts else 0.0
    times = diversity_times or M.diversity_times(n)
    div_real = M.diversity(gt_all, times)
    div = M.diversity(gen_all, times)
    return {
        "fid": M.fid(gt_all, gen_all), "div_real": div_real, "div": div,
        "top_real": (top_real / n).tolist(), "top": (top_gen / n).tolist(),
        "matching_real": float(match_real / n), "matching": float(match_gen / n),
        "mae": mae_sum / mae_frames, "mm": float(mm), "samples": n,
    }


def repetition_line(i: int, r: dict) -> str:
    """The reference's per-repetition log line."""
    tr, tg = r["top_real"], r["top"]
    return (f"--> \t Eva. Repeat {i} : FID. {r['fid']:.4f}, Diversity Real. {r['div_real']:.4f}, "
            f"Diversity. {r['div']:.4f}, R_precision_real. ({tr[0]:.4f}, {tr[1]:.4f}, {tr[2]:.4f}), "
            f"R_precision. ({tg[0]:.4f}, {tg[1]:.4f}, {tg[2]:.4f}), matching_real. {r['matching_real']:.4f}, "
            f"matching_pred. {r['matching']:.4f}, mae. {r['mae']:.4f}, Multimodality. {r['mm']:.4f}")


def summarise(reps: list[dict], cal_mm: bool) -> dict[str, dict[str, float | None]]:
    """Mean and 1.96·σ/√n (population σ) per metric; the ``*_real`` entries score GT against GT."""
    def mc(values: list[float]) -> dict[str, float]:
        mean, conf = M.mean_conf(values)
        return {"mean": mean, "conf95": conf}

    out = {"fid": mc([r["fid"] for r in reps]), "diversity": mc([r["div"] for r in reps])}
    for k in range(3):
        out[f"r_precision_top{k + 1}"] = mc([r["top"][k] for r in reps])
    out["mm_dist"] = mc([r["matching"] for r in reps])
    out["multimodality"] = mc([r["mm"] for r in reps]) if cal_mm else {"mean": None, "conf95": None}
    out["diversity_real"] = mc([r["div_real"] for r in reps])
    for k in range(3):
        out[f"r_precision_top{k + 1}_real"] = mc([r["top_real"][k] for r in reps])
    out["mm_dist_real"] = mc([r["matching_real"] for r in reps])
    out["mae"] = mc([r["mae"] for r in reps])
    return out


def summary_block(reps: list[dict]) -> str:
    """The reference's summary lines (MultiModality prints 0 when it was not computed)."""
    def mc(key: str, k: int | None = None) -> tuple[float, float]:
        return M.mean_conf([r[key] if k is None else r[key][k] for r in reps])

    fid, div, mat, mm = mc("fid"), mc("div"), mc("matching"), mc("mm")
    t1, t2, t3 = mc("top", 0), mc("top", 1), mc("top", 2)
    return (f"\tFID: {fid[0]:.3f}, conf. {fid[1]:.3f}\n"
            f"\tDiversity: {div[0]:.3f}, conf. {div[1]:.3f}\n"
            f"\tTOP1: {t1[0]:.3f}, conf. {t1[1]:.3f}, TOP2. {t2[0]:.3f}, conf. {t2[1]:.3f}, "
            f"TOP3. {t3[0]:.3f}, conf. {t3[1]:.3f}\n"
            f"\tMatching: {mat[0]:.3f}, conf. {mat[1]:.3f}\n"
            f"\tMultimodality: {mm[0]:.3f}, conf. {mm[1]:.3f}\n\n\n")


def run_protocol(evaluator, loader: Iterable[tuple], generate: Generator, inv_transform: Callable,
                 repeat_time: int = 20, cal_mm: bool = False, mm_batches: int = 3, mm_repeats: int = 30,
                 mm_times: int = 10, numpy_seed: int | None = None, log_file: Path | None = None,
                 echo: Callable[[str], None] | None = print, diversity_times: int | None = None
                 ) -> ProtocolResult:
    """``repeat_time`` passes over ``loader`` (iterated afresh each time); the global NumPy RNG is seeded once."""
    if numpy_seed is not None:
        np.random.seed(numpy_seed)
    result = ProtocolResult()
    lines = []
    for i in range(repeat_time):
        r = one_repetition(evaluator, loader, generate, inv_transform, cal_mm, mm_batches, mm_repeats, mm_times,
                           diversity_times=diversity_times)
        r["msg"] = repetition_line(i, r)
        result.per_repetition.append(r)
        lines.append(r["msg"])
        if echo:
            echo(r["msg"])
    block = summary_block(result.per_repetition)
    if echo:
        echo(block.rstrip("\n"))
    result.summary = summarise(result.per_repetition, cal_mm)
    result.log = "".join(line + "\n" for line in lines) + block
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        Path(log_file).write_text(result.log, encoding="utf-8")
    return result


class SaladGenerator:
    """Generates a batch with a SALAD pipeline as the reference's batched sampler does (SALAD_SPEC §4).

    z_T ~ N(0, I) of the full 196-frame latent, masked by each length; one batched CFG forward per step; VAE
    decode to 196 frames. The output is re-expressed in the evaluator's normalisation if the model's statistics
    differ (identity for models trained with the ``meta/`` pair, as the reference's are).
    """

    def __init__(self, pipeline, eval_mean: np.ndarray, eval_std: np.ndarray, steps: int = 50,
                 guidance: float = 7.5, seed: int = 1234, scheduler: str = "ddim", max_motion_length: int = 196):
        self.pipe, self.steps, self.guidance, self.scheduler = pipeline, steps, guidance, scheduler
        self.t_lat = max_motion_length // 4
        self.gen = torch.Generator().manual_seed(seed)
        dev = pipeline.device
        em, es = torch.as_tensor(eval_mean, dtype=torch.float32), torch.as_tensor(eval_std, dtype=torch.float32)
        pm, ps = pipeline.mean.float().cpu(), pipeline.std.float().cpu()
        if em.shape != pm.shape:
            raise ValueError(f"the model makes {pm.shape[0]}-dim motions, the benchmark uses {em.shape[0]}")
        self.restat = None if (torch.equal(em, pm) and torch.equal(es, ps)) else \
            (pm.to(dev), ps.to(dev), em.to(dev), es.to(dev))

    @torch.no_grad()
    def __call__(self, batch: tuple) -> torch.Tensor:
        from ...runtime.sampling import latent_mask, sample

        captions, m_lens = list(batch[2]), torch.as_tensor(batch[5])
        pipe, n = self.pipe, len(captions)
        mask = latent_mask(m_lens, self.t_lat).to(pipe.device)
        z_T = torch.randn(n, self.t_lat, 7, pipe.denoiser.config.vae_dim, generator=self.gen).to(pipe.device)
        cond = pipe.text_context(captions)
        z = sample(pipe.denoiser, z_T, cond, pipe.text_context([""]).select([0] * n), self.guidance, self.steps,
                   self.scheduler, mask, diffusion=pipe.bundle.diffusion)
        x = pipe.vae.decode(z)
        if self.restat is not None:
            pm, ps, em, es = self.restat
            x = (x * ps + pm - em) / es
        return x.float().cpu()
