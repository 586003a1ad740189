"""What the pipeline returns: a motion, an inversion of real motion, attention maps for people."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


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
    features: np.ndarray  # the input, de-normalised, padded to `frames` (a multiple of 4)
    placement: dict
    length: int = 0  # the input's own frame count (results are cut to it); 0: `frames`

    @property
    def poses(self) -> int:
        """Frames of every result: the input's count, without the VAE stride's padding."""
        return self.length or self.frames


@dataclass
class AttentionMaps:
    """Cross attention per prompt token, averaged over steps, layers and heads: maps [L, 7, T']."""

    tokens: list[str]
    maps: np.ndarray
    motion: Motion
    parts: tuple[str, ...] = field(default=())
