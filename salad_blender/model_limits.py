"""What a model can take (its shortest and longest clip), as far as the add-on knows it before a job starts (no bpy).

Why: a job on existing animation samples it first (frame by frame on a rig with constraints: seconds for a long
action) and only then hears from the worker that the model cannot take it. The limits are the model's own, never
the demo's numbers copied: what the worker answered when it loaded that model this session (``load`` returns the
model info), else the ``info`` of a model folder's ``config.json`` (our format). Unknown (an official checkpoint
folder or the demo model before its first load): None, and the worker's own message stays the check.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """A model's clip lengths: ``min_frames`` to ``max_frames`` poses at ``fps``."""

    fps: float
    min_frames: int
    max_frames: int

    @property
    def max_seconds(self) -> float:
        return self.max_frames / self.fps


_LOADED: dict[str, Limits] = {}  # model ("demo" or a folder, as the load request named it) → what the worker said


def _limits(info: Any) -> Limits | None:
    """Limits from a model-info-like mapping (fps, min_frames, max_frames), None if any is missing or odd."""
    if not isinstance(info, dict):
        return None
    fps, lo, hi = info.get("fps", 20.0), info.get("min_frames"), info.get("max_frames")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
               for v in (fps, lo, hi)) or lo > hi:
        return None
    return Limits(float(fps), int(lo), int(hi))


def remember(model: str | None, info: Any) -> None:
    """Record what the worker answered a ``load`` of ``model`` with (its model info)."""
    got = _limits(info)
    if model and got is not None:
        _LOADED[model] = got


def forget() -> None:
    _LOADED.clear()


def known(model: str) -> Limits | None:
    """``model``'s limits: the worker's word this session, else its folder's config.json, else None."""
    if model in _LOADED:
        return _LOADED[model]
    if model == "demo" or not os.path.isdir(model):
        return None
    try:
        with open(os.path.join(model, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None  # an official checkpoint folder has none; a broken one is the worker's to explain
    return _limits(config.get("info") if isinstance(config, dict) else None)
