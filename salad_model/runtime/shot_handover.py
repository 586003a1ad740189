"""Timelines whose prompts take over at their segments' nominal starts (``ShotDirector(handover="nominal")``).

The default timeline (``handover="spill"``) keeps the output before segment k independent of segment k by
letting segment k−1's prompt run ``spill`` latent frames (the VAE decoder's reach) past its end, so segment k's
own motion only starts 0.8 s after its nominal start. Here each segment's prompt starts at the nominal start
instead, and prefix stability comes from decoding per segment:

* segment k's windows hold the context *before* its start (segment k−1's own latent frames) and generate its
  frames plus a spill under its own prompt (right-hand context for its decode, and the far side of the
  cross-fade into segment k+1);
* its frames are decoded from the latent up to the end of that spill — latent frames of segments ≤ k only —
  so nothing before the start of segment k+1 can depend on segment k+1;
* at the start of segment k the output cross-fades (smoothstep, ``HANDOVER_FRAMES``) from segment k−1's decode
  of its spill to segment k's decode; the seam smoothing then sits just after the start, where it reads earlier
  frames but changes none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .sampling import StepCallback

if TYPE_CHECKING:
    from .pipeline import Motion
    from .shots import Segment, ShotDirector

HANDOVER_FRAMES = 8  # output frames after a segment's start over which the previous decode hands over


def crossfade(prev: np.ndarray, new: np.ndarray, frames: int) -> np.ndarray:
    """``new`` whose first ``frames`` frames ease in from ``prev`` (smoothstep: no velocity step at either end)."""
    out = new.copy()
    f = min(frames, len(prev), len(new))
    if f <= 0:
        return out
    t = np.arange(1, f + 1) / (f + 1)
    w = (3 * t**2 - 2 * t**3)[:, None]
    out[:f] = (1 - w) * prev[:f] + w * new[:f]
    out[:f, -4:] = np.where(w < 0.5, prev[:f, -4:], new[:f, -4:])  # contacts stay binary
    return out


def compose_nominal(d: ShotDirector, segs: Sequence[Segment], lat: list[int], seed: int,
                    callback: StepCallback | None) -> Motion:
    """``ShotDirector.compose`` with each prompt governing its own nominal span (see the module docstring)."""
    from .shots import _Progress, derive_seed, smooth_seams

    spill = d.spill
    wants = [n + spill for n in lat]
    n_windows, made = 0, 0
    for n, w in zip(lat, wants, strict=True):
        n_windows += d._plan_windows(w, made)
        made += n
    progress = _Progress(callback, n_windows, d.steps)
    seg_seeds = [s.seed if s.seed is not None else derive_seed(seed, "segment", k) for k, s in enumerate(segs)]
    b_lat = np.cumsum([0] + list(lat))
    total = 4 * int(b_lat[-1])
    sigma = d.seam_smoothing
    reach_back = int(np.ceil(5 * sigma))  # frames before a smoothed seam that the smoothing changes
    pad = reach_back + int(np.ceil(3 * sigma))  # earlier frames it may read
    own = None  # the timeline's latent so far (segments' own frames, no spill)
    windows: list[dict] = []
    pieces: list[np.ndarray] = []
    tail: np.ndarray | None = None  # the previous segment's decoded spill
    for k, (s, w) in enumerate(zip(segs, wants, strict=True)):
        b0, b1 = int(b_lat[k]), int(b_lat[k + 1])
        first = len(windows)
        z = d._extend(own, s.prompt, w, seg_seeds[k], k, progress, windows)
        lo = max(0, b0 - d.reach - 1)  # enough latent before the start that the decoder sees no edge there
        dec = d._decode(z[:, lo:])[4 * (b0 - lo):]
        inner = [x["start_frame"] + x["context_frames"] - 4 * b0 for x in windows[first + 1:]]
        dec = smooth_seams(dec, inner, sigma)  # seams between this segment's own windows
        if tail is not None:
            dec = crossfade(tail, dec, HANDOVER_FRAMES)
            before = np.concatenate(pieces)[-pad:]
            ext = smooth_seams(np.concatenate([before, dec]), [len(before) + max(reach_back, HANDOVER_FRAMES // 2)],
                               sigma)
            dec = ext[len(before):]
        pieces.append(dec[: 4 * (b1 - b0)])
        tail = dec[4 * (b1 - b0):]
        own = z[:, :b1]
    feats = np.concatenate(pieces)[:total]
    bounds = 4 * b_lat
    seg_meta = [{**s.to_dict(), "seed": seg_seeds[k], "start": int(bounds[k]), "end": int(bounds[k + 1]),
                 "content_start": int(bounds[k]), "content_end": int(bounds[k + 1])} for k, s in enumerate(segs)]
    seams = [x["start_frame"] + x["context_frames"] for x in windows[1:]]
    meta = d._meta("compose", "; ".join(s.prompt for s in segs), seed, total, segments=seg_meta, windows=windows,
                   seams=[int(x) for x in seams if x < total], spill_frames=4 * spill, blend_frames=4 * d.blend,
                   seconds=total / d.pipe.fps, handover="nominal", handover_frames=HANDOVER_FRAMES)
    lock = [(max(int(bounds[x["segment"]]), sx - d.foot_lock), min(int(bounds[x["segment"] + 1]), sx + d.foot_lock))
            for x, sx in zip(windows[1:], seams, strict=True) if sx < total]
    return d._motion(feats, own[:, : total // 4], meta, lock=lock, smooth=False)
