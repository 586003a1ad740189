"""Overlapping model-length windows over a long clip, and their cross-fade (clean_motion and edit_real).

A clip longer than the model's window (``max_frames``) is worked on in windows whose features are cross-faded.
Every window is the model's full length: the first starts at frame 0, the next ones ``win - overlap`` later, the
last ends on the clip's last frame. So a clip a little longer than one window gets two windows that overlap by
far more than ``overlap`` (a 200-frame clip: two 196-frame windows sharing 192 frames; over 9.8–19.6 s clips
~114 frames on average, measured). That is intended, not waste in the count: it is the fewest full-length windows
that cover the clip with at least ``overlap`` frames shared (``ceil((T - overlap) / (win - overlap))``), and every
window sees as much motion as the model was trained to see — a short last window (fewer frames computed) would
work on the clip's end with less context, or fall below ``min_frames``. Each window's weight ramps linearly over
its first and last ``overlap`` frames (not at the clip's ends); where two windows both have weight 1 (the middle
of a wide overlap) the result is their mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """Frames ``start:stop`` of the clip and the cross-fade weight of each ([stop - start])."""

    start: int
    stop: int
    weight: np.ndarray

    @property
    def frames(self) -> slice:
        return slice(self.start, self.stop)


def layout(total: int, win: int, overlap: int) -> list[Window]:
    """The windows covering ``total`` frames: full length ``win`` (one shorter window if the clip is), sharing at
    least ``overlap`` frames (0 ≤ overlap < win, checked by the callers with their own message)."""
    starts = [0] if total <= win else sorted(set(range(0, total - win, win - overlap)) | {total - win})
    ramp = np.linspace(0, 1, overlap + 2)[1:-1]
    out = []
    for k, s in enumerate(starts):
        w = np.ones(min(win, total - s))
        if overlap and k > 0:
            w[:overlap] = ramp
        if overlap and k < len(starts) - 1:  # guarded: w[-0:] would be the whole window
            w[-overlap:] = ramp[::-1]
        out.append(Window(s, s + len(w), w))
    return out


def cross_fade(windows: list[Window], parts: list[np.ndarray], frames: int) -> np.ndarray:
    """Each window's features [stop - start, D] → their weighted mean [frames, D] (float32), cut to ``frames``
    (the padding to the VAE's stride dropped); the last 4 channels, foot contacts, stay binary."""
    total = windows[-1].stop
    out = np.zeros((total, parts[0].shape[1]), np.float64)
    weight = np.zeros(total, np.float64)
    for w, part in zip(windows, parts, strict=True):
        out[w.frames] += w.weight[:, None] * part[:len(w.weight)]
        weight[w.frames] += w.weight
    blended = (out / weight[:, None]).astype(np.float32)[:frames]
    blended[:, -4:] = (blended[:, -4:] > 0.5).astype(np.float32)
    return blended
