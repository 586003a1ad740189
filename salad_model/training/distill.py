"""Step distillation (issue #18): ``python -m salad_model.training.distill trajectories|train|export ...``.

A student denoiser, initialised from the teacher, learns to take in ONE unguided DDIM step what the teacher's
guided sampler takes in several. Method: trajectory distillation on a shared grid. The teacher (default: the
demo model, DPM-Solver++ 8 steps, guidance 4 on the first 5 — measured as good as DDIM-50 on the model card)
is run once from seeded noise for training captions and lengths, and its latent is recorded at the student's
timesteps (DDIM "trailing" 4 steps: 999, 749, 499, 249 — a subset of the teacher's 8, so no extra teacher
work). The student is then trained, without the teacher in the loop, so that a DDIM step from the teacher's
state at t_i lands on the teacher's state at t_{i+1} (the v that does so is solved in closed form,
:func:`velocity_target`; loss: MSE in v, the teacher's own training loss).

Why not latent consistency distillation: LCD needs the teacher (two CFG forwards) and an EMA target network
in every iteration and converges over many thousand iterations; on this shared 2-core CPU (~2–4 s per
iteration) that does not fit a session. Progressive distillation needs log2(50/4) ≈ 4 rounds. The trajectory
targets are computed once (the teacher's cost is one 8-step generation per clip) and training then costs what
ordinary denoiser training costs. Its known weakness: the student is trained only on the teacher's states, not
its own (exposure bias over the 4 steps).

Resumable like ``train`` (``<out>/trajectories/part_*.safetensors`` are skipped when present; ``<out>/student/
latest.pt`` holds model, optimiser, iteration and RNG states, loaded weights-only).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ..runtime.denoiser import Denoiser, TextContext  # noqa: E402
from ..runtime.sampling import DiffusionConfig, latent_mask, make_scheduler, sample  # noqa: E402
from .train import say  # noqa: E402


@dataclass(frozen=True)
class Teacher:
    """The teacher's sampler: the trajectory the student learns to follow in fewer steps."""

    scheduler: str = "dpm++"
    steps: int = 8
    guided_steps: int | None = 5
    guidance: float = 4.0


STUDENT_STEPS = 4
STUDENT_SPACING = "trailing"  # the student's first step starts from pure noise (t = 999)


def student_diffusion(diffusion: DiffusionConfig) -> DiffusionConfig:
    """The teacher's noise schedule with the student's timestep spacing."""
    return DiffusionConfig(**{**diffusion.to_dict(), "timestep_spacing": STUDENT_SPACING})


def student_timesteps(diffusion: DiffusionConfig, steps: int = STUDENT_STEPS) -> list[int]:
    sched = make_scheduler("ddim", student_diffusion(diffusion))
    sched.set_timesteps(steps)
    return [int(t) for t in sched.timesteps]


def grid_positions(diffusion: DiffusionConfig, teacher: Teacher, steps: int = STUDENT_STEPS) -> list[int]:
    """Where each student timestep sits in the teacher's schedule (an error if it does not)."""
    sched = make_scheduler(teacher.scheduler, diffusion)
    sched.set_timesteps(teacher.steps)
    t_teacher = [int(t) for t in sched.timesteps]
    t_student = student_timesteps(diffusion, steps)
    missing = [t for t in t_student if t not in t_teacher]
    if missing:
        raise ValueError(f"student timesteps {t_student} are not on the teacher's grid {t_teacher} "
                         f"(missing {missing}); choose teacher steps that are a multiple of {steps}")
    return [t_teacher.index(t) for t in t_student]


@torch.no_grad()
def teacher_states(teacher_net: Denoiser, z_T: torch.Tensor, cond: TextContext, uncond: TextContext | None,
                   len_mask: torch.Tensor | None, diffusion: DiffusionConfig, teacher: Teacher,
                   steps: int = STUDENT_STEPS) -> torch.Tensor:
    """[B, steps + 1, T', 7, C]: the teacher's latent at each student timestep, then its final z_0."""
    pos = grid_positions(diffusion, teacher, steps)
    traj: dict[int, torch.Tensor] = {}
    z0 = sample(teacher_net, z_T, cond, uncond, teacher.guidance, teacher.steps, teacher.scheduler, len_mask,
                diffusion=diffusion, trajectory=traj, guided_steps=teacher.guided_steps)
    states = [z_T * (1.0 if len_mask is None else len_mask[:, :, None, None].to(z_T.dtype)) if p == 0
              else traj[p - 1] for p in pos]
    return torch.stack([*states, z0], dim=1)


def _alpha_sigma(alphas_cumprod: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """√ᾱ_t and √(1−ᾱ_t) per row; t = −1 is the end of sampling (ᾱ = 1, DDIM's set_alpha_to_one)."""
    ac = torch.where(t >= 0, alphas_cumprod[t.clamp(min=0)], torch.ones((), dtype=alphas_cumprod.dtype))
    return ac.sqrt(), (1 - ac).sqrt()


def velocity_target(z_t: torch.Tensor, z_s: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
                    alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """The v whose deterministic DDIM step from (z_t, t) lands exactly on z_s at s (s = −1: on z_0).

    DDIM with v-prediction: x̂0 = a_t z − σ_t v, ε̂ = a_t v + σ_t z, z_s = a_s x̂0 + σ_s ε̂, so
    z_s = (a_s a_t + σ_s σ_t) z_t + (σ_s a_t − a_s σ_t) v, solved for v.
    """
    shape = (-1,) + (1,) * (z_t.dim() - 1)
    a_t, s_t = (x.view(shape).to(z_t.dtype) for x in _alpha_sigma(alphas_cumprod.double(), t))
    a_s, s_s = (x.view(shape).to(z_t.dtype) for x in _alpha_sigma(alphas_cumprod.double(), s))
    return (z_s - (a_s * a_t + s_s * s_t) * z_t) / (s_s * a_t - a_s * s_t)


def distill_loss(student: Denoiser, states: torch.Tensor, step: torch.Tensor, text: TextContext,
                 len_mask: torch.Tensor, timesteps: list[int], alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """MSE between the student's v at (state ``step``, its timestep) and the v that reaches the next state.

    ``states`` [B, S + 1, T', 7, C] from :func:`teacher_states`; ``step`` [B] picks one transition per row.
    """
    rows = torch.arange(states.shape[0])
    z_t, z_s = states[rows, step], states[rows, step + 1]
    grid = torch.tensor([*timesteps, -1])
    t, s = grid[step], grid[step + 1]
    target = velocity_target(z_t, z_s, t, s, alphas_cumprod)
    m4 = len_mask[:, :, None, None].to(z_t.dtype)
    pred = student(z_t, t, text, len_mask)
    return F.mse_loss(pred * m4, target * m4)


# ------------------------------------------------------------------------------------------------
# Trajectories (the teacher's work, once)


def trajectory_jobs(data_dir: Path, count: int, seed: int = 0, min_frames: int = 40, max_frames: int = 196,
                    limit: int | None = None) -> list[dict]:
    """``count`` (caption, frames, seed) draws from the training split (mirrored clips too), sorted by length.

    Lengths are the clips' own (×4, capped), so the student sees the lengths users and the evaluation ask for.
    """
    from .train import MotionData

    data = MotionData(data_dir, "train", mirror=True, limit=limit)
    items = [it for it in data.items if it["captions"] and len(it["features"]) >= min_frames]
    if not items:
        raise SystemExit(f"no training clips with captions of ≥ {min_frames} frames in {data_dir}")
    rng = random.Random(seed)
    jobs = []
    for k in range(count):
        it = rng.choice(items)
        jobs.append({"caption": rng.choice(it["captions"]), "frames": min(len(it["features"]), max_frames) // 4 * 4,
                     "seed": seed * 1_000_003 + k})
    return sorted(jobs, key=lambda j: j["frames"])


class _LazyEncoder:
    """The text encoder, loaded only if a caption is missing from the feature cache."""

    def __init__(self, spec: dict):
        self.spec, self.encoder = spec, None

    def encode_compact(self, texts):
        if self.encoder is None:
            from ..runtime.text import load_text_encoder

            self.encoder = load_text_encoder(self.spec)
        return self.encoder.encode_compact(texts)


def check_seed_cache(seed_cache: Path) -> Path:
    """``--text-cache``: a run's ``text_cache.safetensors`` with its caption index (``text_cache.json``) beside it.

    Why: the index was looked up only after the features had been copied, so a path without its ``.json`` (or
    one that is not a ``.safetensors`` file) ended in a FileNotFoundError traceback, or — a missing file — was
    silently ignored and every caption encoded again."""
    seed_cache = Path(seed_cache)
    if seed_cache.suffix != ".safetensors" or not seed_cache.is_file():
        raise ValueError(f"--text-cache {seed_cache}: give a run's text_cache.safetensors (an existing "
                         ".safetensors file)")
    if not seed_cache.with_suffix(".json").is_file():
        raise ValueError(f"--text-cache {seed_cache}: its caption index {seed_cache.with_suffix('.json')} is "
                         "missing (written beside the features by the run that made them)")
    return seed_cache


def text_table(out: Path, captions: list[str], spec: dict, seed_cache: Path | None) -> dict[str, torch.Tensor]:
    """Caption → text features, from ``<out>/text_cache.safetensors`` (seeded by copying ``seed_cache``, checked
    by :func:`check_seed_cache`; its index is copied last, so a copy cut short leaves features without an index,
    which :func:`~.train.caption_features` ignores)."""
    from .train import caption_features

    cache = Path(out) / "text_cache.safetensors"
    cache.parent.mkdir(parents=True, exist_ok=True)
    if seed_cache is not None:
        seed_cache = check_seed_cache(seed_cache)
        if not cache.is_file():
            shutil.copyfile(seed_cache, cache)
            shutil.copyfile(seed_cache.with_suffix(".json"), cache.with_suffix(".json"))
    return caption_features(_LazyEncoder(spec), [*captions, ""], cache)


def encode(net: Denoiser, table: dict[str, torch.Tensor], captions: list[str]) -> TextContext:
    from .train import pad_text

    feats, mask = pad_text([table[c] for c in captions], max(len(table[c]) for c in captions))
    return net.encode_text(feats, mask)


def write_trajectories(bundle, jobs: list[dict], table: dict[str, torch.Tensor], out: Path, teacher: Teacher,
                       batch: int = 32, log=say) -> list[Path]:
    """The teacher's states for every job, ``batch`` jobs per file; existing files are kept (resume)."""
    from safetensors.torch import save_file

    from ..runtime.sampling import initial_noise

    folder = Path(out) / "trajectories"
    folder.mkdir(parents=True, exist_ok=True)
    net, dim = bundle.denoiser.eval(), bundle.denoiser.config.vae_dim
    paths, t0 = [], time.time()
    for p, k in enumerate(range(0, len(jobs), batch)):
        path = folder / f"part_{p:05d}.safetensors"
        paths.append(path)
        if path.is_file():
            continue
        part = jobs[k:k + batch]
        frames = [j["frames"] for j in part]
        t_lat = max(frames) // 4
        z_T = torch.cat([initial_noise(j["seed"], max(frames))[..., :dim] for j in part])
        mask = latent_mask(frames, t_lat)
        caps = [j["caption"] for j in part]
        uncond = encode(net, table, [""] * len(part)) if teacher.guidance != 1.0 else None
        states = teacher_states(net, z_T, encode(net, table, caps), uncond, mask, bundle.diffusion, teacher)
        tmp = path.with_suffix(".tmp")
        save_file({"states": states.contiguous(), "frames": torch.tensor(frames)}, str(tmp),
                  metadata={"captions": json.dumps(caps)})
        tmp.replace(path)
        log(f"trajectories {min(k + batch, len(jobs))}/{len(jobs)} ({time.time() - t0:.0f}s)")
    return paths


def load_trajectories(out: Path) -> list[dict]:
    from safetensors import safe_open

    parts = []
    for path in sorted((Path(out) / "trajectories").glob("part_*.safetensors")):
        with safe_open(str(path), "pt") as f:
            parts.append({"states": f.get_tensor("states"), "frames": f.get_tensor("frames"),
                          "captions": json.loads(f.metadata()["captions"])})
    if not parts:
        raise SystemExit(f"no trajectories in {Path(out) / 'trajectories'}: run the 'trajectories' stage first")
    return parts


# ------------------------------------------------------------------------------------------------
# Training and export


def train_student(bundle, out: Path, iters: int, batch: int = 32, lr: float = 1e-4, warmup: int = 50,
                  table: dict[str, torch.Tensor] | None = None, log=say) -> Denoiser:
    """Fine-tune a copy of the teacher's denoiser on the recorded transitions (resumes from ``<out>/student``)."""
    import copy

    from .train import Trainer, lr_at

    parts = load_trajectories(out)
    if table is None:
        raise ValueError("text features are required (text_table)")
    student = copy.deepcopy(bundle.denoiser).float().train()
    opt = torch.optim.AdamW(student.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    tr = Trainer(out, "student", student, opt)
    steps = parts[0]["states"].shape[1] - 1
    timesteps = student_timesteps(bundle.diffusion, steps)
    alphas = make_scheduler("ddim", bundle.diffusion).alphas_cumprod
    rng = random.Random(1234 + tr.it)
    sizes = [len(p["frames"]) for p in parts]
    t0 = time.time()
    while tr.it < iters and not tr.stop:
        part = parts[rng.choices(range(len(parts)), weights=sizes)[0]]
        rows = rng.sample(range(len(part["frames"])), min(batch, len(part["frames"])))
        frames = part["frames"][rows]
        t_lat = int(frames.max()) // 4
        states = part["states"][rows][:, :, :t_lat]
        step = torch.tensor([rng.randrange(steps) for _ in rows])
        text = encode(student, table, [part["captions"][r] for r in rows])
        for g in opt.param_groups:
            g["lr"] = lr_at(tr.it, lr, warmup, [], 1.0)
        loss = distill_loss(student, states, step, text, latent_mask(frames, t_lat), timesteps, alphas)
        tr.step(loss, clip=1.0)
        if tr.it % 25 == 0 or tr.it == iters:
            tr.report(tr.loss_row(loss, t0), log)
        if tr.it % 100 == 0:
            tr.save()
            if len(parts) < len(list((Path(out) / "trajectories").glob("part_*.safetensors"))):
                parts = load_trajectories(out)  # trajectories still being written: train on what exists
                sizes = [len(p["frames"]) for p in parts]
                log(f"{sum(sizes)} trajectories")
    tr.save()
    return student.eval()


def export_student(bundle, out: Path, dest: Path, teacher: Teacher, fp16: bool = True) -> Path:
    """The teacher's model folder with the student's denoiser, its spacing, and guidance 1 as its default."""
    from ..runtime.checkpoints import ModelBundle, save_model
    from .checkpoint_state import load_checkpoint

    state = load_checkpoint(Path(out) / "student" / "latest.pt")
    student = Denoiser(bundle.denoiser.config)
    student.load_state_dict(state["model"])
    steps = load_trajectories(out)[0]["states"].shape[1] - 1
    kept = {k: v for k, v in bundle.info.items() if k not in ("source", "format")}  # loader's notes: no paths
    info = {**kept, "name": f"{bundle.info.get('name', 'model')}-student{steps}", "guidance": 1.0,
            "distilled": {"teacher": bundle.info.get("name", ""), "teacher_sampler": teacher.__dict__,
                          "steps": steps, "scheduler": "ddim", "iterations": int(state["iter"])}}
    out_bundle = ModelBundle(bundle.vae, student.eval(), bundle.mean, bundle.std, bundle.text_encoder,
                             student_diffusion(bundle.diffusion), info)
    return save_model(out_bundle, dest, dtype=torch.float16 if fp16 else torch.float32)


def main(argv: list[str] | None = None) -> int:
    from .. import ASSETS_DIR
    from ..runtime.checkpoints import load_any

    ap = argparse.ArgumentParser(prog="python -m salad_model.training.distill",
                                 description="Distil a guided teacher into a 4-step unguided student.")
    ap.add_argument("stage", choices=["trajectories", "train", "export"])
    ap.add_argument("--teacher", type=Path, default=ASSETS_DIR / "demo", help="teacher model folder")
    ap.add_argument("--data", default="data_cache/bandai", type=Path, help="built dataset (captions, lengths)")
    ap.add_argument("--out", default="runs/distill", type=Path, help="run folder")
    ap.add_argument("--text-cache", type=Path, default=None, help="a run's text_cache.safetensors to seed ours")
    ap.add_argument("--count", type=int, default=2048, help="teacher trajectories")
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N clips (smoke tests)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dest", type=Path, default=None, help="export: the student's model folder")
    a = ap.parse_args(argv)
    if a.text_cache is not None and a.stage != "export":
        try:
            check_seed_cache(a.text_cache)
        except ValueError as exc:
            ap.error(str(exc))
    torch.set_num_threads(a.threads)
    bundle = load_any(a.teacher)
    bundle.denoiser.float()
    teacher = Teacher(guidance=float(bundle.info.get("guidance", 4.0)))
    a.out.mkdir(parents=True, exist_ok=True)
    if a.stage == "export":
        if a.dest is None:
            raise SystemExit("export needs --dest (the student's model folder)")
        say(str(export_student(bundle, a.out, a.dest, teacher)))
        return 0
    jobs_file = a.out / "jobs.json"
    if a.stage == "trajectories":
        if not jobs_file.is_file():
            jobs_file.write_text(json.dumps(trajectory_jobs(a.data, a.count, limit=a.limit)))
    jobs = json.loads(jobs_file.read_text())
    table = text_table(a.out, [j["caption"] for j in jobs], bundle.text_encoder, a.text_cache)
    if a.stage == "trajectories":
        write_trajectories(bundle, jobs, table, a.out, teacher, a.batch)
    else:
        train_student(bundle, a.out, a.iters, a.batch, a.lr, table=table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
