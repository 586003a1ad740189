"""SaladPipeline: load a model, turn prompts into motion, edit it, explain it.

Networks (:mod:`vae`, :mod:`denoiser`), scheduler loop (:mod:`sampling`) and attention control
(:mod:`editing`) are separate objects; this module wires them with the text encoder and the feature
statistics, validates user input, and returns plain results (numpy joints, features, metadata).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import ASSETS_DIR
from ..motion.features import recover_from_ric
from ..motion.motion_process import mirror_features
from . import requests as R
from .checkpoints import ModelBundle, load_any
from .denoiser import TextContext
from .editing import (
    AttentionRecorder,
    CrossAttentionEdit,
    MapRecorder,
    Mirror,
    Refine,
    Reweight,
    SourceMaps,
    WordSwap,
    align_tokens,
    choose_mode,
    recording_forward,
    sample_edit,
)
from .inversion import ddim_invert, null_text_optimize
from .requests import EDIT_MODES, MIRROR_METHODS, EditSpec, InputError  # noqa: F401 (re-exported)
from .sampling import StepCallback, initial_noise, latent_mask, sample

DEMO_MODEL_DIR = ASSETS_DIR / "demo"
# Guidance of edits of a plain DDIM inversion (which reconstructs at guidance 1). Chosen on 30 validation
# clips with the demo model: style swaps reached target style + content 67% at 1.0, 80% at 2.0 and 4.0
# (content kept best at 2.0); see the model card's real-motion section.
REAL_EDIT_GUIDANCE = 2.0


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` → cuda, then mps, then cpu."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


@dataclass
class _Plan:
    """A checked generation request with its initial noise (shared by generate, edit and attention)."""

    prompt: str
    frames: int
    seed: int
    guidance: float
    steps: int
    scheduler: str
    z_T: torch.Tensor
    key: tuple

    def meta(self, pipe: SaladPipeline) -> dict:
        return pipe._meta(self.prompt, self.seed, self.frames, self.guidance, self.steps, self.scheduler)


@dataclass
class Motion:
    """A generated or edited clip: joints [T, J, 3] (metres, Y up, model fps), features [T, D] de-normalised."""

    joints: np.ndarray
    features: np.ndarray
    meta: dict
    latent: torch.Tensor | None = None

    @property
    def contacts(self) -> np.ndarray:
        """Foot contact flags [T, 4] (left ankle, left foot, right ankle, right foot)."""
        return self.features[:, -4:] > 0.5


@dataclass
class Inversion:
    """Real motion mapped into the sampler's noise space: z_T (+ per-step null-prompt features)."""

    prompt: str
    frames: int
    z0: torch.Tensor
    z_T: torch.Tensor
    nulls: list[torch.Tensor] | None
    guidance: float
    steps: int
    features: np.ndarray  # the input, de-normalised, cropped to `frames`
    placement: dict


@dataclass
class AttentionMaps:
    """Cross attention per prompt token, averaged over steps, layers and heads: maps [L, 7, T']."""

    tokens: list[str]
    maps: np.ndarray
    motion: Motion
    parts: tuple[str, ...] = field(default=())


class SaladPipeline:
    """Text → motion with one model; holds the last source's attention maps for fast re-edits."""

    def __init__(self, bundle: ModelBundle, text_encoder=None, device: str = "auto"):
        self.device = pick_device(device)
        self.bundle = bundle
        self.vae = bundle.vae.to(self.device).eval()
        self.denoiser = bundle.denoiser.to(self.device).eval()
        self.mean = bundle.mean.to(self.device)
        self.std = bundle.std.to(self.device)
        if text_encoder is None:
            from .text import load_text_encoder

            text_encoder = load_text_encoder(bundle.text_encoder)
        self.text_encoder = text_encoder
        self.info = bundle.info
        self._maps_cache: SourceMaps | None = None
        self._last_motion: tuple[tuple, Motion] | None = None

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, model: str | Path = "demo", device: str = "auto", text_encoder=None
                        ) -> SaladPipeline:
        """``demo`` (bundled), a folder in our format, or an official checkpoint folder."""
        path = DEMO_MODEL_DIR if str(model) == "demo" else Path(model)
        return cls(load_any(path), text_encoder=text_encoder, device=device)

    # -- properties and validation ----------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self.info.get("name", "model"))

    @property
    def fps(self) -> float:
        return float(self.info.get("fps", 20.0))

    @property
    def min_frames(self) -> int:
        return int(self.info.get("min_frames", 40))

    @property
    def max_frames(self) -> int:
        return int(self.info.get("max_frames", 196))

    @property
    def default_guidance(self) -> float:
        return float(self.info.get("guidance", 7.5))

    def frames_for(self, seconds: float) -> int:
        """Seconds → frames, rounded to the VAE's unit of 4 frames."""
        R.check_length_args(None, seconds)
        if seconds > R.SECONDS_MAX:
            raise InputError(f"duration {seconds:g} s is out of range: this model makes at most "
                             f"{self.max_frames / self.fps:.1f} s")
        return int(round(seconds * self.fps / 4.0)) * 4

    def check_frames(self, frames: int) -> int:
        lo, hi = self.min_frames, self.max_frames
        R.check_length_args(frames, None)
        if frames % 4 != 0 or not lo <= frames <= hi:
            raise InputError(
                f"length {frames} frames ({frames / self.fps:.1f} s) is out of range: this model makes "
                f"{lo}–{hi} frames ({lo / self.fps:.1f}–{hi / self.fps:.1f} s at {self.fps:g} fps) in steps of 4")
        return int(frames)

    def check_prompt(self, prompt: str) -> str:
        from .text import validate_prompt

        try:
            return validate_prompt(prompt, self.text_encoder)
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc)) from exc

    @staticmethod
    def check_sampling(guidance: float, steps: int, scheduler: str) -> None:
        R.check_sampling(guidance, steps, scheduler)

    def _resolve_length(self, frames: int | None, seconds: float | None) -> int:
        R.check_length_args(frames, seconds)
        return self.check_frames(frames if frames is not None else self.frames_for(seconds))

    def _plan(self, prompt: str, frames: int | None, seconds: float | None, seed: int, guidance: float | None,
              steps: int, scheduler: str) -> _Plan:
        """The shared first half of every generation: check → resolve length → initial noise."""
        guidance = self.default_guidance if guidance is None else guidance
        guidance, steps, scheduler = R.check_sampling(guidance, steps, scheduler)
        seed = R.check_seed(seed)
        frames = self._resolve_length(frames, seconds)
        prompt = self.check_prompt(prompt)
        z_T = initial_noise(seed, frames)[..., : self.denoiser.config.vae_dim].to(self.device)
        return _Plan(prompt, frames, seed, guidance, steps, scheduler, z_T,
                     self._source_key(prompt, seed, frames, guidance, steps, scheduler))

    def _sample_recorded(self, plan: _Plan, recorder, callback: StepCallback | None,
                         on_step=None) -> torch.Tensor:
        """The shared second half: sample ``plan`` with ``recorder`` watching the attention processors."""
        cond = self.text_context([plan.prompt])

        def run() -> torch.Tensor:
            with torch.inference_mode():
                return sample(self.denoiser, plan.z_T, cond, self._null(1), plan.guidance, plan.steps,
                              plan.scheduler, None, callback, on_step=on_step, diffusion=self.bundle.diffusion)

        return recording_forward(self.denoiser, run, recorder)

    # -- text ---------------------------------------------------------------------------------------

    def text_context(self, prompts: list[str] | None = None,
                     features: tuple[torch.Tensor, torch.Tensor] | None = None) -> TextContext:
        """Project prompts (or raw text-encoder features [B, L, D] + mask [B, L]) once for all steps."""
        if features is None:
            feats, mask = self.text_encoder.encode_cached(list(prompts))
        else:
            feats, mask = features
            if feats.dim() == 2:
                feats, mask = feats[None], mask[None]
            if feats.shape[-1] != self.denoiser.config.text_dim:
                raise InputError(f"text features are {feats.shape[-1]}-dim; this model expects "
                                 f"{self.denoiser.config.text_dim}")
        with torch.inference_mode():
            return self.denoiser.encode_text(feats.to(self.device, torch.float32), mask.to(self.device).bool())

    def _null(self, batch: int) -> TextContext:
        ctx = self.text_context([""])
        return ctx.select([0] * batch)

    # -- decoding -----------------------------------------------------------------------------------

    def decode(self, z: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Latent [B, T', 7, C] → (de-normalised features [B, T, D], joints [B, T, J, 3]) as numpy."""
        with torch.inference_mode():
            feats = self.vae.decode(z.to(self.device)) * self.std + self.mean
            joints = recover_from_ric(feats, self.vae.skeleton.num_joints)
        return feats.float().cpu().numpy(), joints.float().cpu().numpy()

    def _source_key(self, prompt: str, seed: int, frames: int, guidance: float, steps: int, scheduler: str
                    ) -> tuple:
        """What identifies a generation (for the recorded maps and the last motion an edit starts from)."""
        return (self.name, prompt, int(seed), frames, float(guidance), steps, scheduler)

    def _joints(self, feats: np.ndarray) -> np.ndarray:
        """De-normalised features [T, D] (numpy) → joints [T, J, 3]."""
        with torch.inference_mode():
            return recover_from_ric(torch.from_numpy(feats), self.vae.skeleton.num_joints).numpy()

    def _meta(self, prompt: str | None, seed: int, frames: int, guidance: float, steps: int,
              scheduler: str) -> dict:
        return {"prompt": prompt, "seed": int(seed), "frames": int(frames), "fps": self.fps,
                "model": self.name, "guidance": float(guidance), "steps": int(steps),
                "scheduler": scheduler, "edits": []}

    # -- generation ---------------------------------------------------------------------------------

    def generate(self, prompt: str | None = None, frames: int | None = None, seconds: float | None = None,
                 seed: int = 0, guidance: float | None = None, steps: int = 50, scheduler: str = "ddim",
                 callback: StepCallback | None = None,
                 text_features: tuple[torch.Tensor, torch.Tensor] | None = None,
                 record_maps: bool = False) -> Motion:
        """One clip from a prompt (or raw text-encoder features); same inputs ⇒ the same motion.

        ``record_maps`` keeps this generation's attention maps so that the next edit of it skips the source
        pass (edits then cost about one generation instead of two).
        """
        if not record_maps or text_features is not None:
            R.check_length_args(frames, seconds)
            return self.generate_batch([prompt], [frames] if frames is not None else None,
                                       [seconds] if seconds is not None else None, [seed], guidance, steps,
                                       scheduler, callback, text_features)[0]
        plan = self._plan(prompt, frames, seconds, seed, guidance, steps, scheduler)
        cfg = plan.guidance != 1.0
        record = SourceMaps(plan.key, [], self.text_context([plan.prompt]).length)
        rec = MapRecorder(2 if cfg else 1, 1 if cfg else 0, record)
        z = self._sample_recorded(plan, rec, callback, on_step=rec.begin_step)
        self._maps_cache = record
        feats, joints = self.decode(z)
        out = Motion(joints[0], feats[0], plan.meta(self), z)
        self._last_motion = (plan.key, out)
        return out

    def generate_batch(self, prompts: list[str | None], frames: list[int] | None = None,
                       seconds: list[float] | None = None, seeds: list[int] | None = None,
                       guidance: float | None = None, steps: int = 50, scheduler: str = "ddim",
                       callback: StepCallback | None = None,
                       text_features: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[Motion]:
        """Several clips in one batched sampling run (lengths may differ: padded frames are masked)."""
        n = len(prompts)
        guidance = self.default_guidance if guidance is None else guidance
        guidance, steps, scheduler = R.check_sampling(guidance, steps, scheduler)
        if frames and seconds:
            raise InputError("give the lengths as frames or as seconds, not both")
        lengths = [self._resolve_length(frames[i] if frames else None, seconds[i] if seconds else None)
                   for i in range(n)]
        seeds = [R.check_seed(s) for s in seeds] if seeds else [0] * n
        if text_features is None:
            prompts = [self.check_prompt(p) for p in prompts]
        t_lat = max(lengths) // 4
        z_T = torch.cat([initial_noise(s, max(lengths)) for s in seeds])
        z_T = z_T.reshape(n, t_lat, 7, -1)[..., : self.denoiser.config.vae_dim].to(self.device)
        mask = latent_mask(lengths, t_lat).to(self.device) if len(set(lengths)) > 1 else None
        cond = self.text_context(prompts if text_features is None else None, text_features)
        with torch.inference_mode():
            z = sample(self.denoiser, z_T, cond, self._null(n), guidance, steps, scheduler, mask, callback,
                       diffusion=self.bundle.diffusion)
        out = []
        for i in range(n):  # decode each clip alone: the VAE's temporal convolutions would read the padding
            zi = z[i : i + 1, : lengths[i] // 4]
            feats, joints = self.decode(zi)
            out.append(Motion(joints[0], feats[0], self._meta(prompts[i], seeds[i], lengths[i], guidance, steps,
                                                              scheduler), zi))
        return out

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
                      callback: StepCallback | None = None) -> Motion:
        """The generation an edit starts from: the last recorded one when it matches, else generated now."""
        key = self._source_key(prompt, seed, frames, guidance, steps, scheduler)
        if self._last_motion is not None and self._last_motion[0] == key:
            if callback is not None:
                callback(steps, steps)
            return self._last_motion[1]
        return self.generate(prompt, frames, seed=seed, guidance=guidance, steps=steps, scheduler=scheduler,
                             callback=callback, record_maps=True)

    def edit(self, source_prompt: str, frames: int | None = None, seconds: float | None = None,
             seed: int = 0, edit_prompt: str | None = None, mode: str = "auto", word: str | None = None,
             scale: float | None = None, mirror: str | None = None, guidance: float | None = None,
             steps: int = 50, scheduler: str = "ddim", src_proportion: float = 0.2,
             swap_src_proportion: float = 0.2, inject_temporal: bool | None = None,
             callback: StepCallback | None = None, return_source: bool = False,
             mirror_method: str = "geometric") -> Motion | tuple[Motion, Motion | None]:
        """Edit the generation (source prompt, seed, length) by attention control.

        Stateless: the source is regenerated from the same noise (cached maps of the last source are
        reused when the request matches). ``inject_temporal`` defaults to False for word swap (as the
        paper's notebook) and True otherwise. Mirroring is geometric (exact) unless
        ``mirror_method="attention"`` asks for the paper's attention-row swap.
        """
        spec = EditSpec.create(mode=mode, edit_prompt=edit_prompt, word=word, scale=scale, mirror=mirror,
                               mirror_method=mirror_method, src_proportion=src_proportion,
                               swap_src_proportion=swap_src_proportion, inject_temporal=inject_temporal)
        plan = self._plan(source_prompt, frames, seconds, seed, guidance, steps, scheduler)
        source_prompt, frames, seed, guidance, steps, scheduler, key = (
            plan.prompt, plan.frames, plan.seed, plan.guidance, plan.steps, plan.scheduler, plan.key)
        src_proportion, swap_src_proportion = spec.src_proportion, spec.swap_src_proportion
        which = spec.geometric_mirror
        if which is not None:
            src = self.source_motion(source_prompt, frames, seed, guidance, steps, scheduler, callback)
            out = self.mirror_motion(src, which)
            return (out, src) if return_source else out
        edit_obj, edit_text, why = self.edit_mode(source_prompt, spec.edit_prompt or "", spec.mode, spec.word,
                                                  spec.scale, spec.mirror, swap_src_proportion)
        if inject_temporal is None:
            inject_temporal = not isinstance(edit_obj, WordSwap)
        cached = self._maps_cache if self._maps_cache is not None and self._maps_cache.key == key else None
        z_T = plan.z_T
        ctx = self.text_context([source_prompt, edit_text])
        with torch.inference_mode():
            res = sample_edit(self.denoiser, z_T, ctx.select([0]), ctx.select([1]), self._null(1), edit_obj,
                              guidance, steps, scheduler, src_proportion, inject_temporal,
                              source_maps=cached, record_key=None if cached else key, callback=callback,
                              diffusion=self.bundle.diffusion)
        if res.recorded is not None:
            self._maps_cache = res.recorded
        feats, joints = self.decode(res.z_edit)
        meta = self._meta(source_prompt, seed, frames, guidance, steps, scheduler)
        src = None
        if res.z_source is not None:
            sf, sj = self.decode(res.z_source)
            src = Motion(sj[0], sf[0], self._meta(source_prompt, seed, frames, guidance, steps, scheduler),
                         res.z_source)
            self._last_motion = (key, src)
        meta["edits"] = [{**edit_obj.describe(), "edit_prompt": edit_text, "why": why,
                          "src_proportion": src_proportion, "inject_temporal": inject_temporal}]
        meta["edit_prompt"] = edit_text
        out = Motion(joints[0], feats[0], meta, res.z_edit)
        return (out, src) if return_source else out

    def clear_cache(self) -> None:
        self._maps_cache = None
        self._last_motion = None

    # -- real motion: inversion and editing ---------------------------------------------------------

    def motion_features(self, joints: np.ndarray | None = None, features: np.ndarray | None = None
                        ) -> tuple[np.ndarray, dict]:
        """De-normalised features [F, D] of real motion (joints [T, 22, 3] model space, or features).

        Joints are canonicalised first (floor, origin, facing +Z); the returned placement (root XZ and
        heading of frame 0) lets a caller put an edited result back where the input was.
        """
        placement = {"root_xz": [0.0, 0.0], "heading": 0.0}
        if joints is not None:
            from ..motion.motion_process import canonicalize, facing_angle, joints_to_features

            joints = R.check_joints(joints, self.vae.skeleton.num_joints)
            placement = {"root_xz": [float(joints[0, 0, 0]), float(joints[0, 0, 2])],
                         "heading": float(facing_angle(joints)[0])}
            features = joints_to_features(canonicalize(joints))
        if features is None:
            raise InputError("give the motion as joints or features")
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.vae.layout.dim:
            raise InputError(f"features must be [F, {self.vae.layout.dim}], got {features.shape}")
        return features, placement

    def invert(self, prompt: str, joints: np.ndarray | None = None, features: np.ndarray | None = None,
               guidance: float | None = None, steps: int = 50, null_text_iters: int = 0,
               callback: StepCallback | None = None) -> Inversion:
        """Find the noise (and per-step null embeddings) from which the sampler retraces this motion.

        Default: plain DDIM inversion, sampled back at guidance 1. ``null_text_iters`` > 0 adds null-text
        optimisation so that the clip is retraced at the model's guidance; on the demo model that
        reconstructs no better and its edits keep the content less often (model card, issue #7 table).
        """
        guidance = self.default_guidance if guidance is None else guidance
        self.check_sampling(guidance, steps, "ddim")
        prompt = self.check_prompt(prompt)
        feats, placement = self.motion_features(joints, features)
        frames = (len(feats) // 4) * 4
        if frames < 16:
            raise InputError(f"the motion is {len(feats)} frames long; inversion needs at least 16")
        if frames > self.max_frames:
            raise InputError(f"{frames} frames is longer than the model's {self.max_frames}; use edit_real, which "
                             "edits long clips in overlapping windows")
        feats = feats[:frames]
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
                                       diffusion=self.bundle.diffusion, callback=progress(steps))
        return Inversion(prompt, frames, z0, traj[-1], nulls, float(guidance) if nulls else 1.0, steps, feats,
                         placement)

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
        meta = self._meta(inv.prompt, 0, inv.frames, inv.guidance, inv.steps, "ddim")
        meta.update(source="inversion", placement=inv.placement)
        return Motion(joints[0], feats[0], meta, z)

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
            return self._mirrored(inv.features, self._real_meta(inv.prompt, len(inv.features), inv.placement), which)
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
        meta = self._meta(inv.prompt, 0, inv.frames, inv.guidance, inv.steps, "ddim")
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
                  callback: StepCallback | None = None, **edit: object) -> Motion:
        """Edit real motion of any length: overlapping windows, each inverted and edited, blended in features.

        Features are heading- and position-invariant per frame, so a linear cross-fade of the windows'
        features followed by one ``recover_from_ric`` stitches them without jumps. ``edit`` takes the
        arguments of :meth:`edit_inverted`; with none, the result is the inversion's reconstruction.
        """
        EditSpec.create(**edit)  # every edit field checked before any work
        R.check_value("overlap", overlap)
        R.check_value("null_text_iters", null_text_iters)
        feats, placement = self.motion_features(joints, features)
        which = self._geometric_mirror(str(edit.get("mode") or "auto"), edit.get("mirror"),  # type: ignore[arg-type]
                                       str(edit.get("mirror_method") or "geometric"))
        if which is not None:  # exact on the input itself: no inversion, any length
            return self._mirrored(feats, self._real_meta(self.check_prompt(prompt), len(feats), placement), which)
        total = (len(feats) // 4) * 4
        win = self.max_frames
        if not 0 <= overlap < win // 2:
            raise InputError(f"overlap must be within 0…{win // 2 - 1} frames")
        starts = [0] if total <= win else list(range(0, total - win, win - overlap)) + [total - win]
        starts = sorted(set(starts))
        n_win = len(starts)
        out = np.zeros((total, feats.shape[1]), np.float64)
        weight = np.zeros(total, np.float64)
        metas = []
        for k, s in enumerate(starts):
            length = min(win, total - s)

            def cb(i: int, n: int, k: int = k) -> None:
                if callback is not None:
                    callback(k * n + i, n_win * n)

            inv = self.invert(prompt, features=feats[s:s + length], guidance=guidance, steps=steps,
                              null_text_iters=null_text_iters, callback=cb)
            m = self.edit_inverted(inv, **edit) if edit else self.reconstruct(inv)
            metas.append(m.meta)
            w = np.ones(length)
            ramp = np.linspace(0, 1, overlap + 2)[1:-1] if overlap else np.zeros(0)
            if k > 0 and overlap:
                w[:overlap] = ramp
            if k < n_win - 1 and overlap:
                w[-overlap:] = ramp[::-1]
            out[s:s + length] += w[:, None] * m.features[:length]
            weight[s:s + length] += w
        blended = (out / weight[:, None]).astype(np.float32)
        blended[:, -4:] = (blended[:, -4:] > 0.5).astype(np.float32)  # contacts stay binary
        j = self._joints(blended)
        meta = {**metas[0], "frames": total, "windows": [[s, s + min(win, total - s)] for s in starts],
                "placement": placement}
        return Motion(j, blended, meta)

    # -- attention for people -----------------------------------------------------------------------

    def attention(self, prompt: str, frames: int | None = None, seconds: float | None = None, seed: int = 0,
                  guidance: float | None = None, steps: int = 50, scheduler: str = "ddim",
                  callback: StepCallback | None = None) -> AttentionMaps:
        """Generate and return each token's cross attention as a [7 parts × T/4] map."""
        from ..motion.skeleton import PART7_NAMES

        plan = self._plan(prompt, frames, seconds, seed, guidance, steps, scheduler)
        cfg = plan.guidance != 1.0
        rec = AttentionRecorder(batch=2 if cfg else 1, cond_rows=slice(1, 2) if cfg else slice(0, 1),
                                average_cross=True)
        z = self._sample_recorded(plan, rec, callback)
        feats, joints = self.decode(z)
        tokens = self.text_encoder.tokens(plan.prompt)
        t_lat = plan.frames // 4
        ca = rec.cross_mean()[0].reshape(t_lat, 7, -1)[..., : len(tokens)]
        maps = ca.permute(2, 1, 0).float().cpu().numpy()
        motion = Motion(joints[0], feats[0], plan.meta(self), z)
        return AttentionMaps(tokens, maps, motion, PART7_NAMES)
