"""N poses of real motion → N feature frames → N output poses (mixed-in helpers of real_motion and shots).

The model's features describe steps: row t holds pose t and the step t → t+1 (root, turn and joint
velocities, foot contacts), so T poses give only T−1 rows, and the VAE wants a multiple of 4 rows on top.
Without care a real clip came back one frame short (or up to four, after flooring to the VAE's stride).

Decision (why): the missing step after the last pose is *extrapolated at constant velocity*
(``2·p[N−1] − p[N−2]``). Row N−1 then holds pose N−1 exactly, and only its velocity channels (root
velocity, turn rate, local joint velocities) and its foot contacts are a continuation of the last real
step rather than a measurement; every earlier row is unchanged except through the heading smoothing of
the last ~2σ frames. Duplicating the last pose instead would put a full stop (zero velocity, planted feet)
at the end of every clip, which the model reads as "the person stops". Rows up to the next multiple of 4
repeat the last row (the pose held, the root moving on at the same speed and turn rate) and are cut from
every result. The model's own generated motions never go through here and keep their exact frame counts.
"""

from __future__ import annotations

import numpy as np


def with_end_pose(joints: np.ndarray) -> np.ndarray:
    """``joints`` [N, J, 3] plus one pose extrapolated at the last step's velocity → [N+1, J, 3]."""
    joints = np.asarray(joints)
    if len(joints) < 2:
        return joints
    return np.concatenate([joints, 2 * joints[-1:] - joints[-2:-1]], axis=0)


def pad_to_stride(features: np.ndarray, stride: int = 4) -> np.ndarray:
    """Features [N, D] → [⌈N/stride⌉·stride, D], the last row repeated (cut again from every result)."""
    features = np.asarray(features)
    n = len(features)
    pad = -n % stride
    if pad == 0 or n == 0:
        return features
    return np.concatenate([features, np.repeat(features[-1:], pad, axis=0)], axis=0)


def cut_padding(features: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``features`` without the padding rows [start, stop) of a source inside a longer result."""
    return np.concatenate([features[:start], features[stop:]], axis=0) if stop > start else features


def shift_index(frame: int, start: int, stop: int, end: int | None = None) -> int:
    """Where result frame ``frame`` lands once rows [start, stop) are cut (frames inside go to ``start``),
    at most ``end`` (the cut result's length) when given."""
    out = int(frame) if frame <= start or stop <= start else int(max(start, frame - (stop - start)))
    return out if end is None else min(out, int(end))
