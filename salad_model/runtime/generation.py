"""Generation: prompt(s) → motion, and the attention maps of a generation (mixed into SaladPipeline).

Every generation shares one path: :meth:`GenerationMixin._plan` (check → resolve length → initial noise)
then sampling, optionally with a recorder on the attention processors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from . import requests as R
from .editing import AttentionRecorder, MapRecorder, SourceMaps, recording_forward
from .guiders import guider_meta
from .requests import InputError
from .results import AttentionMaps, Motion
from .sampling import StepCallback, initial_noise, latent_mask, sample

if TYPE_CHECKING:
    from .pipeline import SaladPipeline


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


class GenerationMixin:
    """generate, generate_batch, attention; uses the pipeline's checks, text context and decoder."""

    def _plan(self, prompt: str, frames: int | None, seconds: float | None, seed: int, guidance: float | None,
              steps: int, scheduler: str, guided_steps: int | None = None) -> _Plan:
        """The shared first half of every generation: check → resolve length → initial noise."""
        guidance = self.default_guidance if guidance is None else guidance
        guidance, steps, scheduler = R.check_sampling(guidance, steps, scheduler)
        seed = R.check_seed(seed)
        frames = self._resolve_length(frames, seconds)
        prompt = self.check_prompt(prompt)
        z_T = initial_noise(seed, frames)[..., : self.denoiser.config.vae_dim].to(self.device)
        return _Plan(prompt, frames, seed, guidance, steps, scheduler, z_T,
                     self._source_key(prompt, seed, frames, guidance, steps, scheduler, guided_steps))

    def _sample_recorded(self, plan: _Plan, recorder, callback: StepCallback | None,
                         on_step=None) -> torch.Tensor:
        """The shared second half: sample ``plan`` with ``recorder`` watching the attention processors."""
        cond = self.text_context([plan.prompt])

        def run() -> torch.Tensor:
            with torch.inference_mode():
                return sample(self.denoiser, plan.z_T, cond, self._null(1), plan.guidance, plan.steps,
                              plan.scheduler, None, callback, on_step=on_step, diffusion=self.bundle.diffusion)

        return recording_forward(self.denoiser, run, recorder)

    # -- generation ---------------------------------------------------------------------------------

    def generate(self, prompt: str | None = None, frames: int | None = None, seconds: float | None = None,
                 seed: int = 0, guidance: float | None = None, steps: int = 50, scheduler: str = "ddim",
                 callback: StepCallback | None = None,
                 text_features: tuple[torch.Tensor, torch.Tensor] | None = None,
                 record_maps: bool = False, fast: bool = False) -> Motion:
        """One clip from a prompt (or raw text-encoder features); same inputs ⇒ the same motion.

        ``record_maps`` keeps this generation's attention maps so that the next edit of it skips the source
        pass (edits then cost about one generation instead of two). ``fast`` samples with
        the model's :attr:`fast_preset` (its steps and scheduler replace ``steps``/``scheduler``; no maps are
        recorded: an edit of a fast generation recomputes its source).
        """
        guided = None
        if R.check_value("fast", fast):
            steps, scheduler, guided = (self.fast_preset[k] for k in ("steps", "scheduler", "guided_steps"))
            record_maps = False
        if self.default_guider is not None:  # the recorders expect plain CFG's two rows on every step
            record_maps = False
        if not record_maps or text_features is not None:
            R.check_length_args(frames, seconds)
            return self.generate_batch([prompt], [frames] if frames is not None else None,
                                       [seconds] if seconds is not None else None, [seed], guidance, steps,
                                       scheduler, callback, text_features, guided_steps=guided)[0]
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
                       text_features: tuple[torch.Tensor, torch.Tensor] | None = None,
                       guided_steps: int | None = None, guider: dict | str | None = None) -> list[Motion]:
        """Several clips in one batched sampling run (lengths may differ: padded frames are masked).

        ``guided_steps``: guidance on the first N steps only (:func:`sampling.sample`; fast mode).
        ``guider``: how the guided halves combine (:func:`guiders.make_guider` spec, at scale ``guidance``);
        None: the model's ``info.guider``, and plain CFG when it has none; ``"cfg"``: plain CFG.
        """
        n = len(prompts)
        guidance = self.default_guidance if guidance is None else guidance
        guidance, steps, scheduler = R.check_sampling(guidance, steps, scheduler)
        if guided_steps is not None:
            guided_steps = R.check_value("guided_steps", guided_steps)
        if frames and seconds:
            raise InputError("give the lengths as frames or as seconds, not both")
        lengths = [self._resolve_length(frames[i] if frames else None, seconds[i] if seconds else None)
                   for i in range(n)]
        seeds = [R.check_seed(s) for s in seeds] if seeds else [0] * n
        if text_features is None:
            prompts = [self.check_prompt(p) for p in prompts]
        guide, routes = self.guider_for(prompts if text_features is None else [None] * n, guidance, guider)
        t_lat = max(lengths) // 4
        z_T = torch.cat([initial_noise(s, max(lengths)) for s in seeds])
        z_T = z_T.reshape(n, t_lat, 7, -1)[..., : self.denoiser.config.vae_dim].to(self.device)
        mask = latent_mask(lengths, t_lat).to(self.device) if len(set(lengths)) > 1 else None
        cond = self.text_context(prompts if text_features is None else None, text_features)
        bf16 = self.cpu_autocast is not None and self.device.type == "cpu"
        with torch.inference_mode(), torch.autocast("cpu", dtype=self.cpu_autocast or torch.bfloat16, enabled=bf16):
            net = self.denoiser if self._graphed is None else self._graphed
            z = sample(net, z_T, cond, self._null(n), guidance, steps, scheduler, mask, callback,
                       diffusion=self.bundle.diffusion, guided_steps=guided_steps, guider=guide)
        z = z.float()
        out = []
        for i in range(n):  # decode each clip alone: the VAE's temporal convolutions would read the padding
            zi = z[i : i + 1, : lengths[i] // 4]
            feats, joints = self.decode(zi)
            meta = self._meta(prompts[i], seeds[i], lengths[i], guidance, steps, scheduler)
            if guided_steps is not None and guided_steps < steps:
                meta["guided_steps"] = int(guided_steps)
            if guide is not None:
                meta["guider"] = guider_meta(guide, i, routes)
            out.append(Motion(joints[0], feats[0], meta, zi))
        return out

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
