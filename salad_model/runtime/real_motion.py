"""Real motion: inversion into the sampler's noise, reconstruction, and editing of any length (mixed into
SaladPipeline)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from . import requests as R
from .denoiser import TextContext
from .editing import WordSwap, sample_edit
from .inversion import ddim_invert, null_text_optimize
from .pose_count import pad_to_stride, with_end_pose
from .requests import EditSpec, InputError
from .results import Inversion, Motion
from .sampling import StepCallback, sample
from .windows import cross_fade, layout

# Guidance of edits of a plain DDIM inversion (which reconstructs at guidance 1). Chosen on 30 validation
# clips with the demo model: style swaps reached target style + content 67% at 1.0, 80% at 2.0 and 4.0
# (content kept best at 2.0); see the model card's real-motion section.
REAL_EDIT_GUIDANCE = 2.0


class RealMotionMixin:
    """motion_features, invert, reconstruct, edit_inverted, edit_real; edits reuse EditMixin's modes."""

    def motion_features(self, joints: np.ndarray | None = None, features: np.ndarray | None = None
                        ) -> tuple[np.ndarray, dict]:
        """De-normalised features [F, D] of real motion (joints [T, 22, 3] model space, or features).

        Joints are canonicalised first (floor, origin, facing +Z); the returned placement (root XZ and
        heading of frame 0) lets a caller put an edited result back where the input was. T poses give
        T rows: the step after the last pose is extrapolated (why: :mod:`.pose_count`).
        """
        placement = {"root_xz": [0.0, 0.0], "heading": 0.0}
        if joints is not None:
            from ..motion.motion_process import canonicalize, facing_angle, joints_to_features

            joints = R.check_joints(joints, self.vae.skeleton.num_joints)
            placement = {"root_xz": [float(joints[0, 0, 0]), float(joints[0, 0, 2])],
                         "heading": float(facing_angle(joints)[0])}
            features = joints_to_features(with_end_pose(canonicalize(joints)))  # floor from real poses only
        if features is None:
            raise InputError("give the motion as joints or features")
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.vae.layout.dim:
            raise InputError(f"features must be [F, {self.vae.layout.dim}], got {features.shape}")
        return features, placement

    def invert(self, prompt: str, joints: np.ndarray | None = None, features: np.ndarray | None = None,
               guidance: float | None = None, steps: int = 50, null_text_iters: int = 0,
               callback: StepCallback | None = None, check: Callable[[], None] | None = None) -> Inversion:
        """Find the noise (and per-step null embeddings) from which the sampler retraces this motion.

        Default: plain DDIM inversion, sampled back at guidance 1. ``null_text_iters`` > 0 adds null-text
        optimisation so that the clip is retraced at the model's guidance; on the demo model that
        reconstructs no better and its edits keep the content less often (model card, issue #7 table).
        ``check()`` runs before every null-text iteration (it may raise to cancel; ``callback`` runs per step).
        """
        guidance = self.default_guidance if guidance is None else guidance
        self.check_sampling(guidance, steps, "ddim")
        prompt = self.check_prompt(prompt)
        feats, placement = self.motion_features(joints, features)
        length = len(feats)
        if length < 16:
            raise InputError(f"the motion is {length} frames long; inversion needs at least 16")
        if length > self.max_frames:
            raise InputError(f"{length} frames is longer than the model's {self.max_frames}; use edit_real, which "
                             "edits long clips in overlapping windows")
        feats = pad_to_stride(feats)
        frames = len(feats)
        x = (torch.from_numpy(feats).to(self.device) - self.mean) / self.std
        total = 2 * steps if null_text_iters and guidance != 1.0 else steps

        def progress(offset: int):
            return None if callback is None else (lambda i, n: callback(offset + i, total))

        with torch.inference_mode():
            _, z0, _ = self.vae.encode(x[None], sample=False)
        z0 = z0.clone()
        cond = self.text_context([prompt])
        with torch.no_grad():
            traj = ddim_invert(self.denoiser, z0, cond, steps, self.bundle.diffusion, progress(0))
        nulls = None
        if null_text_iters and guidance != 1.0:
            nf, nm = self.text_encoder.encode_cached([""])
            n = int(nm[0].sum())
            nulls = null_text_optimize(self.denoiser, traj, cond, nf[:, :n].to(self.device).float(),
                                       nm[:, :n].to(self.device), guidance, steps, null_text_iters,
                                       diffusion=self.bundle.diffusion, callback=progress(steps), check=check)
        return Inversion(prompt, frames, z0, traj[-1], nulls, float(guidance) if nulls else 1.0, steps, feats,
                         placement, length)

    def _nulls(self, inv: Inversion) -> TextContext | list[TextContext]:
        if inv.nulls is None:
            return self._null(1)
        with torch.inference_mode():
            return [self.denoiser.encode_text(n, torch.ones(n.shape[:2], dtype=torch.bool, device=n.device))
                    for n in inv.nulls]

    def reconstruct(self, inv: Inversion, callback: StepCallback | None = None) -> Motion:
        """Regenerate the inverted motion with no edit (measures what inversion loses)."""
        cond = self.text_context([inv.prompt])
        with torch.inference_mode():
            z = sample(self.denoiser, inv.z_T, cond, self._nulls(inv), inv.guidance, inv.steps, "ddim", None,
                       callback, diffusion=self.bundle.diffusion)
        feats, joints = self.decode(z)
        n = inv.poses
        meta = self._meta(inv.prompt, 0, n, inv.guidance, inv.steps, "ddim")
        meta.update(source="inversion", placement=inv.placement)
        return Motion(joints[0][:n], feats[0][:n], meta, z)

    def edit_inverted(self, inv: Inversion, edit_prompt: str | None = None, mode: str = "auto",
                      word: str | None = None, scale: float | None = None, mirror: str | None = None,
                      src_proportion: float = 0.2, swap_src_proportion: float = 0.2,
                      inject_temporal: bool | None = None, callback: StepCallback | None = None,
                      mirror_method: str = "geometric", edit_guidance: float | None = None) -> Motion:
        """Attention-control edit of an inverted real motion (same modes as :meth:`edit`).

        Source and edit are sampled from the inverted noise at ``edit_guidance``: by default the inversion's
        own guidance after null-text optimisation, else :data:`REAL_EDIT_GUIDANCE` (a plain DDIM inversion
        retraces the clip at guidance 1, where edits are too weak; the injected source structure keeps the
        edit on the clip).
        """
        which = self._geometric_mirror(mode, mirror, mirror_method)
        if which is not None:
            return self._mirrored(inv.features[:inv.poses], self._real_meta(inv.prompt, inv.poses, inv.placement),
                                  which)
        edit_obj, edit_text, why = self.edit_mode(inv.prompt, edit_prompt or "", mode, word, scale, mirror,
                                                  swap_src_proportion)
        if inject_temporal is None:
            inject_temporal = not isinstance(edit_obj, WordSwap)
        ctx = self.text_context([inv.prompt, edit_text])
        if edit_guidance is None:
            edit_guidance = inv.guidance if inv.nulls is not None else REAL_EDIT_GUIDANCE
        self.check_sampling(edit_guidance, inv.steps, "ddim")
        with torch.inference_mode():
            res = sample_edit(self.denoiser, inv.z_T, ctx.select([0]), ctx.select([1]), self._nulls(inv), edit_obj,
                              float(edit_guidance), inv.steps, "ddim", src_proportion, inject_temporal,
                              callback=callback, diffusion=self.bundle.diffusion)
        feats, joints = self.decode(res.z_edit)
        n = inv.poses
        feats, joints = feats[:, :n], joints[:, :n]
        meta = self._meta(inv.prompt, 0, n, inv.guidance, inv.steps, "ddim")
        meta.update(source="inversion", placement=inv.placement, edit_prompt=edit_text)
        meta["edits"] = [{**edit_obj.describe(), "edit_prompt": edit_text, "why": why,
                          "src_proportion": src_proportion, "inject_temporal": inject_temporal,
                          "guidance": float(edit_guidance)}]
        return Motion(joints[0], feats[0], meta, res.z_edit)

    def _real_meta(self, prompt: str, frames: int, placement: dict) -> dict:
        """Metadata of a result computed from the input motion itself (no sampling)."""
        return {**self._meta(prompt, 0, frames, 1.0, 0, "none"), "source": "input", "placement": placement}

    def edit_real(self, prompt: str, joints: np.ndarray | None = None, features: np.ndarray | None = None,
                  overlap: int = 40, null_text_iters: int = 0, steps: int = 50, guidance: float | None = None,
                  callback: StepCallback | None = None, check: Callable[[], None] | None = None,
                  **edit: object) -> Motion:
        """Edit real motion of any length: overlapping windows, each inverted and edited, blended in features.

        Features are heading- and position-invariant per frame, so a linear cross-fade of the windows'
        features followed by one ``recover_from_ric`` stitches them without jumps. ``edit`` takes the
        arguments of :meth:`edit_inverted`; with none, the result is the inversion's reconstruction.
        ``check``: see :meth:`invert`; also called after every sampling step of each window's edit.
        """
        EditSpec.create(**edit)  # every edit field checked before any work
        R.check_value("overlap", overlap)
        R.check_value("null_text_iters", null_text_iters)
        feats, placement = self.motion_features(joints, features)
        which = self._geometric_mirror(str(edit.get("mode") or "auto"), edit.get("mirror"),  # type: ignore[arg-type]
                                       str(edit.get("mirror_method") or "geometric"))
        if which is not None:  # exact on the input itself: no inversion, any length
            return self._mirrored(feats, self._real_meta(self.check_prompt(prompt), len(feats), placement), which)
        n_poses = len(feats)
        feats = pad_to_stride(feats)
        total = len(feats)
        win = self.max_frames
        if not 0 <= overlap < win // 2:
            raise InputError(f"overlap must be within 0…{win // 2 - 1} frames")
        windows = layout(total, win, overlap)
        parts, metas = [], []
        for k, w in enumerate(windows):

            def cb(i: int, n: int, k: int = k) -> None:
                if callback is not None:
                    callback(k * n + i, len(windows) * n)

            inv = self.invert(prompt, features=feats[w.frames], guidance=guidance, steps=steps,
                              null_text_iters=null_text_iters, callback=cb, check=check)
            # The edit's sampling is not in the progress count, but a cancel must be seen there too (it waited for
            # the source and the edit of the window: 2 x steps).
            looks_in = None if check is None else (lambda i, n: check())
            m = self.edit_inverted(inv, callback=looks_in, **edit) if edit else self.reconstruct(inv, looks_in)
            metas.append(m.meta)
            parts.append(m.features)
        blended = cross_fade(windows, parts, n_poses)  # the padding cut (pose_count)
        j = self._joints(blended)
        meta = {**metas[0], "frames": n_poses, "windows": [[w.start, min(w.stop, n_poses)] for w in windows],
                "placement": placement}
        return Motion(j, blended, meta)
