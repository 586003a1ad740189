"""Issue #7 statistics: reconstructing and editing *real* held-out clips through inversion.

``python -m salad_model.evaluation.eval real --model demo --out real.json --markdown real.md``
(29 min; ``--limit 24``: 13 min)

For every dataset-2 test clip (or a seeded sample: ``--limit N``; at most the model's length, the
middle of longer clips):

* reconstruction MPJPE (root-aligned, joints from features on both sides) of the VAE alone (mean
  latent), of plain DDIM inversion (guidance 1) and of DDIM inversion + null-text optimisation
  (guidance as sampling) — "inversion adds" is its excess over the VAE;
* a style word swap of each clip ("An elderly person walks forward." → "An energetic person walks
  forward."), classified: is the edit's style the target, and is the content label kept;
* a mirror of each clip, geometric (exact, the default) and through attention (the paper's row swap on
  the inverted motion): is the edit classified as the mirrored content label.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np

from ..training.data.captions import STYLES, _content_phrases, mirror_content
from .classifier import (
    HAND_SIDES,
    MotionClassifier,
    canonical_style,
    center_crop,
    generation_frames,
    load_split,
)
from .metrics import root_aligned_mpjpe, vae_roundtrip

# A contrasting target for every dataset-2 style (canonical labels; the swap must be visible to be measurable).
STYLE_TARGETS: dict[str, str] = {
    "old": "active", "active": "old", "tired": "youthful", "youthful": "tired",
    "normal": "old", "feminine": "masculinity", "masculinity": "feminine",
}


def style_caption(content: str, style: str) -> str:
    """A plain training-vocabulary caption whose subject carries the style: "An elderly person walks forward." """
    subject = STYLES[style].subjects[0]
    verb = _content_phrases(content)[0][0][0]
    text = f"{subject} {verb}."
    return text[0].upper() + text[1:]


def _mpjpe(pred: np.ndarray, target: np.ndarray) -> float:
    """Root-aligned mean per-joint position error (m) over all frames and joints."""
    return float(root_aligned_mpjpe(pred, target).mean())


INVERSIONS: dict[str, dict] = {  # name → invert() arguments (guidance None = the model's default)
    "ddim": {"guidance": 1.0, "null_text_iters": 0},
    "null_text": {"guidance": None, "null_text_iters": 10},
}


def _seeded_sample(n: int, k: int, seed: int) -> list[int]:
    """Sorted indices of a seeded sample of ``k`` of ``n`` items (all of them when ``k`` ≤ 0 or ≥ n)."""
    if k <= 0 or k >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), k))


def real_statistics(pipe, clf: MotionClassifier, data_dir: Path, limit: int = 0, steps: int = 50,
                    null_text_iters: int = 10, seed: int = 0, log=print, split: str = "test",
                    null_text_limit: int = 24) -> dict:
    """Reconstruction and edit statistics of real test clips (see the module docstring).

    ``limit`` ≤ 0 takes every eligible clip. Null-text inversion (≈ 5× the cost of the rest) runs on
    the seeded sample of ``null_text_limit`` clips that ``limit=null_text_limit`` would evaluate, so a
    larger run contains the smaller one.
    """
    eligible = [c for c in load_split(Path(data_dir), split) if c.dataset == 2 and c.style in STYLE_TARGETS]
    chosen = _seeded_sample(len(eligible), limit, seed)
    with_null_text = set(_seeded_sample(len(eligible), null_text_limit, seed)) if null_text_iters else set()
    settings = {name: {**kw, "null_text_iters": null_text_iters} if kw["null_text_iters"] else kw
                for name, kw in INVERSIONS.items()}
    rows = []
    t0 = time.time()
    for k, idx in enumerate(chosen):
        c = eligible[idx]
        inversions = {name: kw for name, kw in settings.items() if not kw["null_text_iters"] or idx in with_null_text}
        frames = generation_frames(len(c.features) + 1, pipe.min_frames, pipe.max_frames)
        feats = np.array(center_crop(c.features, frames)[: (min(frames, len(c.features)) // 4) * 4], np.float32)
        real = pipe._joints(feats)
        caption = style_caption(c.content, c.style)
        target = STYLE_TARGETS[c.style]
        edit_caption = style_caption(c.content, target)
        vae_f = vae_roundtrip(pipe.vae, pipe.mean, pipe.std, [feats])[0]
        motions = {"real": feats, "vae": vae_f}
        row = {"name": c.name, "content": c.content, "style": c.style, "frames": len(feats), "caption": caption,
               "edit_caption": edit_caption, "target_style": target,
               "mpjpe_vae_m": _mpjpe(pipe._joints(vae_f), real)}
        for name, kw in inversions.items():
            inv = pipe.invert(caption, features=feats, steps=steps, **kw)
            rec = pipe.reconstruct(inv)
            swap = pipe.edit_inverted(inv, edit_prompt=edit_caption)
            row[f"mpjpe_{name}_m"] = _mpjpe(rec.joints, real)
            row["swap_mode"] = swap.meta["edits"][0]["mode"]
            motions[f"{name}_rec"] = rec.features
            motions[f"{name}_swap"] = swap.features
            motions[f"{name}_mirror_attention"] = pipe.edit_inverted(inv, mirror="all", mirror_method="attention"
                                                                     ).features
        motions["mirror_geometric"] = pipe.edit_real(caption, features=feats, mirror="all").features
        p = clf.predict(list(motions.values()))
        keys = list(motions)
        row["pred_content"] = dict(zip(keys, (clf.config.contents[i] for i in p["content_prob"].argmax(-1)),
                                       strict=True))
        row["pred_style"] = dict(zip(keys, (clf.config.styles[i] for i in p["style_prob"].argmax(-1)), strict=True))
        row["side"] = dict(zip(keys, clf.side_scores(p["content_prob"]).tolist(), strict=True))
        rows.append(row)
        nt = f", null-text {row['mpjpe_null_text_m'] * 100:.2f} cm" if "mpjpe_null_text_m" in row else ""
        log(f"  real {k + 1}/{len(chosen)} {c.name}: VAE {row['mpjpe_vae_m'] * 100:.2f} cm, DDIM "
            f"{row['mpjpe_ddim_m'] * 100:.2f} cm{nt}; swap → "
            f"{row['pred_style']['ddim_swap']} / {row['pred_content']['ddim_swap']} ({time.time() - t0:.0f}s)")
    out = summarize_real(rows, steps, null_text_iters, time.time() - t0)
    out.update(split=split, guidance=pipe.default_guidance)
    return out


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (honest error bars for a few dozen clips)."""
    if n == 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def summarize_real(rows: list[dict], steps: int, null_text_iters: int, seconds: float) -> dict:
    """Aggregate per-clip rows into the model-card numbers.

    Each inversion is summarised over the rows that have it (null-text may cover a subset); its
    "adds" compares with the VAE error on the same rows.
    """
    def frac(pred, subset: list[dict] | None = None) -> float:
        sub = rows if subset is None else subset
        return float(np.mean([bool(pred(r)) for r in sub])) if sub else float("nan")

    def interval(pred, subset: list[dict]) -> tuple[float, float]:
        return wilson_interval(sum(bool(pred(r)) for r in subset), len(subset))

    hand = [r for r in rows if r["content"] in HAND_SIDES]
    out: dict = {"n": len(rows), "hand_clips": len(hand), "steps": steps, "null_text_iters": null_text_iters,
                 "seconds": round(seconds, 1), "rows": rows,
                 "mpjpe_vae_cm": float(np.mean([r["mpjpe_vae_m"] for r in rows]) * 100),
                 "real_content_correct": frac(lambda r: r["pred_content"]["real"] == r["content"]),
                 "real_style_correct": frac(lambda r: r["pred_style"]["real"] == canonical_style(r["style"]))}
    for inv in INVERSIONS:
        sub = [r for r in rows if f"mpjpe_{inv}_m" in r]
        sub_hand = [r for r in sub if r["content"] in HAND_SIDES]

        def target_ok(r: dict, i: str = inv) -> bool:
            return r["pred_style"][f"{i}_swap"] == canonical_style(r["target_style"])

        def content_ok(r: dict, i: str = inv) -> bool:
            return r["pred_content"][f"{i}_swap"] == r["content"]

        def swap_ok(r: dict) -> bool:
            return target_ok(r) and content_ok(r)

        out[inv] = {
            "n": len(sub),
            "mpjpe_cm": float(np.mean([r[f"mpjpe_{inv}_m"] for r in sub]) * 100) if sub else float("nan"),
            "mpjpe_vae_cm": float(np.mean([r["mpjpe_vae_m"] for r in sub]) * 100) if sub else float("nan"),
            "content_kept": frac(lambda r, i=inv: r["pred_content"][f"{i}_rec"] == r["content"], sub),
            "style_kept": frac(lambda r, i=inv: r["pred_style"][f"{i}_rec"] == canonical_style(r["style"]), sub),
            "swap_target_style": frac(target_ok, sub),
            "swap_style_changed": frac(lambda r, i=inv: r["pred_style"][f"{i}_swap"] != canonical_style(r["style"]),
                                       sub),
            "swap_content_kept": frac(content_ok, sub),
            "swap_success": frac(swap_ok, sub),
            "swap_success_ci95": interval(swap_ok, sub),
            "mirror_attention_success": frac(lambda r, i=inv: r["pred_content"][f"{i}_mirror_attention"]
                                             == mirror_content(r["content"]), sub),
            "mirror_attention_side_flipped_hand": frac(
                lambda r, i=inv: np.sign(r["side"][f"{i}_mirror_attention"]) == -np.sign(r["side"]["real"]),
                sub_hand)}
        out[inv]["mpjpe_adds_cm"] = out[inv]["mpjpe_cm"] - out[inv]["mpjpe_vae_cm"]
        pairs: dict[str, list[dict]] = {}
        for r in sub:
            pairs.setdefault(f"{canonical_style(r['style'])} → {canonical_style(r['target_style'])}", []).append(r)
        out[inv]["swap_by_pair"] = {
            k: {"n": len(v), "success": frac(swap_ok, v), "target_style": frac(target_ok, v),
                "content_kept": frac(content_ok, v)}
            for k, v in sorted(pairs.items())}

    def mirror_ok(r: dict) -> bool:
        return r["pred_content"]["mirror_geometric"] == mirror_content(r["content"])

    out["mirror_geometric_success"] = frac(mirror_ok)
    out["mirror_geometric_success_ci95"] = interval(mirror_ok, rows)
    out["mirror_geometric_side_flipped_hand"] = frac(
        lambda r: np.sign(r["side"]["mirror_geometric"]) == -np.sign(r["side"]["real"]), hand)
    return out


def format_real_markdown(r: dict) -> str:
    """The issue-#7 tables of the model card (default inversion: plain DDIM; null-text for comparison)."""
    def pct(x: float) -> str:
        return "n/a" if x != x else f"{100 * x:.1f}%"

    def ci(x: tuple[float, float]) -> str:
        return "" if x[0] != x[0] else f" (95% CI {100 * x[0]:.0f}–{100 * x[1]:.0f}%)"

    d, n = r["ddim"], r["null_text"]
    lines = [f"{r['n']} dataset-2 {r.get('split', 'test')} clips ({r['hand_clips']} one-handed), DDIM {r['steps']} "
             f"steps; null-text inversion with {r['null_text_iters']} iterations per step on {n['n']} of them "
             f"({r['seconds'] / 60:.1f} min in all).", "",
             f"| reconstruction of real clips (no edit), root-aligned MPJPE | DDIM inversion, guidance 1 (default), "
             f"{d['n']} clips | DDIM + null-text, guidance {r.get('guidance', 7.5):g}, {n['n']} clips |",
             "|---|---|---|",
             f"| VAE only (mean latent) | {d['mpjpe_vae_cm']:.2f} cm | {n['mpjpe_vae_cm']:.2f} cm |",
             f"| inversion → sampler | {d['mpjpe_cm']:.2f} cm | {n['mpjpe_cm']:.2f} cm |",
             f"| **inversion adds on top of the VAE (goal < 2 cm)** | **{d['mpjpe_adds_cm']:+.2f} cm** | "
             f"**{n['mpjpe_adds_cm']:+.2f} cm** |",
             f"| reconstruction keeps content / style class | {pct(d['content_kept'])} / {pct(d['style_kept'])} | "
             f"{pct(n['content_kept'])} / {pct(n['style_kept'])} |", "",
             f"Real clips: the classifier recognises content {pct(r['real_content_correct'])}, style "
             f"{pct(r['real_style_correct'])}.", "",
             f"| edits of real clips, classified | DDIM inversion (default), {d['n']} clips | null-text inversion, "
             f"{n['n']} clips |", "|---|---|---|",
             f"| **style swap: target style and content kept (goal ≥ 70%)** | **{pct(d['swap_success'])}**"
             f"{ci(d['swap_success_ci95'])} | {pct(n['swap_success'])}{ci(n['swap_success_ci95'])} |"]
    for key, label in (("swap_target_style", "… style is the target"), ("swap_style_changed", "… style changed"),
                       ("swap_content_kept", "… content kept"),
                       ("mirror_attention_success", "mirror by attention (paper): mirrored content class"),
                       ("mirror_attention_side_flipped_hand", "… side flipped, one-handed clips")):
        lines.append(f"| {label} | {pct(d[key])} | {pct(n[key])} |")
    lines += ["", "| style swap by pair (DDIM inversion) | clips | target style and content kept | style is the "
              "target | content kept |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['n']} | {pct(v['success'])} | {pct(v['target_style'])} | {pct(v['content_kept'])} |"
              for k, v in d["swap_by_pair"].items()]
    lines += ["", f"| geometric mirror (default; exact, needs no inversion), {r['n']} clips | |", "|---|---|",
              f"| **classified as the mirrored content (goal ≥ 70%)** | **{pct(r['mirror_geometric_success'])}**"
              f"{ci(r['mirror_geometric_success_ci95'])} |",
              f"| side flipped, one-handed clips | {pct(r['mirror_geometric_side_flipped_hand'])} |"]
    return "\n".join(lines)
