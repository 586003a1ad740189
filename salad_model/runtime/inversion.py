"""Editing real motion: DDIM inversion (+ optional null-text optimisation) into SALAD's noise space.

The paper edits only what the model generated itself; inversion names the noise z_T (and, with null-text
optimisation, per-step unconditional embeddings) from which the model's CFG sampler retraces a given
motion's latent. The edit controllers then run from that noise unchanged.

1. ``ddim_invert``: the pivot trajectory z_0 → z_T with the conditional prediction only (guidance 1),
   stepping DDIM backwards with the prediction made at the lower noise level (the usual approximation).
2. ``null_text_optimize``: for each step, adjust the text-encoder features of the empty prompt so that
   the guided DDIM step from the current latent lands on the pivot's next latent (Mokady et al. 2023).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .denoiser import Denoiser, TextContext
from .sampling import DiffusionConfig, make_scheduler


def _alphas(sched, t: int) -> torch.Tensor:
    return sched.alphas_cumprod[t] if t >= 0 else sched.final_alpha_cumprod


def _ddim_move(z: torch.Tensor, v: torch.Tensor, a_from: torch.Tensor, a_to: torch.Tensor) -> torch.Tensor:
    """Move a latent from noise level a_from to a_to along the prediction (v-parameterisation, eta 0)."""
    x0 = a_from.sqrt() * z - (1 - a_from).sqrt() * v
    eps = a_from.sqrt() * v + (1 - a_from).sqrt() * z
    return a_to.sqrt() * x0 + (1 - a_to).sqrt() * eps


@torch.no_grad()
def ddim_invert(denoiser: Denoiser, z0: torch.Tensor, cond: TextContext, steps: int = 50,
                diffusion: DiffusionConfig | None = None, callback: Callable[[int, int], None] | None = None
                ) -> list[torch.Tensor]:
    """Pivot trajectory [z_clean, z_{t_last}, …, z_{t_first}] (forward-sampling timesteps reversed)."""
    sched = make_scheduler("ddim", diffusion)
    sched.set_timesteps(steps)
    ts = [int(t) for t in sched.timesteps]  # descending, e.g. 980 … 0
    levels = [-1] + ts[::-1]  # clean, 0, 20, …, 980
    traj = [z0]
    z = z0
    for k in range(len(ts)):
        t_from, t_to = levels[k], levels[k + 1]
        v = denoiser(z, max(t_from, 0), cond, None)
        z = _ddim_move(z, v, _alphas(sched, t_from), _alphas(sched, t_to))
        traj.append(z)
        if callback is not None:
            callback(k + 1, len(ts))
    return traj


def null_text_optimize(denoiser: Denoiser, traj: list[torch.Tensor], cond: TextContext, null_feats: torch.Tensor,
                       null_valid: torch.Tensor, guidance: float, steps: int, iters: int = 10, lr: float = 1e-2,
                       diffusion: DiffusionConfig | None = None,
                       callback: Callable[[int, int], None] | None = None,
                       check: Callable[[], None] | None = None) -> list[torch.Tensor]:
    """Per-step null-prompt features so that guided DDIM from traj[-1] follows the pivot trajectory.

    Returns one [1, L, D] tensor per sampling step (in sampling order). ``callback(i, n)`` runs after each step,
    ``check()`` before each of a step's ``iters`` optimisation iterations: it may raise to stop (the worker's
    cancel), which then costs one iteration, not a whole step of up to 1,000 of them.
    """
    sched = make_scheduler("ddim", diffusion)
    sched.set_timesteps(steps)
    ts = [int(t) for t in sched.timesteps]
    prevs = ts[1:] + [-1]
    z = traj[-1]
    current = null_feats.detach().clone()
    out = []
    for i, t in enumerate(ts):
        target = traj[-2 - i]
        a_t, a_p = _alphas(sched, t), _alphas(sched, prevs[i])
        with torch.no_grad():
            v_c = denoiser(z, t, cond, None)
        if iters > 0 and guidance != 1.0:
            param = current.clone().requires_grad_(True)
            opt = torch.optim.Adam([param], lr=lr * (1.0 - i / (2 * len(ts))))
            for _ in range(iters):
                if check is not None:
                    check()
                with torch.enable_grad():
                    v_u = denoiser(z, t, denoiser.encode_text(param, null_valid), None)
                    pred = _ddim_move(z, v_u + guidance * (v_c - v_u), a_t, a_p)
                    loss = F.mse_loss(pred, target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if loss.item() < 1e-7:
                    break
            current = param.detach()
        out.append(current.clone())
        with torch.no_grad():
            v_u = denoiser(z, t, denoiser.encode_text(current, null_valid), None)
            z = _ddim_move(z, v_u + guidance * (v_c - v_u), a_t, a_p)
        if callback is not None:
            callback(i + 1, len(ts))
    return out
