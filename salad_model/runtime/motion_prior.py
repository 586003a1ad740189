"""A motion-prior clean-up of real motion (SDEdit with an empty prompt), mixed into SaladPipeline.

Motion read from a video carries BlazePose's systematic errors (legs swinging toward the camera about half as
far as they go, shoulders too wide; docs/video.md). The model has learnt what human motion looks like: the
clip is encoded, noised part of the way (``strength`` of the sampler's schedule, a fixed seed) and denoised
again with an empty prompt at guidance 1, so the model pulls the pose back toward plausible motion without
being told what the motion is. Low strength keeps the input; high strength lets the model replace it. On the
issue-14 evaluation set (rendered clips with ground truth) strength 0.6 lowered MPJPE and raised the share of
clips whose content the evaluation classifier recognises (docs/video.md, *Motion-prior clean-up*).

Clips longer than the model's window are cleaned in overlapping full-length windows whose features are
cross-faded, as :meth:`RealMotionMixin.edit_real` does; :mod:`.windows` says why the layout is what it is. Where two
windows both have weight 1 (the middle of a wide overlap) the result is their mean: two SDEdit draws from the same
input with different seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from . import requests as R
from .pose_count import pad_to_stride
from .requests import CLEAN_UP_STRENGTH, InputError
from .results import Motion
from .sampling import StepCallback, make_scheduler
from .windows import cross_fade, layout

DEFAULT_STEPS = 20


def _denoising_steps(strength: float, steps: int) -> int:
    """How many of the ``steps`` DDIM steps a window runs at ``strength`` (the tail of the schedule)."""
    return max(1, int(round(strength * steps)))


class MotionPriorMixin:
    """clean_motion: real motion pulled toward the model's motion prior (SDEdit, empty prompt)."""

    def _clean_window(self, feats: np.ndarray, strength: float, steps: int, seed: int,
                      on_step: Callable[[], None] | None = None) -> np.ndarray:
        """De-normalised features [F, D] (F a multiple of 4) → cleaned features [F, D].

        ``on_step`` is called after every denoising step (progress, and a cancel raised from it stops here).
        """
        x = (torch.from_numpy(feats).to(self.device) - self.mean) / self.std
        sched = make_scheduler("ddim", self.bundle.diffusion)
        sched.set_timesteps(steps)
        timesteps = sched.timesteps[steps - _denoising_steps(strength, steps):]
        with torch.inference_mode():
            _, z, _ = self.vae.encode(x[None], sample=False)
            noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(int(seed))).to(z)
            z = sched.add_noise(z, noise, timesteps[:1])
            cond = self._null(1)
            for t in timesteps:
                z = sched.step(self.denoiser(z, t, cond, None), t, z).prev_sample
                if on_step is not None:
                    on_step()
            out = self.vae.decode(z) * self.std + self.mean
        return out[0].float().cpu().numpy()

    def clean_motion(self, joints: np.ndarray, strength: float = CLEAN_UP_STRENGTH, steps: int = DEFAULT_STEPS,
                     seed: int = 0, overlap: int = 40, callback: StepCallback | None = None) -> Motion:
        """Real motion (joints [T, 22, 3], model space, the model's frame rate) → a new, cleaned Motion.

        The result is canonicalised (floor, origin, facing +Z at frame 0) like the motion features; the input
        array is not changed. ``strength`` in (0, 1]: the share of the noise schedule the clip is sent back.
        ``callback(step, steps)`` runs after every denoising step, one running count over all windows (as the
        shot ops count), so a long clip's clean-up shows progress and a ``Cancelled`` raised there stops it
        within a step.
        """
        R.check_value("clean_up", strength)
        R.check_value("steps", steps)
        R.check_value("overlap", overlap)
        feats, placement = self.motion_features(joints=joints)
        n_poses = len(feats)
        if n_poses < 16:
            raise InputError(f"the motion is {n_poses} frames long; the clean-up needs at least 16")
        feats = pad_to_stride(feats)
        overlap = min(overlap, self.max_frames // 2 - 4) // 4 * 4
        windows = layout(len(feats), self.max_frames, overlap)
        count, n_steps = [0], len(windows) * _denoising_steps(strength, steps)

        def on_step() -> None:
            count[0] += 1
            if callback is not None:
                callback(count[0], n_steps)

        parts = [self._clean_window(feats[w.frames], strength, steps, seed + k, on_step)
                 for k, w in enumerate(windows)]
        blended = cross_fade(windows, parts, n_poses)
        meta = {**self._meta(None, int(seed), n_poses, 1.0, int(steps), "ddim"), "source": "prior clean-up",
                "strength": float(strength), "placement": placement}
        return Motion(self._joints(blended), blended, meta)
