"""What a shot is made from: its segments (prompt, seconds, seed), the motion it starts from, stable seeds.

Kept apart from :mod:`shots` (the director, which generates) because the serving layer, the evaluation and the
CLI parse and pass these without generating anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from .pipeline import InputError


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from its parts (same on every machine and Python run, unlike ``hash``)."""
    h = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class Segment:
    """One prompt of a timeline; ``seed`` None: derived from the shot seed and the segment's index."""

    prompt: str
    seconds: float
    seed: int | None = None

    @classmethod
    def parse(cls, spec: str) -> Segment:
        """``"PROMPT:SECONDS"`` or ``"PROMPT:SECONDS:SEED"`` (the prompt may itself contain colons)."""
        head, sep, last = str(spec).rpartition(":")
        if not sep:
            raise InputError(f"segment {spec!r} must be \"PROMPT:SECONDS\" (e.g. \"a person walks forward:4\")")
        seed = None
        prompt, sep2, secs = head.rpartition(":")
        try:
            float(last)
        except ValueError:
            raise InputError(f"segment {spec!r}: {last!r} is not a number of seconds") from None
        if sep2:
            try:  # PROMPT:SECONDS:SEED
                seconds, seed = float(secs), int(last)
            except ValueError:
                prompt, seconds = head, float(last)
        else:
            prompt, seconds = head, float(last)
        return cls(prompt.strip(), seconds, seed)

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "seconds": self.seconds, "seed": self.seed}


@dataclass
class ShotSource:
    """Motion a shot starts from: its latent [1, T', 7, C], de-normalised features [4T', D], placement."""

    latent: torch.Tensor
    features: np.ndarray
    placement: dict
    kind: str  # "generated" or "real"
    meta: dict
    poses: int = 0  # frames the user sees: length checks and results use it (a real source's padding excluded)

    @property
    def latent_frames(self) -> int:
        return int(self.latent.shape[1])
