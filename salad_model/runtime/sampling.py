"""Samplers: DDIM (the paper's exact mode) and DPM-Solver++ (fewer steps), with batched CFG.

The scheduler math comes from diffusers; this module only runs the loop: one denoiser forward per step
over ``[uncond; cond]``, guidance, scheduler step, length masking, progress callback. Text work is done
before the loop (``Denoiser.encode_text``), never per step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from salad_model.runtime.requests import SCHEDULERS

from .denoiser import Denoiser, TextContext

if TYPE_CHECKING:
    from .guiders import CFG
    from .inpainting import Inpainting

SCHEDULER_KINDS = SCHEDULERS  # one name for one thing: salad_model.runtime.requests.SCHEDULERS


@dataclass
class DiffusionConfig:
    """Training-time noise schedule (SALAD_SPEC §4); saved in model configs."""

    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "scaled_linear"
    prediction_type: str = "v_prediction"
    # "" = the sampler's own (DDIM leading, DPM-Solver++ trailing); a step-distilled student stores the
    # spacing it was distilled on ("trailing": its first step starts from pure noise at t = 999)
    timestep_spacing: str = ""

    def to_dict(self) -> dict:
        """The config section (an unset spacing left out: teachers' configs stay as they were)."""
        return {k: v for k, v in self.__dict__.items() if v != "" or k != "timestep_spacing"}


def make_scheduler(kind: str = "ddim", diffusion: DiffusionConfig | None = None):
    """A fresh diffusers scheduler (multistep solvers keep state, so never share one across runs)."""
    d = diffusion or DiffusionConfig()
    common = dict(num_train_timesteps=d.num_train_timesteps, beta_start=d.beta_start, beta_end=d.beta_end,
                  beta_schedule=d.beta_schedule, prediction_type=d.prediction_type)
    if kind == "ddim":
        from diffusers import DDIMScheduler

        return DDIMScheduler(clip_sample=False, set_alpha_to_one=True, steps_offset=0,
                             timestep_spacing=d.timestep_spacing or "leading", **common)
    if kind == "dpm++":
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2,
                                           timestep_spacing=d.timestep_spacing or "trailing", final_sigmas_type="zero",
                                           lower_order_final=True, **common)
    raise ValueError(f"unknown scheduler {kind!r}; choose one of {SCHEDULER_KINDS}")


class Cancelled(Exception):
    """Raised by a progress callback to stop sampling between steps."""


StepCallback = Callable[[int, int], None]


def initial_noise(seed: int, frames: int, batch: int = 1, parts: int = 7, dim: int = 32) -> torch.Tensor:
    """Seeded z_T on the CPU (identical on every device), shape [batch, frames//4, parts, dim]."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(batch, frames // 4, parts, dim, generator=g)


def latent_mask(lengths: list[int] | torch.Tensor, t_latent: int) -> torch.Tensor:
    """[B, T'] validity of latent frames for motion lengths in frames (lengths // 4)."""
    lat = torch.as_tensor(lengths) // 4
    return torch.arange(t_latent)[None, :] < lat[:, None]


@torch.no_grad()
def sample(denoiser: Denoiser, z_T: torch.Tensor, cond: TextContext, uncond: TextContext | list[TextContext] | None,
           guidance: float = 7.5, steps: int = 50, scheduler: str = "ddim",
           len_mask: torch.Tensor | None = None, callback: StepCallback | None = None,
           on_step: Callable[[int, int], None] | None = None,
           diffusion: DiffusionConfig | None = None,
           trajectory: dict[int, torch.Tensor] | None = None,
           inpaint: Inpainting | None = None, guided_steps: int | None = None,
           guider: CFG | None = None) -> torch.Tensor:
    """Denoise ``z_T`` [B, T', 7, C] into z_0.

    ``cond``/``uncond`` hold B rows each (``uncond`` may be None when guidance is 1, or one context per step
    after null-text inversion). One forward over
    ``[z; z]`` per step (unconditional half first, as the reference). ``on_step(i, n)`` runs before step
    i (attention controllers use it); ``callback(i+1, n)`` after it (progress; may raise Cancelled).
    ``inpaint`` holds a known region of the latent (:mod:`inpainting`): after every step it is replaced by
    the source noised to the next level, and a step may be repeated from re-noised latents (resampling).
    ``guided_steps`` limits guidance to the first that many steps; later steps run the conditional half alone
    (half the work: the coarse motion is settled early, the last steps only refine it — fast mode).
    ``guider`` (:mod:`guiders`) combines the two halves instead of plain CFG at ``guidance`` (it carries its
    own scale) and may leave steps unguided; None is plain CFG. With ``inpaint`` only a guider that is CFG at a
    scale per step (``per_step_scale``: cfg, interval), applied through ``inpaint.guide``.
    """
    if guider is not None and inpaint is not None and not guider.per_step_scale:
        raise ValueError(f"a {guider.kind!r} guider cannot be combined with inpainting (shots guide through "
                         "Inpainting.guide: only guiders that are CFG at a scale per step, cfg and interval)")
    sched = make_scheduler(scheduler, diffusion)
    sched.set_timesteps(steps)
    mask = None if len_mask is None else len_mask[:, :, None, None].to(z_T.dtype)
    z = z_T if mask is None else z_T * mask
    use_cfg = uncond is not None and (guider is not None or guidance != 1.0)  # a guider decides per step
    per_step = isinstance(uncond, list)
    ctx = TextContext.cat([uncond, cond]) if use_cfg and not per_step else cond
    lm = None if len_mask is None else (torch.cat([len_mask, len_mask]) if use_cfg else len_mask)
    if use_cfg and inpaint is not None:  # the unconditional rows may see fewer frames (shot_free_guidance)
        lm = inpaint.guided_frames(len_mask)
    n = len(sched.timesteps)
    if guider is not None:
        guider.start()
        full = (ctx, lm)  # the guided rows; a guider may run some steps on the conditional half alone
    if inpaint is not None:
        inpaint.check_scheduler(scheduler)
        z = inpaint.apply(z, sched, -1)
    table = getattr(denoiser, "timestep_table", None)  # FiLM of every step's timestep in one GEMM, up front
    with table(sched.timesteps) if table is not None else contextlib.nullcontext():
        for i, t in enumerate(sched.timesteps):
            if on_step is not None:
                on_step(i, n)
            if use_cfg and per_step:
                ctx = TextContext.cat([uncond[i], cond])
            if use_cfg and guided_steps is not None and i == guided_steps:  # guidance ends: conditional half only
                use_cfg, ctx, lm = False, cond, len_mask
            step_cfg = use_cfg
            if guider is not None and use_cfg:
                step_cfg = guider.guided(i, n)
                ctx, lm = (ctx if per_step else full[0], full[1]) if step_cfg else (cond, len_mask)
            for r in range(1 + (inpaint.resamples(i, n) if inpaint is not None else 0)):
                if r:  # resampling: back to this step's noise level, then the step again
                    z = inpaint.renoise(z, sched, i)
                x_in = torch.cat([z, z]) if step_cfg else z
                v = denoiser(x_in, t, ctx, lm)
                if step_cfg:
                    v_u, v_c = v.chunk(2)
                    if guider is not None and inpaint is not None:  # the guider's scale, inpainting's weights
                        v = inpaint.guide(v_u, v_c, guider.scale_at(i, n))
                    elif guider is not None:
                        v = guider(v_u, v_c, z, sched.alphas_cumprod[int(t)].to(z), i, n, len_mask)
                    else:
                        v = v_u + guidance * (v_c - v_u) if inpaint is None else inpaint.guide(v_u, v_c, guidance)
                z = sched.step(v, t, z).prev_sample
                if inpaint is not None:
                    z = inpaint.apply(z, sched, i)
            if mask is not None:
                z = z * mask
            if trajectory is not None:
                trajectory[i] = z.clone()
            if callback is not None:
                callback(i + 1, n)
    return z
