"""Editing a generated motion by attention control, and exact mirroring (mixed into SaladPipeline)."""

from __future__ import annotations

import numpy as np
import torch

from ..motion.motion_process import mirror_features
from . import requests as R
from .editing import CrossAttentionEdit, Mirror, Refine, Reweight, WordSwap, align_tokens, choose_mode, sample_edit
from .guiders import guider_meta
from .requests import EDIT_MODES, EditSpec, InputError
from .results import Motion
from .sampling import StepCallback


class EditMixin:
    """edit, edit_mode, mirror_motion, source_motion; the source generation comes from GenerationMixin."""

    # -- editing ------------------------------------------------------------------------------------

    def edit_mode(self, source_prompt: str, edit_prompt: str, mode: str = "auto", word: str | None = None,
                  scale: float | None = None, mirror: str | None = None,
                  swap_src_proportion: float = 0.2) -> tuple[CrossAttentionEdit, str, str]:
        """Build the cross-attention edit for a request; returns (mode object, edit prompt, explanation)."""
        if mode not in EDIT_MODES:
            raise InputError(f"unknown edit mode {mode!r}; choose one of {', '.join(EDIT_MODES)}")
        te = self.text_encoder
        if mode == "mirror" or (mode == "auto" and mirror):
            which = mirror or "all"
            try:
                return Mirror(which), source_prompt, f"mirror left/right ({which}) by swapping attention rows"
            except ValueError as exc:
                raise InputError(str(exc)) from exc
        if mode == "reweight" or (mode == "auto" and word is not None):
            if not word:
                raise InputError("re-weighting needs a word or phrase of the prompt")
            if scale is None:
                raise InputError(f"re-weighting needs a scale within {R.REWEIGHT_MIN:g} … {R.REWEIGHT_MAX:g}")
            scale = R.check_value("scale", scale)
            try:
                idx = te.word_token_indices(source_prompt, word)
            except ValueError as exc:
                raise InputError(str(exc)) from exc
            return Reweight(idx, float(scale)), source_prompt, f"re-weight {word!r} ×{float(scale):g}"
        if not edit_prompt:
            raise InputError("give a new prompt, a word to re-weight, or a mirror mode")
        edit_prompt = self.check_prompt(edit_prompt)
        src_ids, edit_ids = te.token_ids(source_prompt), te.token_ids(edit_prompt)
        why = ""
        if mode == "auto":
            mode, why = choose_mode(src_ids, edit_ids)
        if mode == "word_swap":
            return WordSwap(swap_src_proportion), edit_prompt, why or "word swap"
        if mode == "refine":
            return Refine(align_tokens(src_ids, edit_ids)), edit_prompt, why or "refinement"
        raise InputError(f"mode {mode!r} needs a word (reweight) or a mirror side")

    @staticmethod
    def _geometric_mirror(mode: str, mirror: str | None, mirror_method: str) -> str | None:
        """The region to mirror geometrically, or None when the request is not a geometric mirror."""
        R.check_value("mode", mode)
        R.check_value("mirror_method", mirror_method)
        if mirror is not None:
            R.check_value("mirror", mirror)
        return EditSpec(mode=mode, mirror=mirror, mirror_method=mirror_method).geometric_mirror

    def mirror_motion(self, motion: Motion, which: str = "all") -> Motion:
        """The exact left/right mirror image of a motion (``upper``: arms only, ``lower``: legs only).

        Features are heading-free, so mirroring is a signed channel permutation; no sampling, no model.
        """
        return self._mirrored(motion.features, motion.meta, which)

    def _mirrored(self, features: np.ndarray, meta: dict, which: str) -> Motion:
        feats = mirror_features(np.asarray(features, dtype=np.float32), self.vae.skeleton, which)
        meta = {**meta, "edits": [*meta.get("edits", []), {"mode": "mirror", "which": which, "method": "geometric",
                                                            "why": f"exact mirror image ({which})"}]}
        return Motion(self._joints(feats), feats, meta)

    def source_motion(self, prompt: str, frames: int, seed: int, guidance: float, steps: int, scheduler: str,
                      callback: StepCallback | None = None, guided_steps: int | None = None) -> Motion:
        """The generation an edit starts from: the last recorded one when it matches, else generated now
        (with ``guided_steps`` as that generation had them: a fast-mode source is the fast motion)."""
        key = self._source_key(prompt, seed, frames, guidance, steps, scheduler, guided_steps)
        if self._last_motion is not None and self._last_motion[0] == key:
            if callback is not None:
                callback(steps, steps)
            return self._last_motion[1]
        if key[-1] is not None:  # guidance on the first steps only: sampled as generate_batch does (no maps)
            m = self.generate_batch([prompt], [frames], None, [seed], guidance, steps, scheduler, callback,
                                    guided_steps=guided_steps)[0]
            self._last_motion = (key, m)
            return m
        return self.generate(prompt, frames, seed=seed, guidance=guidance, steps=steps, scheduler=scheduler,
                             callback=callback, record_maps=True)

    def edit(self, source_prompt: str, frames: int | None = None, seconds: float | None = None,
             seed: int = 0, edit_prompt: str | None = None, mode: str = "auto", word: str | None = None,
             scale: float | None = None, mirror: str | None = None, guidance: float | None = None,
             steps: int = 50, scheduler: str = "ddim", src_proportion: float = 0.2,
             swap_src_proportion: float = 0.2, inject_temporal: bool | None = None,
             callback: StepCallback | None = None, return_source: bool = False,
             mirror_method: str = "geometric", guided_steps: int | None = None,
             fast: bool = False) -> Motion | tuple[Motion, Motion | None]:
        """Edit the generation (source prompt, seed, length) by attention control.

        Stateless: the source is regenerated from the same noise (cached maps of the last source are
        reused when the request matches). ``inject_temporal`` defaults to False for word swap (as the
        paper's notebook) and True otherwise. Mirroring is geometric (exact) unless
        ``mirror_method="attention"`` asks for the paper's attention-row swap. ``guided_steps`` / ``fast``
        as in :meth:`generate`: the source is sampled the way it was generated; the edit is guided on every
        step (:func:`editing.sample_edit`: unguided last steps lost the edit prompt's content).
        """
        if R.check_value("fast", fast):
            steps, scheduler, guided_steps = (self.fast_preset[k] for k in ("steps", "scheduler", "guided_steps"))
        if guided_steps is not None:
            guided_steps = R.check_value("guided_steps", guided_steps)
        spec = EditSpec.create(mode=mode, edit_prompt=edit_prompt, word=word, scale=scale, mirror=mirror,
                               mirror_method=mirror_method, src_proportion=src_proportion,
                               swap_src_proportion=swap_src_proportion, inject_temporal=inject_temporal)
        plan = self._plan(source_prompt, frames, seconds, seed, guidance, steps, scheduler, guided_steps)
        source_prompt, frames, seed, guidance, steps, scheduler, key = (
            plan.prompt, plan.frames, plan.seed, plan.guidance, plan.steps, plan.scheduler, plan.key)
        guided_steps = key[-1]  # None when guidance runs on every step
        src_proportion, swap_src_proportion = spec.src_proportion, spec.swap_src_proportion
        which = spec.geometric_mirror
        if which is not None:
            src = self.source_motion(source_prompt, frames, seed, guidance, steps, scheduler, callback, guided_steps)
            out = self.mirror_motion(src, which)
            return (out, src) if return_source else out
        edit_obj, edit_text, why = self.edit_mode(source_prompt, spec.edit_prompt or "", spec.mode, spec.word,
                                                  spec.scale, spec.mirror, swap_src_proportion)
        if inject_temporal is None:
            inject_temporal = not isinstance(edit_obj, WordSwap)
        cached = self._maps_cache if self._maps_cache is not None and self._maps_cache.key == key else None
        z_T = plan.z_T
        ctx = self.text_context([source_prompt, edit_text])
        guider, routes = self.guider_for([source_prompt], guidance)  # the source's: the edit starts from it
        with torch.inference_mode():
            res = sample_edit(self.denoiser, z_T, ctx.select([0]), ctx.select([1]), self._null(1), edit_obj,
                              guidance, steps, scheduler, src_proportion, inject_temporal,
                              source_maps=cached, record_key=None if cached else key, callback=callback,
                              diffusion=self.bundle.diffusion, guided_steps=guided_steps,
                              guider=guider)
        if res.recorded is not None:
            self._maps_cache = res.recorded
        feats, joints = self.decode(res.z_edit)
        meta = self._meta(source_prompt, seed, frames, guidance, steps, scheduler)
        if guided_steps is not None:
            meta["guided_steps"] = guided_steps
        if guider is not None:
            meta["guider"] = guider_meta(guider, 0, routes)
        src = None
        if res.z_source is not None:
            sf, sj = self.decode(res.z_source)
            src = Motion(sj[0], sf[0], {**meta, "edits": []}, res.z_source)
            self._last_motion = (key, src)
        meta["edits"] = [{**edit_obj.describe(), "edit_prompt": edit_text, "why": why,
                          "src_proportion": src_proportion, "inject_temporal": inject_temporal}]
        meta["edit_prompt"] = edit_text
        out = Motion(joints[0], feats[0], meta, res.z_edit)
        return (out, src) if return_source else out

    def clear_cache(self) -> None:
        self._maps_cache = None
        self._last_motion = None
