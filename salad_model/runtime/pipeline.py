"""SaladPipeline: load a model, turn prompts into motion, edit it, explain it.

Networks (:mod:`vae`, :mod:`denoiser`), scheduler loop (:mod:`sampling`) and attention control
(:mod:`editing`) are separate objects; the pipeline wires them with the text encoder and the feature
statistics, validates user input, and returns plain results (numpy joints, features, metadata).

This module holds loading, device choice, checks, text context and decoding; the requests live in mixins:
:mod:`generation` (generate, batches, attention maps), :mod:`generated_edits` (edit, mirror),
:mod:`real_motion` (inversion, edit_real) and :mod:`motion_prior` (clean_motion). Result types are in
:mod:`results` and re-exported here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from .. import ASSETS_DIR
from ..cpu import apply_cpu_settings
from ..motion.features import recover_from_ric
from . import requests as R
from .checkpoints import ModelBundle, load_any
from .denoiser import TextContext
from .editing import SourceMaps
from .generated_edits import EditMixin
from .generation import GenerationMixin
from .motion_prior import MotionPriorMixin
from .real_motion import REAL_EDIT_GUIDANCE, RealMotionMixin  # noqa: F401 (re-exported)
from .requests import EDIT_MODES, MIRROR_METHODS, EditSpec, InputError  # noqa: F401 (re-exported)
from .results import AttentionMaps, Inversion, Motion  # noqa: F401 (re-exported)

DEMO_MODEL_DIR = ASSETS_DIR / "demo"


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` → cuda, then mps, then cpu."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, ValueError, TypeError):  # torch's own message lists twenty device types
        raise InputError(f"unknown device {device!r}: use auto, cpu, cuda (or cuda:N) or mps") from None


def _valid(prompt: str | None) -> bool:
    """A prompt the generation will take: one it refuses (blank, invisible, oversized) gets its error, not a
    "far from the training captions" warning first."""
    try:
        R.check_prompt_text(prompt)
    except InputError:
        return False
    return True


class SaladPipeline(GenerationMixin, EditMixin, RealMotionMixin, MotionPriorMixin):
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
        self._graphed = None  # GPU: a cuda_graph.GraphedDenoiser for plain generations (use_cuda_graphs)
        self.cpu_autocast: torch.dtype | None = None  # opt-in: plain generations' steps in bf16 (use_cpu_bf16)

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, model: str | Path = "demo", device: str = "auto", text_encoder=None,
                        threads: int | None = None) -> SaladPipeline:
        """``demo`` (bundled), a folder in our format, or an official checkpoint folder.

        Applies the CLI's CPU settings (:func:`salad_model.cpu.apply_cpu_settings`): torch uses ``threads``
        threads, by default OMP_NUM_THREADS or the physical cores. The constructor leaves torch's threads
        alone, for callers that manage them (the worker)."""
        apply_cpu_settings(threads)
        path = DEMO_MODEL_DIR if str(model) == "demo" else Path(model)
        return cls(load_any(path), text_encoder=text_encoder, device=device)

    def use_cuda_graphs(self, dtype: torch.dtype | None = torch.float16) -> None:
        """GPU only: plain generations replay a captured CUDA graph of the step under autocast ``dtype``
        (``None`` turns it off). Edits, attention maps and inversion keep the eager path (their controllers
        run Python inside every attention call)."""
        if dtype is None:
            self._graphed = None
            return
        from .cuda_graph import GraphedDenoiser

        self._graphed = GraphedDenoiser(self.denoiser, dtype)

    def use_cpu_bf16(self, on: bool = True) -> None:
        """Opt-in, CPU: plain generations run the denoiser under bfloat16 autocast (oneDNN; fast on CPUs with
        AMX / AVX512-BF16, measured 0.54x a step's CPU time here). Not exact: a step differs from fp32 by
        ~0.8% relative (README, "Speed"; benchmarks/bench_bf16.py). Generations that record maps, edits and
        inversion stay fp32 (an attention edit's source is then the fp32 generation, not the bf16 one)."""
        self.cpu_autocast = torch.bfloat16 if on else None

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

    @property
    def default_guider(self) -> dict | None:
        """The config's ``info.guider`` (:mod:`guiders`: how guided halves combine), None: plain CFG."""
        return self.info.get("guider")

    @property
    def fast_preset(self) -> dict:
        """Fast mode's sampler for this model: a step-distilled student's own (``info["distilled"]``: its
        steps, unguided — its default guidance is 1), any other model :data:`requests.FAST_PRESET`."""
        distilled = self.info.get("distilled")
        if isinstance(distilled, dict):
            return {"scheduler": str(distilled["scheduler"]), "steps": int(distilled["steps"]), "guided_steps": None}
        return dict(R.FAST_PRESET)

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

    def prompt_warnings(self, *prompts: str | None) -> list:
        """A :class:`~.novelty.PromptWarning` for each prompt far from the model's training captions.

        Uses the model folder's vocabulary (runtime/novelty.py); a model without one never warns, and neither does
        one whose vocabulary cannot be read (it is optional: a truncated ``vocabulary.safetensors`` failed every
        generation with an internal error) — that is said once, as a warning on stderr.
        """
        from .novelty import Vocabulary

        if not hasattr(self, "_vocabulary"):
            source = self.info.get("source")
            ours = self.info.get("format") != "official" and source
            try:
                self._vocabulary = Vocabulary.load(source) if ours else None
            except Exception as exc:  # noqa: BLE001 - SafetensorError, JSON, missing keys, shapes: all the same here
                warnings.warn(f"the model's vocabulary in {source} cannot be read ({type(exc).__name__}: {exc}); "
                              "prompts are not checked against the training captions", RuntimeWarning, stacklevel=2)
                self._vocabulary = None
        if self._vocabulary is None:
            return []
        found = (self._vocabulary.check(p, self.text_encoder) for p in dict.fromkeys(p for p in prompts if _valid(p)))
        return [w for w in found if w is not None]

    def prompt_routes(self, prompts: list[str | None]) -> list[str | None]:
        """Each prompt's route for a ``by_prompt`` guider: the dataset of its nearest training caption
        (:meth:`novelty.Vocabulary.dataset_of`); None for raw text features and models without one."""
        from .novelty import sentence_embeddings

        self.prompt_warnings()  # loads the vocabulary once (or None)
        vocab = self._vocabulary
        if vocab is None or vocab.datasets is None:
            return [None] * len(prompts)
        known = list(dict.fromkeys(p for p in prompts if _valid(p)))
        cache = self.__dict__.setdefault("_route_cache", {})
        if len(cache) > 4096:  # a long session's prompts: start over rather than grow without end
            cache.clear()
        todo = [p for p in known if p not in cache]
        if todo:
            for p, q in zip(todo, sentence_embeddings(self.text_encoder, todo), strict=True):
                cache[p] = vocab.dataset_of(q)
        return [cache.get(p) if _valid(p) else None for p in prompts]

    def guider_for(self, prompts: list[str | None], guidance: float, spec: dict | str | None = None):  # noqa: ANN201
        """The guider that combines the CFG halves of ``prompts`` at nominal ``guidance`` (``spec``: a
        :func:`guiders.make_guider` spec; None: the model's ``info.guider``) and each row's route (None when
        not routed). None: plain CFG at ``guidance``. A ``by_prompt`` spec picks each prompt's guider from its
        route, its scales multiplied by ``guidance`` / the model's default (guidance 1: unguided)."""
        from .guiders import is_routed, make_guider, routed_guider

        spec = self.default_guider if spec is None else spec
        try:
            if not is_routed(spec):
                return make_guider(spec, guidance), None
            if guidance == 1.0:
                return None, None
            routes = self.prompt_routes(prompts)
            return routed_guider(spec, routes, guidance / self.default_guidance), routes
        except ValueError as e:
            raise InputError(str(e)) from None

    @staticmethod
    def check_sampling(guidance: float, steps: int, scheduler: str) -> None:
        R.check_sampling(guidance, steps, scheduler)

    def _resolve_length(self, frames: int | None, seconds: float | None) -> int:
        R.check_length_args(frames, seconds)
        return self.check_frames(frames if frames is not None else self.frames_for(seconds))

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

    def _source_key(self, prompt: str, seed: int, frames: int, guidance: float, steps: int, scheduler: str,
                    guided_steps: int | None = None) -> tuple:
        """What identifies a generation (for the recorded maps and the last motion an edit starts from)."""
        guided = None if guided_steps is None or guided_steps >= steps else int(guided_steps)
        return (self.name, prompt, int(seed), frames, float(guidance), steps, scheduler, guided)

    def _joints(self, feats: np.ndarray) -> np.ndarray:
        """De-normalised features [T, D] (numpy) → joints [T, J, 3]."""
        with torch.inference_mode():
            return recover_from_ric(torch.from_numpy(feats), self.vae.skeleton.num_joints).numpy()

    def _meta(self, prompt: str | None, seed: int, frames: int, guidance: float, steps: int,
              scheduler: str) -> dict:
        return {"prompt": prompt, "seed": int(seed), "frames": int(frames), "fps": self.fps,
                "model": self.name, "guidance": float(guidance), "steps": int(steps),
                "scheduler": scheduler, "edits": []}
