"""Training entry point: ``python -m salad_model.training.train vae|denoiser|export --config ... --data ... --out ...``.

Resumable (``<out>/<stage>/latest.pt`` holds model, optimiser, scheduler, iteration and RNG states; a run
continues where it stopped), logs losses to ``<out>/<stage>/log.csv``, and never runs in CI (the tests
run a few steps on tiny data). Recipe: SALAD_SPEC §2.5 and §3.6, sized for a CPU (see the demo config).
Denoiser training uses VAE posteriors pre-computed once per clip and cropped in latent space (a large
speed-up on CPU; the reference re-encodes every crop) and text features cached once per caption.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn  # noqa: E402

from .. import ASSETS_DIR, CONFIGS_DIR  # noqa: E402
from ..motion.features import recover_from_ric  # noqa: E402
from ..runtime.checkpoints import ModelBundle, save_model  # noqa: E402
from ..runtime.denoiser import Denoiser, DenoiserConfig  # noqa: E402
from ..runtime.sampling import DiffusionConfig, make_scheduler  # noqa: E402
from ..runtime.vae import VAE, VAEConfig, kl_loss  # noqa: E402
from . import distributed  # noqa: E402
from .balance import LengthBatches, draw_weights, group_shares  # noqa: E402
from .checkpoint_state import load_checkpoint, restore_rng_states, rng_states  # noqa: E402

CONFIG_DIR = CONFIGS_DIR


def load_config(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file() and (CONFIG_DIR / f"{path}.json").is_file():
        p = CONFIG_DIR / f"{path}.json"
    return json.loads(p.read_text())


# ------------------------------------------------------------------------------------------------
# Data


class MotionData:
    """Normalised per-clip features of one split, each clip also mirrored (left/right swapped).

    ``extra_dirs``: more built datasets of the same layout (e.g. DeepMimic), normalised with the
    statistics of ``data_dir`` (the model's), so a fine-tune keeps the shipped normalisation.
    """

    def __init__(self, data_dir: Path, split: str, mirror: bool = True, limit: int | None = None,
                 extra_dirs: tuple[Path, ...] = ()):
        from ..motion.motion_process import mirror_features
        from .data.bandai import clip_arrays, load_dataset

        self.mean = np.load(Path(data_dir) / "mean.npy").astype(np.float32)
        self.std = np.load(Path(data_dir) / "std.npy").astype(np.float32)
        self.items: list[dict] = []
        for folder in (data_dir, *extra_dirs):
            clips, joints, feats = load_dataset(folder)
            captions = json.loads((Path(folder) / "captions.json").read_text())
            for c in clips:
                if c["split"] != split:
                    continue
                _, f = clip_arrays(c, joints, feats)
                f = np.asarray(f, dtype=np.float32)
                cap = captions.get(c["name"], {})
                variants = [(f, False)] + ([(mirror_features(f), True)] if mirror else [])
                for arr, mir in variants:
                    self.items.append({
                        "name": c["name"], "dataset": c.get("dataset", ""), "content": c["content"],
                        "style": c["style"], "mirrored": mir,
                        "features": (arr - self.mean) / self.std,
                        "captions": cap.get("mirror_train" if mir else "train", []),
                        "heldout": cap.get("mirror_heldout" if mir else "heldout", []),
                    })
                if limit and len(self.items) >= limit:
                    return

    def windows(self, window: int) -> list[tuple[int, int]]:
        """Every (clip, start) with a full window (the reference's VAE sampling)."""
        return [(i, s) for i, it in enumerate(self.items) for s in range(len(it["features"]) - window + 1)]


def open_data(cfg: dict, data_dir: Path, split: str, stage: str, mirror: bool = True, limit: int | None = None):
    """The reader named by ``cfg["data_format"]``: bandai (MotionData) or the humanml3d / kit standard layouts."""
    kind = cfg.get("data_format", "bandai")
    if kind == "bandai":
        extra = tuple(Path(d) for d in cfg.get("extra_data", ()))
        return MotionData(data_dir, split, mirror=mirror, limit=limit, extra_dirs=extra)
    from .data.humanml3d import HumanML3DData

    return HumanML3DData(data_dir, split, kind, stage=stage, stats_dir=cfg.get("stats_dir"), limit=limit)


def lr_at(it: int, base: float, warmup: int, milestones: list[int], gamma: float) -> float:
    if it < warmup:
        return base * (it + 1) / (warmup + 1)
    return base * gamma ** sum(it >= m for m in milestones)


def say(line: str) -> None:
    """A progress line, flushed: training logs are read (tail -f) while the run goes on."""
    print(line, flush=True)


class Trainer:
    """Shared loop mechanics: resume, checkpoint, log, stop cleanly on SIGTERM.

    Ctrl-C exits without a final save; the last periodic checkpoint (every 250 iterations) stays.

    ``ema_decay`` keeps an exponential moving average of the weights (``self.averaged``, torch's AveragedModel),
    updated after every step, saved in the checkpoint as ``ema`` (a plain state dict of the model) with
    ``ema_n``; a checkpoint without one (an older run, a warm start) seeds it from the weights it resumes.
    ``self.ema`` is something else: the running mean of the loss, for the log.
    """

    def __init__(self, out: Path, stage: str, model: torch.nn.Module, opt: torch.optim.Optimizer,
                 ema_decay: float | None = None):
        self.dir = Path(out) / stage
        self.dir.mkdir(parents=True, exist_ok=True)
        self.model, self.opt = model, opt
        self.it, self.ema, self.averaged = 0, None, None
        self.ctx = distributed.current()
        self.stop = False
        ckpt = self.dir / "latest.pt"
        state = load_checkpoint(ckpt) if ckpt.is_file() else {}
        if state:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            self.it = state["iter"]
            restore_rng_states(state)
            print(f"resumed {stage} at iteration {self.it}", flush=True)
        if ema_decay is not None:
            self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            if "ema" in state:
                self.averaged.module.load_state_dict(state["ema"])
                self.averaged.n_averaged.fill_(int(state["ema_n"]))
            else:
                self.averaged.update_parameters(model)  # the first update copies: seeded from these weights
        self.log = open(self.dir / "log.csv", "a", buffering=1) if self.ctx.is_main else None  # noqa: SIM115
        signal.signal(signal.SIGTERM, self._on_signal)

    @property
    def stop(self) -> bool:
        """Stop requested on any rank (all ranks leave the loop at the same iteration)."""
        return self.ctx.any(self._stop)

    @stop.setter
    def stop(self, value: bool) -> None:
        self._stop = value

    def _on_signal(self, *_):
        self.stop = True

    def save(self) -> None:
        if self.ctx.is_main:
            state = {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "iter": self.it,
                     **rng_states()}
            if self.averaged is not None:
                state["ema"] = self.averaged.module.state_dict()
                state["ema_n"] = int(self.averaged.n_averaged)
            tmp = self.dir / "latest.pt.tmp"
            torch.save(state, tmp)
            tmp.replace(self.dir / "latest.pt")
        self.ctx.barrier()  # every rank sees the checkpoint once save() returns

    def write(self, row: dict) -> None:
        if self.log is None:
            return
        if self.log.tell() == 0:
            self.log.write(",".join(row) + "\n")
        self.log.write(",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()) + "\n")

    def step(self, loss: torch.Tensor, clip: float | None = None) -> None:
        """One optimiser step on ``loss`` (gradient norm clipped to ``clip`` when given): counts the iteration
        and keeps the loss's running mean ``self.ema`` for the log (every stage steps the same way)."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.opt.step()
        if self.averaged is not None:
            self.averaged.update_parameters(self.model)
        self.it += 1
        v = loss.item()
        self.ema = v if self.ema is None else 0.98 * self.ema + 0.02 * v

    def loss_row(self, loss: torch.Tensor, t0: float) -> dict:
        """The log row of a stage trained on one loss: iteration, loss, its running mean, lr, seconds since ``t0``."""
        return {"iter": self.it, "loss": loss.item(), "loss_ema": self.ema, "lr": self.opt.param_groups[0]["lr"],
                "sec": round(time.time() - t0, 1)}

    def report(self, row: dict, log=say) -> None:  # noqa: ANN001
        """Append ``row`` to log.csv and show it as ``key=value`` pairs (floats to 4 significant digits)."""
        self.write(row)
        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


# ------------------------------------------------------------------------------------------------
# VAE


def vae_loss(vae: VAE, x: torch.Tensor, recon: torch.Tensor, mu, logvar, cfg: dict) -> tuple[torch.Tensor, dict]:
    lay = vae.layout
    l_all = F.smooth_l1_loss(recon, x)
    l_pos = F.smooth_l1_loss(recon[..., lay.ric], x[..., lay.ric])
    l_vel = F.smooth_l1_loss(recon[..., lay.vel], x[..., lay.vel])
    l_kl = kl_loss(mu, logvar)
    total = l_all + cfg["lambda_pos"] * l_pos + cfg["lambda_vel"] * l_vel + cfg["lambda_kl"] * l_kl
    return total, {"recon": l_all.item(), "pos": l_pos.item(), "vel": l_vel.item(), "kl": l_kl.item()}


@torch.no_grad()
def vae_mpjpe(vae: VAE, data: MotionData, max_clips: int = 64) -> float:
    """Root-aligned mean per-joint position error (metres) of mean-latent reconstructions."""
    vae.eval()
    dev = next(vae.parameters()).device
    mean, std = torch.from_numpy(data.mean).to(dev), torch.from_numpy(data.std).to(dev)
    errs = []
    for it in data.items[:max_clips]:
        f = torch.from_numpy(it["features"]).to(dev)
        t = (len(f) // 4) * 4
        if t < 8:
            continue
        x = f[None, :t]
        _, mu, _ = vae.encode(x, sample=False)
        rec = vae.decode(mu)
        j_gt = recover_from_ric(x * std + mean, vae.skeleton.num_joints)
        j_rec = recover_from_ric(rec * std + mean, vae.skeleton.num_joints)
        j_gt = j_gt - j_gt[..., :1, :]
        j_rec = j_rec - j_rec[..., :1, :]
        errs.append((j_gt - j_rec).norm(dim=-1).mean().item())
    vae.train()
    return float(np.mean(errs)) if errs else float("nan")


def train_vae(cfg: dict, data_dir: Path, out: Path, iters: int | None = None, limit: int | None = None) -> VAE:
    tc = cfg["vae_train"]
    ctx = distributed.current()
    torch.manual_seed(1234)
    random.seed(1234)
    np.random.seed(1234)
    train = open_data(cfg, data_dir, "train", "vae", limit=limit)
    val = open_data(cfg, data_dir, "val", "vae", mirror=False, limit=limit)
    windows = train.windows(tc["window"])
    print(f"VAE: {len(train.items)} train items, {len(windows)} windows of {tc['window']} frames", flush=True)
    vae = VAE(VAEConfig(**cfg["vae"])).train().to(ctx.device)
    vae_fwd = ctx.wrap(vae)
    opt = torch.optim.AdamW(vae.parameters(), lr=tc["lr"], betas=(0.9, 0.99), weight_decay=0.0)
    tr = Trainer(out, "vae", vae, opt)
    total = iters or tc["iters"]
    t0 = time.time()
    window_p = None
    if tc.get("balance_power", 0.0) > 0:  # windows of rare actions drawn more often (training/balance.py)
        from .balance import item_weights

        window_p = item_weights([train.items[c] for c, _ in windows], tc["balance_power"])
    while tr.it < total and not tr.stop:
        if window_p is None:
            idx = np.random.randint(len(windows), size=tc["batch"])
        else:
            idx = np.random.choice(len(windows), size=tc["batch"], p=window_p)
        starts = [windows[k] for k in idx][ctx.shard(tc["batch"])]
        x = torch.from_numpy(np.stack([train.items[c]["features"][s:s + tc["window"]] for c, s in starts]))
        x = x.to(ctx.device)
        for g in opt.param_groups:
            g["lr"] = lr_at(tr.it, tc["lr"], tc["warmup"], tc["milestones"], tc["gamma"])
        with ctx.rank_rng(tr.it):
            recon, mu, logvar = vae_fwd(x)
        loss, parts = vae_loss(vae, x, recon, mu, logvar, tc)
        tr.step(loss)
        if tr.it % 50 == 0 or tr.it == total:
            row = {"iter": tr.it, "loss": loss.item(), **parts, "lr": opt.param_groups[0]["lr"],
                   "sec": round(time.time() - t0, 1)}
            if ctx.is_main and (tr.it % 500 == 0 or tr.it == total):
                row["val_mpjpe_m"] = vae_mpjpe(vae, val)
            tr.report(row)
        if tr.it % 250 == 0:
            tr.save()
    tr.save()
    return vae.eval()


# ------------------------------------------------------------------------------------------------
# Denoiser


def load_stage(cfg: dict, out: Path, stage: str, ema: bool = True) -> torch.nn.Module:
    """A stage's trained model from its checkpoint: the weights' moving average when it holds one (and ``ema``)."""
    ckpt = Path(out) / stage / "latest.pt"
    if not ckpt.is_file():
        raise SystemExit(f"no {stage} checkpoint at {ckpt}: train the {stage} first")
    model = VAE(VAEConfig(**cfg["vae"])) if stage == "vae" else Denoiser(DenoiserConfig(**cfg["denoiser"]))
    state = load_checkpoint(ckpt)
    model.load_state_dict(state["ema"] if ema and "ema" in state else state["model"])
    return model.eval()


@torch.no_grad()
def encode_posteriors(vae: VAE, data: MotionData) -> None:
    """mu/logvar of every clip (lengths floored to ×4) stored on the items, computed once."""
    for it in data.items:
        f = torch.from_numpy(it["features"])
        t = (len(f) // 4) * 4
        _, mu, logvar = vae.encode(f[None, :t], sample=False)
        it["mu"], it["logvar"] = mu[0], logvar[0]


@torch.no_grad()
def caption_features(encoder, captions: list[str], cache: Path) -> dict[str, torch.Tensor]:
    """Valid-token features per caption (float16 on disk), computed once and reused across runs."""
    from safetensors.torch import load_file, save_file

    table: dict[str, torch.Tensor] = {}
    index_file = cache.with_suffix(".json")
    if cache.is_file() and index_file.is_file():
        names = json.loads(index_file.read_text())
        loaded = load_file(str(cache))
        table = {t: loaded[str(i)].float() for i, t in enumerate(names)}
    todo = [c for c in dict.fromkeys(captions) if c not in table]
    for k in range(0, len(todo), 128):
        batch = todo[k:k + 128]
        for t, (f, _) in zip(batch, encoder.encode_compact(batch), strict=True):
            table[t] = f.float()
        print(f"  text features {min(k + 128, len(todo))}/{len(todo)}", flush=True)
    if todo:
        names = list(table)
        save_file({str(i): table[t].half().contiguous() for i, t in enumerate(names)}, str(cache))
        index_file.write_text(json.dumps(names))
    return table


def pad_text(feats: list[torch.Tensor], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    dim = feats[0].shape[-1]
    out = torch.zeros(len(feats), max_len, dim)
    mask = torch.zeros(len(feats), max_len, dtype=torch.bool)
    for i, f in enumerate(feats):
        out[i, : len(f)] = f
        mask[i, : len(f)] = True
    return out, mask


def sample_crop(item: dict, tc: dict, rng: random.Random) -> tuple[torch.Tensor, int]:
    """A random latent crop: length in frames rounded to ×4 (1/3: one unit less), as the reference."""
    t_lat = item["mu"].shape[0]
    frames = min(t_lat * 4, tc["max_frames"])
    if frames > tc["min_frames"] and rng.random() < 1 / 3:
        frames -= 4
    n = frames // 4
    start = rng.randint(0, t_lat - n)
    mu, lv = item["mu"][start:start + n], item["logvar"][start:start + n]
    return mu + torch.randn_like(mu) * torch.exp(0.5 * lv), n


def train_denoiser(cfg: dict, data_dir: Path, out: Path, iters: int | None = None, limit: int | None = None,
                   text_encoder=None) -> Denoiser:
    from ..runtime.text import load_text_encoder

    tc = cfg["denoiser_train"]
    ctx = distributed.current()
    torch.manual_seed(1234)
    rng = random.Random(1234)
    vae = load_stage(cfg, out, "vae")
    train = open_data(cfg, data_dir, "train", "denoiser", limit=limit)
    train.items = [it for it in train.items if len(it["features"]) >= tc["min_frames"] and it["captions"]]
    encode_posteriors(vae, train)
    encoder = text_encoder or load_text_encoder(cfg["text_encoder"])
    with ctx.main_first():  # rank 0 writes the cache, the others read it
        texts = caption_features(encoder, [c for it in train.items for c in it["captions"]] + [""],
                                 Path(out) / "text_cache.safetensors")
    print(f"denoiser: {len(train.items)} train items, {len(texts)} captions", flush=True)
    den = Denoiser(DenoiserConfig(**cfg["denoiser"])).train().to(ctx.device)
    den_fwd = ctx.wrap(den)
    opt = torch.optim.AdamW(den.parameters(), lr=tc["lr"], betas=(0.9, 0.99), weight_decay=tc["weight_decay"])
    tr = Trainer(out, "denoiser", den, opt, ema_decay=tc.get("ema_decay"))  # absent: no weight average
    sched = make_scheduler("ddim", DiffusionConfig())
    total = iters or tc["iters"]
    t0 = time.time()
    rng.seed(1234 + tr.it)  # a resumed run continues with fresh batches instead of replaying the first ones
    by_len = sorted(range(len(train.items)), key=lambda k: train.items[k]["mu"].shape[0])
    pool = min(len(by_len), 4 * tc["batch"])
    balanced = None
    w = draw_weights(train.items, tc)  # rare actions drawn more often, datasets' mix fixed (training/balance.py)
    if w is not None:
        balanced = LengthBatches([it["mu"].shape[0] for it in train.items], w, pool)
        shares = sorted(group_shares(train.items, w).items(), key=lambda kv: kv[1])
        print("balanced sampling, smallest group shares:",
              ", ".join(f"{k[1]}@{k[0]} {v:.3f}" for k, v in shares[:5]), flush=True)
    while tr.it < total and not tr.stop:
        # Length-bucketed batches: draw from a window of similar lengths so padding stays small (about twice
        # the throughput of uniform batches on this data, whose median clip is ~40% of the longest).
        if balanced is not None:
            batch = [train.items[k] for k in balanced.draw(tc["batch"], rng)]
        else:
            lo = rng.randrange(len(by_len) - pool + 1)
            batch = [train.items[by_len[lo + rng.randrange(pool)]] for _ in range(tc["batch"])]
        crops = [sample_crop(it, tc, rng) for it in batch]
        t_max = max(n for _, n in crops)
        z0 = torch.zeros(len(batch), t_max, 7, vae.latent_dim)
        mask = torch.zeros(len(batch), t_max, dtype=torch.bool)
        for i, (z, n) in enumerate(crops):
            z0[i, :n] = z
            mask[i, :n] = True
        caps = ["" if rng.random() < tc["cond_drop_prob"] else rng.choice(it["captions"]) for it in batch]
        feats, tmask = pad_text([texts[c] for c in caps], max(len(texts[c]) for c in caps))
        m4 = mask[:, :, None, None].float()
        noise = torch.randn_like(z0) * m4
        t = torch.randint(0, sched.config.num_train_timesteps, (len(batch),))
        zt = sched.add_noise(z0, noise, t)
        target = sched.get_velocity(z0, noise, t)
        for g in opt.param_groups:
            g["lr"] = lr_at(tr.it, tc["lr"], tc["warmup"], tc["milestones"], tc["gamma"])
        sh = ctx.shard(len(batch))  # this rank's rows of the global batch (all rows when not distributed)
        zt, t, feats, tmask, mask, m4, target = (v[sh].to(ctx.device) for v in (zt, t, feats, tmask, mask, m4, target))
        with ctx.rank_rng(tr.it):
            pred = den_fwd(zt, t, den.encode_text(feats, tmask), mask)
        loss = F.mse_loss(pred * m4, target)
        tr.step(loss, clip=1.0)
        if tr.it % 50 == 0 or tr.it == total:
            tr.report(tr.loss_row(loss, t0))
        if tr.it % tc.get("save_every", 250) == 0:
            tr.save()
    tr.save()
    return den.eval()


# ------------------------------------------------------------------------------------------------
# Warm start


def init_from(cfg: dict, src: Path, out: Path) -> dict[str, int]:
    """Seed ``<out>/{vae,denoiser}/latest.pt`` from a model in our format (e.g. the shipped demo weights).

    For a machine without the run folder: training then continues from the exported weights at their
    recorded iterations. The optimiser restarts without its moment estimates (not a bit-exact resume).
    """
    from ..runtime.checkpoints import load_model

    bundle = load_model(src)
    its = dict(bundle.info.get("trained_iterations", {}))
    written = {}
    for stage, model in (("vae", bundle.vae), ("denoiser", bundle.denoiser)):
        ckpt = Path(out) / stage / "latest.pt"
        if ckpt.is_file():
            raise SystemExit(f"{ckpt} exists: refusing to overwrite a run (delete it to re-initialise)")
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        opt = torch.optim.AdamW(model.parameters())
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "iter": int(its.get(stage, 0)),
                    **rng_states()}, ckpt)
        written[stage] = int(its.get(stage, 0))
    return written


# ------------------------------------------------------------------------------------------------
# Export


def export(cfg: dict, data_dir: Path, out: Path, dest: Path, fp16: bool = True, ema: bool = True) -> Path:
    """Write the trained VAE + denoiser + statistics in our format (the shipped demo model); the denoiser's
    weight average when its checkpoint holds one, unless ``ema`` is False (to measure what the average adds)."""
    vae, den = load_stage(cfg, out, "vae"), load_stage(cfg, out, "denoiser", ema=ema)
    if cfg.get("data_format", "bandai") == "bandai":
        mean = torch.from_numpy(np.load(Path(data_dir) / "mean.npy").astype(np.float32))
        std = torch.from_numpy(np.load(Path(data_dir) / "std.npy").astype(np.float32))
    else:
        from .data.humanml3d import find_stats

        mean, std = (torch.from_numpy(a) for a in find_stats(data_dir, cfg["data_format"], cfg.get("stats_dir")))
    states = {s: load_checkpoint(Path(out) / s / "latest.pt") for s in ("vae", "denoiser")}
    its = {s: state["iter"] for s, state in states.items()}
    info = {**cfg["info"], "name": cfg["name"], "dataset": cfg["dataset"], "trained_iterations": its}
    if ema and "ema" in states["denoiser"]:
        info["denoiser_weights"] = f"moving average (EMA) over {states['denoiser']['ema_n']} steps"
    bundle = ModelBundle(vae, den, mean, std, cfg["text_encoder"], DiffusionConfig(), info)
    save_model(bundle, dest, dtype=torch.float16 if fp16 else torch.float32)
    return Path(dest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m salad_model.training.train",
                                 description="Train SALAD (VAE, then denoiser).")
    ap.add_argument("stage", choices=["vae", "denoiser", "export", "init"],
                    help="train a stage, export the shipped model, or init a run from exported weights (--dest)")
    ap.add_argument("--config", default="demo", help="config name in salad_model/configs or a JSON path")
    ap.add_argument("--data", default="data_cache/bandai", type=Path, help="built dataset folder")
    ap.add_argument("--out", default="runs/demo", type=Path, help="run folder (checkpoints, logs)")
    ap.add_argument("--iters", type=int, default=None, help="stop at this iteration (default: config)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N clips (smoke tests)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--dest", type=Path, default=ASSETS_DIR / "demo")
    ap.add_argument("--fp32", action="store_true", help="export float32 weights (default float16)")
    ap.add_argument("--no-ema", action="store_true",
                    help="export the denoiser's raw weights even when its checkpoint holds their moving average")
    ap.add_argument("--dataset", choices=["bandai", "humanml3d", "kit"], default=None,
                    help="dataset layout of --data (default: the config's data_format, else bandai)")
    ap.add_argument("--stats", type=Path, default=None, help="humanml3d/kit: folder with the meta mean.npy/std.npy")
    ap.add_argument("--extra-data", type=Path, action="append", default=None,
                    help="bandai layout: another built dataset to train on too (repeatable; e.g. data_cache/deepmimic)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto; under torchrun each rank uses its GPU")
    a = ap.parse_args(argv)
    distributed.setup(a.device)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(a.threads or max(1, min(2, os.cpu_count() or 1) // local))
    cfg = load_config(a.config)
    if a.dataset:
        cfg["data_format"] = a.dataset
    if a.stats:
        cfg["stats_dir"] = str(a.stats)
    if a.extra_data:
        cfg["extra_data"] = [str(d) for d in a.extra_data]
    if a.stage == "vae":
        train_vae(cfg, a.data, a.out, a.iters, a.limit)
    elif a.stage == "denoiser":
        train_denoiser(cfg, a.data, a.out, a.iters, a.limit)
    elif a.stage == "init":
        print(init_from(cfg, a.dest, a.out))
    elif distributed.current().is_main:
        print(export(cfg, a.data, a.out, a.dest, fp16=not a.fp32, ema=not a.no_ema))
    distributed.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["main", "train_vae", "train_denoiser", "export", "math"]
