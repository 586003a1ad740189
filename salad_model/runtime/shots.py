"""Shots: prompt timelines of any length, continuation, in-betweens and body-part regeneration.

Everything here is latent inpainting (:mod:`inpainting`) with the pipeline's own networks and sampler:

* **Timelines** (``compose``): segments (prompt, seconds, optional seed) are generated window by window,
  each window no longer than the model's maximum; a window holds the last ``context_seconds`` of the
  latent made so far and denoises the new frames under its segment's prompt. The whole latent is decoded
  once and integrated once (``recover_from_ric``): SALAD's features are heading- and position-free per
  frame, so windows generated in the model's canonical frame need no re-alignment — the root trajectory
  and facing continue from the previous window's overlap by construction, and there is no decoder seam.
* **Prefix stability.** The VAE decoder reads a few latent frames *after* a frame (its "reach", measured
  from the decoder itself). Every segment's window therefore runs ``reach`` latent frames past the
  segment's end under the segment's own prompt ("spill") and the next segment holds them: the output
  frames before segment k depend on segments < k only, so editing or re-rolling segment k leaves
  everything before it unchanged. Window seeds derive from the segment (its seed, or hash(shot seed,
  index)) and the window's rank inside it — never from a global window counter.
* **Continue / in-between / part regeneration** hold the source's latent frames (or its kept parts); the
  source is a generation (its latent) or real motion (the VAE mean latent of its canonical features — the
  first step of the inversion path). Around a held-frame join the output cross-fades, inside the held
  context, from the source's own features to the decoded ones, so the source itself is kept outside the
  context and the join has no decoder-boundary jump.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from ..motion.foot_lock import lock_feet, trapezoid
from .attention import processor_installed
from .inpainting import PART_NAMES, Inpainting, legs_carry_root, parse_parts
from .kept_parts import follow_source
from .pipeline import InputError, Motion, SaladPipeline
from .pose_count import cut_padding, pad_to_stride, shift_index
from .requests import SEED_MAX, SEED_MIN
from .sampling import StepCallback, initial_noise, sample
from .seams import decoder_reach, smooth_seams
from .shot_free_guidance import context_free_frames
from .shot_inputs import Segment, ShotSource, derive_seed
from .shot_reweight import ContentReweight, reweight_processor
from .shot_text_blend import DEFAULT_TEXT_BLEND, TextBlend, blended_window

MAX_SHOT_SECONDS = 300.0  # a timeline's total length (cost is linear; 5 min keeps a job bounded)
DEFAULT_CONTEXT_SECONDS = 1.0  # held motion at a window's start (2 s cost per-segment content: model card)
# Seam settings (docs/MODEL_CARD.md, "Shots"; 6 timelines): plain replacement left a one-frame pop (jerk 1.39×
# the inside). Resampling (1.39×, 2× cost), a soft hand-over (``blend`` 2: 1.48×), an ``overhang`` (2: 1.51×) and
# a guidance ramp (8 frames: 1.34×) did not remove it; smoothing the features at the join (σ 1.5 frames) did.
DEFAULT_BLEND_FRAMES = 0  # latent frames over which a held context hands over softly to new motion
DEFAULT_OVERHANG_FRAMES = 0  # latent frames a window generates past what it keeps
DEFAULT_GUIDANCE_RAMP = 0  # latent frames after a held context over which text guidance rises to full
DEFAULT_SEAM_SMOOTHING = 1.5  # σ (frames) of the feature smoothing at joins; 0 = off
# Joins to existing (often captured) motion: planted feet are held still within this many seconds of the join
# (continue / in-between; docs/MODEL_CARD.md, "Shots"); 0 = off.
DEFAULT_FOOT_LOCK_SECONDS = 1.0
FOOT_LOCK_FADE = 4  # frames over which the foot lock eases in and out at the edges of its frames
FOOT_LOCK_BLEND = 5  # frames over which a held foot eases back to its own path around a contact
# How much of a planted foot's slide the lock removes at a timeline seam (generated on both sides). Full holds
# (1.0) raised the jerk at seams to 1.22× the inside (legs stretched to their length where the model's feet
# slide far); 0.8: 1.15× with the sliding at 0.73× (DDIM-10 check on 10 timelines, docs/MODEL_CARD.md "Shots").
FOOT_LOCK_STRENGTH = 0.8
# At a join to existing motion (continue / in-between; often a capture, whose feet barely slide) the whole
# slide: holding 0.8 left the in-between joins sliding 1.58× the captured frames around them (30 joins). There
# a toe planted with its heel is held too (foot_lock.reach_toward: 1.15× → 0.78× on 30 in-betweens); at
# timeline seams it raised the jerk (1.21× → 1.24× on 10 timelines), so seams hold the heel only.
JOIN_LOCK_STRENGTH = 1.0
# Where a segment's prompt takes over: "spill", 0.8 s after its start (after the previous prompt's spill);
HANDOVERS, DEFAULT_HANDOVER = ("spill", "nominal"), "spill"  # "nominal": at its start (shot_handover.py)


@dataclass
class _Window:
    segment: int
    chunk: int
    context: int  # held latent frames at the window's start
    new: int  # latent frames generated
    seed: int


class ShotDirector:
    """Shots with one :class:`SaladPipeline` (networks, scheduler and text encoder stay the pipeline's).

    ``context_seconds`` of motion condition each window; ``resample`` RePaint passes per step (0: plain
    replacement, the measured default — see the model card). After a seam, off by default (model card, "Content
    after a seam"): ``reweight`` scales the new prompt's content words on the new frames (shot_reweight);
    ``free_guidance`` hides the held context from the unconditional branch (shot_free_guidance).
    ``trim_last``: the last segment's windows stop where the shot ends instead of generating its spill, which
    the shot cuts — its content reads more like its prompt (model card, "The last segment's window"). The
    cost: a segment appended later re-makes the formerly last one (False keeps every frame when appending).
    None (the default) is "on where it applies": on with the spill hand-over, off with the nominal one (which
    plans its own windows); it is recorded resolved (True / False) in a timeline's options, the only kind it shapes.
    """

    def __init__(self, pipe: SaladPipeline, context_seconds: float = DEFAULT_CONTEXT_SECONDS, resample: int = 0,
                 guidance: float | None = None, steps: int = 50, scheduler: str = "ddim",
                 blend: int = DEFAULT_BLEND_FRAMES, overhang: int = DEFAULT_OVERHANG_FRAMES,
                 guidance_ramp: int = DEFAULT_GUIDANCE_RAMP, seam_smoothing: float = DEFAULT_SEAM_SMOOTHING,
                 foot_lock_seconds: float = DEFAULT_FOOT_LOCK_SECONDS, handover: str = DEFAULT_HANDOVER,
                 text_blend: TextBlend | None = DEFAULT_TEXT_BLEND, reweight: ContentReweight | None = None,
                 free_guidance: bool = False, trim_last: bool | None = None):
        self.pipe = pipe
        if handover not in HANDOVERS:
            raise InputError(f"handover must be one of {', '.join(HANDOVERS)}, got {handover!r}")
        self.guidance = pipe.default_guidance if guidance is None else float(guidance)
        pipe.check_sampling(self.guidance, steps, scheduler)
        if not isinstance(resample, int) or not 0 <= resample <= 10:
            raise InputError(f"resample must be an integer in 0–10, got {resample!r}")
        if resample and scheduler != "ddim":
            raise InputError("resampling needs the ddim sampler")
        self.steps, self.scheduler, self.resample = steps, scheduler, resample
        self.max_lat = pipe.max_frames // 4
        self.min_lat = -(-pipe.min_frames // 4)
        ctx = int(round(context_seconds * pipe.fps / 4))
        if not 1 <= ctx <= self.max_lat // 2:
            raise InputError(f"context must be within {4 / pipe.fps:.1f}–{(self.max_lat // 2) * 4 / pipe.fps:.1f} s, "
                             f"got {context_seconds!r}")
        if not isinstance(blend, int) or not 0 <= blend < ctx:
            raise InputError(f"blend must be an integer within 0…{ctx - 1} latent frames, got {blend!r}")
        if not isinstance(overhang, int) or not 0 <= overhang <= self.max_lat // 4:
            raise InputError(f"overhang must be an integer within 0…{self.max_lat // 4} latent frames")
        if not isinstance(guidance_ramp, int) or not 0 <= guidance_ramp <= self.max_lat // 4:
            raise InputError(f"guidance_ramp must be an integer within 0…{self.max_lat // 4} latent frames")
        if not isinstance(seam_smoothing, (int, float)) or not 0 <= seam_smoothing <= 4:
            raise InputError(f"seam_smoothing must be within 0…4 frames, got {seam_smoothing!r}")
        if handover == "nominal" and trim_last:
            raise InputError("trim_last takes the spill hand-over (the nominal one plans its own windows); "
                             "leave it unset or False with handover='nominal'")
        if handover == "nominal" and blend:
            raise InputError("the nominal hand-over holds the context strictly: blend must be 0")
        self.context, self.blend, self.overhang, self.guidance_ramp = ctx, blend, overhang, guidance_ramp
        self.seam_smoothing, self.handover = float(seam_smoothing), handover
        self.text_blend = None if text_blend is None else text_blend.checked(ctx, self.max_lat)
        self.reweight = None if reweight is None else reweight.checked()
        if self.reweight is not None and self.text_blend is not None:
            raise InputError("content re-weighting and a text blend both replace the cross attention: choose one")
        if not isinstance(free_guidance, bool):
            raise InputError(f"free_guidance must be True or False, got {free_guidance!r}")
        self.free_guidance = free_guidance
        if trim_last is not None and not isinstance(trim_last, bool):
            raise InputError(f"trim_last must be True, False or None (on where it applies), got {trim_last!r}")
        self.trim_last = handover != "nominal" if trim_last is None else trim_last
        if isinstance(foot_lock_seconds, bool) or not isinstance(foot_lock_seconds, (int, float)) \
                or not 0 <= foot_lock_seconds <= 5:
            raise InputError(f"foot_lock_seconds must be within 0…5 s, got {foot_lock_seconds!r}")
        self.foot_lock = int(round(foot_lock_seconds * pipe.fps))  # frames either side of a join
        self.reach = decoder_reach(pipe.vae, pipe.denoiser.config.vae_dim, pipe.device)
        # latent frames a segment's windows run past its end: the decoder's reach (prefix stability) + the
        # soft hand-over, which the next window may still change
        # (and at least the seam smoothing's reach back, 5σ frames, so smoothing never touches an earlier segment)
        self.spill = max(self.reach + blend, -(-int(np.ceil(5 * self.seam_smoothing)) // 4))
        self._text: dict[str, object] = {}

    # -- sources ------------------------------------------------------------------------------------

    def source(self, motion: Motion | None = None, joints: np.ndarray | None = None,
               features: np.ndarray | None = None) -> ShotSource:
        """A generation (its latent is reused exactly) or real motion (canonicalised, VAE-encoded)."""
        pipe = self.pipe
        if motion is not None and motion.latent is not None:
            lat = motion.latent.detach().to(pipe.device, torch.float32)
            if lat.dim() != 4 or lat.shape[0] != 1:
                raise InputError(f"a source motion's latent must be [1, T', 7, C], got {tuple(lat.shape)}")
            t_lat = min(int(lat.shape[1]), len(motion.features) // 4)  # features and latent cover the same frames
            lat, feats = lat[:, :t_lat], np.asarray(motion.features, np.float32)[: 4 * t_lat]
            return ShotSource(lat, feats, dict(motion.meta.get("placement", {"root_xz": [0.0, 0.0], "heading": 0.0})),
                              "generated", dict(motion.meta), len(feats))
        if motion is not None:
            features = motion.features
        feats, placement = pipe.motion_features(joints, features)
        n = len(feats)
        if n < 4:
            raise InputError(f"the motion is {n} frames long; a shot source needs at least 4")
        feats = pad_to_stride(feats)  # N poses → N rows + held padding (why: pose_count)
        x = (torch.from_numpy(np.array(feats)).to(pipe.device) - pipe.mean) / pipe.std
        with torch.inference_mode():
            _, mu, _ = pipe.vae.encode(x[None], sample=False)
        return ShotSource(mu.clone(), feats, placement, "real", {"frames": n}, n)

    def _as_source(self, src: ShotSource | Motion | np.ndarray) -> ShotSource:
        if isinstance(src, ShotSource):
            return src
        if isinstance(src, Motion):
            return self.source(motion=src)
        return self.source(joints=np.asarray(src))

    # -- validation -----------------------------------------------------------------------------------

    def _check_seconds(self, seconds: float, what: str, lo: float, hi: float) -> int:
        """Seconds → latent frames, with an error naming the allowed range."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise InputError(f"{what} must be a number of seconds, got {seconds!r}")
        if not lo - 1e-9 <= seconds <= hi + 1e-9:
            raise InputError(f"{what} is {seconds:g} s; it must be within {lo:g}–{hi:g} s")
        return max(1, int(round(seconds * self.pipe.fps / 4)))

    @property
    def min_segment_seconds(self) -> float:
        return max(self.pipe.min_frames, 4 * (self.reach + 1)) / self.pipe.fps

    def _check_segments(self, segments: Sequence[Segment | dict | tuple]) -> list[Segment]:
        if not segments:
            raise InputError("a shot needs at least one segment")
        out = []
        for k, s in enumerate(segments):
            if isinstance(s, dict):
                s = Segment(s.get("prompt", ""), s.get("seconds"), s.get("seed"))  # type: ignore[arg-type]
            elif isinstance(s, (tuple, list)):
                s = Segment(*s)
            if not isinstance(s.prompt, str) or not s.prompt.strip():
                raise InputError(f"segment {k + 1} has an empty prompt: describe the action")
            try:
                prompt = self.pipe.check_prompt(s.prompt)
            except InputError as exc:
                raise InputError(f"segment {k + 1}: {exc}") from exc
            self._check_seconds(s.seconds, f"segment {k + 1}'s duration", self.min_segment_seconds, MAX_SHOT_SECONDS)
            if s.seed is not None and (isinstance(s.seed, bool) or not isinstance(s.seed, (int, np.integer))
                                       or not SEED_MIN <= int(s.seed) <= SEED_MAX):
                raise InputError(f"segment {k + 1}'s seed must be an integer within {SEED_MIN} … {SEED_MAX} "
                                 f"(as every seed), got {s.seed!r}")
            out.append(Segment(prompt, float(s.seconds), None if s.seed is None else int(s.seed)))
        total = sum(s.seconds for s in out)
        if total > MAX_SHOT_SECONDS + 1e-9:
            raise InputError(f"the shot is {total:g} s long; the limit is {MAX_SHOT_SECONDS:g} s")
        return out

    # -- sampling one window ------------------------------------------------------------------------

    def _cond(self, prompt: str):
        if prompt not in self._text:
            self._text[prompt] = self.pipe.text_context([prompt])
        return self._text[prompt]

    def _ramp(self, ctx: int, rising: bool = False) -> torch.Tensor:
        """Hold weights of a context of ``ctx`` latent frames: 1, then ``blend`` frames falling towards 0
        next to the generated frames (``rising``: the mirror image, for a context that follows them)."""
        w = torch.ones(ctx)
        b = min(self.blend, max(ctx - 1, 0))
        if b:
            w[ctx - b:] = 1.0 - torch.arange(1, b + 1, dtype=torch.float32) / (b + 1)
        return w.flip(0) if rising else w

    def _guidance_weights(self, held: torch.Tensor) -> torch.Tensor:
        """[1, T'] text-guidance weights: a ramp 1/(R+1) … R/(R+1) on the R free frames next to held frames."""
        h = (held > 0).any(-1)[0].cpu()  # frames with anything held
        dist = torch.full((len(h),), 10**6)
        idx = torch.nonzero(h).flatten()
        if len(idx):
            t = torch.arange(len(h))
            dist = (t[:, None] - idx[None, :]).abs().min(1).values  # 1 = next to a held frame
        r = self.guidance_ramp
        w = torch.clamp(dist.float() / (r + 1), max=1.0) if r else torch.ones(len(h))
        w[h] = 1.0
        return w[None]

    def _sample(self, prompt: str, known: torch.Tensor, inpaint_mask: torch.Tensor | None, seed: int,
                callback: StepCallback | None, prev: tuple[str, int] | None = None) -> torch.Tensor:
        """Denoise a window of ``known.shape[1]`` latent frames; cells where the mask is True follow ``known``.
        ``prev`` (previous prompt, held frames): blend it into the text across the seam (shot_text_blend)."""
        pipe = self.pipe
        t_lat = int(known.shape[1])
        z_T = initial_noise(seed, 4 * t_lat)[..., : pipe.denoiser.config.vae_dim].to(pipe.device)
        inp = None
        if inpaint_mask is not None and bool(inpaint_mask.any()):
            frames_held = bool(((inpaint_mask > 0).sum(-1) == 7).any())  # time holds (not part regeneration)
            gw = self._guidance_weights(inpaint_mask) if frames_held else None
            free = context_free_frames(inpaint_mask) if self.free_guidance and prev is not None else None
            inp = Inpainting(known, inpaint_mask, noise_seed=derive_seed(seed, "held"), resample=self.resample,
                             guidance_weights=gw, uncond_frames=free)
        cond, null, proc = self._cond(prompt), pipe._null(1), None  # after a seam, an option may swap these
        if prev is not None and self.text_blend is not None:
            cond, null, proc = blended_window(self, prev, prompt, t_lat)
        elif prev is not None and self.reweight is not None:
            proc = reweight_processor(self, prev[1], prompt, t_lat)
        guide, _ = pipe.guider_for([prompt], self.guidance)  # the model's guider, as generate() has it
        if guide is not None and not guide.per_step_scale:  # (APG, rescale: plain CFG at the guidance, as before)
            guide = None
        with torch.inference_mode(), processor_installed(pipe.denoiser, proc) if proc else nullcontext():
            return sample(pipe.denoiser, z_T, cond, null, self.guidance, self.steps, self.scheduler, None, callback,
                          diffusion=pipe.bundle.diffusion, inpaint=inp, guider=guide)

    def _extend(self, latent: torch.Tensor | None, prompt: str, new_total: int, seg_seed: int, segment: int,
                progress: _Progress, windows: list[dict], prev_prompt: str | None = None) -> torch.Tensor:
        """Append ``new_total`` latent frames under ``prompt`` in windows, each holding the latent's tail."""
        made = 0 if latent is None else int(latent.shape[1])
        chunk = 0
        while new_total > 0:
            ctx = min(self.context, made)
            new = min(new_total, self.max_lat - ctx - self.overhang)
            if ctx + new + self.overhang < self.min_lat:  # short: hold more of the past (≥ the model's minimum)
                ctx = min(made, self.min_lat - new - self.overhang)
            seed = derive_seed(seg_seed, chunk)
            dim = self.pipe.denoiser.config.vae_dim
            n = ctx + new + self.overhang
            known = torch.zeros(1, n, 7, dim, device=self.pipe.device)
            mask = torch.zeros(1, n, 7, device=self.pipe.device)
            if ctx:
                known[:, :ctx] = latent[:, made - ctx:]
                mask[:, :ctx] = self._ramp(ctx)[:, None].to(mask.device)
            prev = (prev_prompt, ctx) if prev_prompt is not None and chunk == 0 and ctx else None
            z = self._sample(prompt, known, mask, seed, progress.window(), prev)[:, : ctx + new]  # − the overhang
            windows.append({"segment": segment, "chunk": chunk, "start_frame": 4 * (made - ctx),
                            "context_frames": 4 * ctx, "new_frames": 4 * new, "seed": seed})
            # the soft hand-over frames of the context take the window's values; strictly held ones are unchanged
            soft = ctx - int((self._ramp(ctx) == 1).sum()) if ctx else 0
            latent = z if latent is None else torch.cat([latent[:, : made - soft], z[:, ctx - soft:]], dim=1)
            made += new
            new_total -= new
            chunk += 1
        return latent

    def _plan_windows(self, latent_frames: int, made: int) -> int:
        """How many windows appending ``latent_frames`` to ``made`` takes (for the progress total)."""
        n = 0
        while latent_frames > 0:
            ctx = min(self.context, made)
            new = min(latent_frames, self.max_lat - ctx - self.overhang)
            made += new
            latent_frames -= new
            n += 1
        return n

    # -- decoding -------------------------------------------------------------------------------------

    def _decode(self, latent: torch.Tensor) -> np.ndarray:
        pipe = self.pipe
        with torch.inference_mode():
            return (pipe.vae.decode(latent) * pipe.std + pipe.mean)[0].float().cpu().numpy()

    def _motion(self, feats: np.ndarray, latent: torch.Tensor | None, meta: dict,
                lock: list[tuple[int, int]] | None = None, strength: float = FOOT_LOCK_STRENGTH,
                hold_toes: bool = False, smooth: bool = True) -> Motion:
        """Smooth the seams, integrate; ``lock``: frame ranges [lo, hi) where planted feet are held still.

        Each range is locked seeing only the frames before its end (a contact run is cut there), so a lock
        never makes a frame depend on later motion (a timeline's prefix stays stable).
        """
        if smooth:
            feats = smooth_seams(feats, meta["shot"].get("seams", []), self.seam_smoothing)
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        joints = self.pipe._joints(feats)
        done = []
        for lo, hi in (lock or []) if self.foot_lock else []:
            lo, hi = max(0, int(lo)), min(len(joints), int(hi))
            if hi - lo > 2 * FOOT_LOCK_FADE:
                w = strength * trapezoid(hi, [(lo, hi)], FOOT_LOCK_FADE)
                joints[:hi] = lock_feet(joints[:hi], feats[:hi, -4:], w, blend=FOOT_LOCK_BLEND, hold_toes=hold_toes)
                done.append([lo, hi])
        if done:
            meta["shot"]["foot_lock"] = done
        return Motion(joints, feats, meta, latent)

    def options(self) -> dict:
        """The director's settings beyond context and resample, as :class:`ShotDirector` takes them: recorded in
        every result's ``meta["shot"]["options"]`` so a shot can be made again after the defaults change."""
        tb = self.text_blend
        return {"blend": self.blend, "overhang": self.overhang, "guidance_ramp": self.guidance_ramp,
                "seam_smoothing": self.seam_smoothing, "foot_lock_seconds": self.foot_lock / self.pipe.fps,
                "handover": self.handover, "text_blend": None if tb is None else [tb.start, tb.ramp],
                "trim_last": self.trim_last}

    def _meta(self, kind: str, prompt: str, seed: int, frames: int, **extra: object) -> dict:
        """The result's meta; its options record ``trim_last`` only for a timeline, the one kind it shapes (it read
        True on continuations, in-betweens and part regenerations, where it does nothing; their older metadata
        with it still makes a director: the option is accepted and unused there)."""
        meta = self.pipe._meta(prompt, seed, frames, self.guidance, self.steps, self.scheduler)
        if self.pipe.default_guider is not None:  # each window's prompt took its guider from it (_sample)
            meta["guider"] = self.pipe.default_guider
        options = self.options()
        if kind != "compose":
            del options["trim_last"]
        meta["shot"] = {"kind": kind, "context_seconds": self.context * 4 / self.pipe.fps,
                        "resample": self.resample, "options": options, **extra}
        return meta

    # -- timelines ------------------------------------------------------------------------------------

    def compose(self, segments: Sequence[Segment | dict | tuple], seed: int = 0,
                callback: StepCallback | None = None) -> Motion:
        """One continuous motion from a list of segments (any total length up to :data:`MAX_SHOT_SECONDS`).

        Same segments and seed ⇒ the same motion; changing segment k leaves frames before its start
        unchanged. ``meta["shot"]["segments"]`` gives each segment's frames and where its prompt's own
        content starts (``reach`` latent frames after the nominal start: the previous prompt's spill).
        """
        segs = self._check_segments(segments)
        fps = self.pipe.fps
        lat = [self._check_seconds(s.seconds, "duration", 0, MAX_SHOT_SECONDS) for s in segs]
        if self.handover == "nominal":
            from .shot_handover import compose_nominal
            return compose_nominal(self, segs, lat, seed, callback)
        # latent frames each segment's windows generate: its own, + spill past its end, − the previous spill
        wants = [n + self.spill - (self.spill if k else 0) for k, n in enumerate(lat)]
        if self.trim_last:  # the last window ends with the shot, as a single clip of that length would
            wants[-1] -= self.spill
        n_windows, made = 0, 0
        for w in wants:
            n_windows += self._plan_windows(w, made)
            made += w
        progress = _Progress(callback, n_windows, self.steps)
        latent: torch.Tensor | None = None
        windows: list[dict] = []
        seg_seeds = [s.seed if s.seed is not None else derive_seed(seed, "segment", k) for k, s in enumerate(segs)]
        for k, (s, w) in enumerate(zip(segs, wants, strict=True)):
            latent = self._extend(latent, s.prompt, w, seg_seeds[k], k, progress, windows,
                                  segs[k - 1].prompt if k else None)
        total = 4 * sum(lat)
        feats = self._decode(latent)[:total]
        bounds = np.cumsum([0] + [4 * n for n in lat])
        seg_meta = [{**s.to_dict(), "seed": seg_seeds[k], "start": int(bounds[k]), "end": int(bounds[k + 1]),
                     "content_start": int(bounds[k] + (4 * self.spill if k else 0)),
                     "content_end": int(min(bounds[k + 1] + 4 * self.spill, total))}
                    for k, s in enumerate(segs)]
        seams = [w["start_frame"] + w["context_frames"] for w in windows[1:]]
        meta = self._meta("compose", "; ".join(s.prompt for s in segs), seed, total, segments=seg_meta,
                          windows=windows, seams=[int(x) for x in seams if x < total],
                          spill_frames=4 * self.spill, blend_frames=4 * self.blend, seconds=total / fps)
        # feet locked around each seam, within the seam's own segment (frames before it never change)
        lock = [(max(int(bounds[w["segment"]]), x - self.foot_lock),
                 min(int(bounds[w["segment"] + 1]), x + self.foot_lock))
                for w, x in zip(windows[1:], seams, strict=True) if x < total]
        return self._motion(feats, latent[:, : total // 4], meta, lock=lock)

    # -- continue / in-between ------------------------------------------------------------------------

    def _blend(self, base: np.ndarray, decoded: np.ndarray, a: int, b: int, rising: bool) -> np.ndarray:
        """Cross-fade ``base`` → ``decoded`` over frames [a, b) (``rising``) or decoded → base."""
        out = decoded.copy()
        w = np.linspace(0.0, 1.0, b - a + 2)[1:-1] if b > a else np.zeros(0)
        w = w if rising else w[::-1]
        out[a:b] = (1 - w[:, None]) * base[a:b] + w[:, None] * decoded[a:b]
        out[a:b, -4:] = np.where(w[:, None] < 0.5, base[a:b, -4:], decoded[a:b, -4:])  # contacts stay binary
        return out

    def continue_motion(self, source: ShotSource | Motion | np.ndarray, prompt: str, seconds: float,
                        seed: int = 0, callback: StepCallback | None = None) -> Motion:
        """The source followed by ``seconds`` of new motion under ``prompt`` (conditioned on its last context).

        The source's frames before its held context are returned unchanged; within the context the output
        cross-fades from the source to the model's reading of it, so the join has no jump.
        """
        prompt = self.pipe.check_prompt(prompt)
        src = self._as_source(source)
        n_new = self._check_seconds(seconds, "continuation", 8 / self.pipe.fps, MAX_SHOT_SECONDS)
        if src.poses < 4 * self.context:  # the user's frame count, not the padded latent's
            raise InputError(f"the motion to continue is {src.poses / self.pipe.fps:.2f} s long; "
                             f"it must be at least the {self.context * 4 / self.pipe.fps:.1f} s conditioning window")
        progress = _Progress(callback, self._plan_windows(n_new, src.latent_frames), self.steps)
        windows: list[dict] = []
        latent = self._extend(src.latent, prompt, n_new, derive_seed(seed, "continue"), 0, progress, windows)
        decoded = self._decode(latent)
        t_src = 4 * src.latent_frames
        a = t_src - 4 * self.context
        base = np.concatenate([src.features, decoded[t_src:]])
        feats = self._blend(base, decoded, a, t_src, rising=True)
        feats[:a] = src.features[:a]
        n_src = src.poses  # a real source's stride padding is cut: its N poses, then the new motion
        at = partial(shift_index, start=n_src, stop=t_src)
        feats = cut_padding(feats, n_src, t_src)
        meta = self._meta("continue", prompt, seed, len(feats), source_frames=n_src, source_kind=src.kind,
                          seams=[at(t_src)] + [at(w["start_frame"] + w["context_frames"]) for w in windows[1:]],
                          windows=windows, blend=[min(a, n_src), at(t_src)])
        meta["placement"] = src.placement
        lock = [(min(max(a, t_src - self.foot_lock), n_src), at(t_src + self.foot_lock))]
        return self._motion(feats, latent, meta, lock=lock, strength=JOIN_LOCK_STRENGTH, hold_toes=True)

    def inbetween(self, a: ShotSource | Motion | np.ndarray, b: ShotSource | Motion | np.ndarray, prompt: str,
                  seconds: float, seed: int = 0, callback: StepCallback | None = None) -> Motion:
        """A's motion, a generated gap of ``seconds`` under ``prompt``, then B's motion, in one window.

        B's frames keep their shape but follow on from the gap: its position and heading come from
        integrating the whole result (features are position- and heading-free), not from where B was.
        """
        prompt = self.pipe.check_prompt(prompt)
        sa, sb = self._as_source(a), self._as_source(b)
        fps = self.pipe.fps
        min_ctx = max(1, self.context // 2)
        hi = (self.max_lat - 2 * min_ctx) * 4 / fps
        gap = self._check_seconds(seconds, "in-between gap", 0.2, hi)
        ctx = min(self.context, (self.max_lat - gap) // 2)
        for name, s in (("A", sa), ("B", sb)):
            if s.poses < 4 * ctx:
                raise InputError(f"motion {name} is {s.poses / fps:.2f} s long; it must be at least the "
                                 f"{ctx * 4 / fps:.1f} s conditioning window")
        dim = self.pipe.denoiser.config.vae_dim
        n = 2 * ctx + gap
        if n < self.min_lat:
            raise InputError(f"the in-between window is {n * 4 / fps:.1f} s; make the gap at least "
                             f"{(self.min_lat - 2 * ctx) * 4 / fps:.1f} s")
        known = torch.zeros(1, n, 7, dim, device=self.pipe.device)
        known[:, :ctx] = sa.latent[:, -ctx:]
        known[:, ctx + gap:] = sb.latent[:, :ctx]
        mask = torch.zeros(1, n, 7, device=self.pipe.device)
        mask[:, :ctx] = self._ramp(ctx)[:, None].to(mask.device)
        mask[:, ctx + gap:] = self._ramp(ctx, rising=True)[:, None].to(mask.device)
        soft = ctx - int((self._ramp(ctx) == 1).sum())
        s = derive_seed(seed, "inbetween")
        z = self._sample(prompt, known, mask, s, _Progress(callback, 1, self.steps).window())
        latent = torch.cat([sa.latent[:, : sa.latent_frames - soft], z[:, ctx - soft:ctx + gap + soft],
                            sb.latent[:, soft:]], dim=1)
        decoded = self._decode(latent)
        ta, g = 4 * sa.latent_frames, 4 * gap
        base = np.concatenate([sa.features, decoded[ta:ta + g], sb.features])
        feats = self._blend(base, decoded, ta - 4 * ctx, ta, rising=True)
        feats = self._blend(base, feats, ta + g, ta + g + 4 * ctx, rising=False)
        feats[: ta - 4 * ctx] = sa.features[: ta - 4 * ctx]
        feats[ta + g + 4 * ctx:] = sb.features[4 * ctx:]
        # real sources' stride padding is cut: A's N poses, the gap, B's N poses (why: pose_count)
        na = sa.poses
        feats = cut_padding(feats, na, ta)[: na + g + sb.poses]
        at = partial(shift_index, start=na, stop=ta, end=len(feats))
        tb, w = ta + g, self.foot_lock
        meta = self._meta("inbetween", prompt, seed, len(feats), a_frames=na, b_frames=sb.poses,
                          gap=[at(ta), at(tb)], seams=[at(ta), at(tb)], context_frames=4 * ctx, window_seed=s,
                          source_kinds=[sa.kind, sb.kind])
        meta["placement"] = sa.placement
        lock = [(at(max(ta - 4 * ctx, ta - w)), at(ta + w)), (at(tb - w), at(min(tb + w, tb + 4 * ctx)))]
        return self._motion(feats, latent, meta, lock=lock, strength=JOIN_LOCK_STRENGTH, hold_toes=True)

    # -- body parts -----------------------------------------------------------------------------------

    def regenerate_parts(self, source: ShotSource | Motion | np.ndarray, prompt: str,
                         parts: str | Sequence[str | int], seed: int = 0,
                         callback: StepCallback | None = None, keep_path: bool = False) -> Motion:
        """Regenerate the chosen latent parts from ``prompt``; the other parts follow the source exactly in latent.

        A kept root part keeps the source's path, heading and height in world space; a real source's kept parts
        are its own joints, and the regenerated chains hang from them (:mod:`kept_parts`).

        ``parts``: presets ``arms``, ``legs``, ``upper``, ``lower`` (… see :data:`inpainting.PART_PRESETS`),
        part names, or indices 0–6 (root, left leg, right leg, torso, left arm, right arm, head). Legs take the
        root with them unless ``keep_path`` (:func:`inpainting.legs_carry_root`: new legs under a kept path slide).
        """
        try:
            regen = legs_carry_root(parse_parts(parts), keep_path)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        prompt = self.pipe.check_prompt(prompt)
        src = self._as_source(source)
        n = src.poses  # the count the user sees, not the VAE stride's
        if not self.pipe.min_frames <= n <= self.pipe.max_frames or src.latent_frames > self.max_lat:
            raise InputError(f"part regeneration takes motions of {self.pipe.min_frames} to {self.pipe.max_frames} "
                             f"frames ({self.pipe.min_frames / self.pipe.fps:.1f}–"
                             f"{self.pipe.max_frames / self.pipe.fps:.1f} s); this one is {n} frames "
                             f"({n / self.pipe.fps:.2f} s)")
        keep = [p for p in range(7) if p not in regen]
        inp_mask = torch.zeros(src.latent.shape[:3], dtype=torch.bool, device=self.pipe.device)
        inp_mask[:, :, keep] = True
        z = self._sample(prompt, src.latent, inp_mask, derive_seed(seed, "parts"),
                         _Progress(callback, 1, self.steps).window())
        # Every joint is decoded from all parts' latents: new arm / torso latents bent the path of a held root
        # (a walk under "upper" covered 6.3 m of the source's 7.7 m) and a captured clip's kept joints came back
        # as the VAE's reconstruction (2.7 cm off, feet sliding). A kept root is the source's own path; a captured
        # clip's kept joints are its own too (a generation's decode within 0.4 cm of it: kept_parts).
        feats = follow_source(self._decode(z)[:n], src.features, regen, self.pipe.vae.layout,
                              joints=src.kind == "real")
        meta = self._meta("parts", prompt, seed, len(feats), parts=[PART_NAMES[p] for p in regen],
                          part_indices=list(regen), source_kind=src.kind,
                          source_prompt=src.meta.get("prompt"))
        meta["placement"] = src.placement
        return self._motion(feats, z, meta)


class _Progress:
    """Per-step progress over several windows: window k's step i is reported as k·steps + i of the total."""

    def __init__(self, callback: StepCallback | None, windows: int, steps: int):
        self.callback, self.total, self.steps, self.k = callback, max(windows, 1) * steps, steps, 0

    def window(self) -> StepCallback | None:
        if self.callback is None:
            return None
        base, self.k = self.k * self.steps, self.k + 1
        cb = self.callback
        return lambda i, n: cb(base + i, self.total)
