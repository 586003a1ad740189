"""BlazePose landmarks → the 22 SMPL joints: gap filling, smoothing, and the joints BlazePose lacks.

BlazePose has hips, knees, ankles, heels, toes, shoulders, elbows, wrists and face points, but no spine,
neck, collar or SMPL-style hip joints. Those are placed by fixed fractions in a per-frame trunk frame
(``up`` = mid-hip → mid-shoulder, ``left`` = the hip and shoulder across-vectors):

* pelvis: mid-hip raised by ``PELVIS_UP`` of the trunk length; spine1/2/3: on the straight line pelvis → neck
  at ``SPINE_FRACTIONS`` (a straight spine: curvature is not observable from BlazePose);
* SMPL hips: the BlazePose hips pulled toward their midpoint (``HIP_WIDTH``) (and lowered by ``HIP_DOWN``);
* neck: mid-shoulder raised toward the mid-ear point (``NECK_UP``); head: ``HEAD_UP`` of the way to it;
* collars: from the neck ``COLLAR_OUT`` of the way to each shoulder, lowered by ``COLLAR_DOWN``;
* foot (SMPL's ball of the foot): between the heel and the toe tip at ``FOOT_BALL``.

The fractions were fitted once (Nelder-Mead on root-aligned MPJPE, then rounded) to the ground truth of the
rendered Bandai-Namco test clip (``tests/data/video/walk_turn_left_front``, an earlier render of it whose figure
had its face on the back of the head), i.e. to the skeleton the model is trained on, and are fixed constants
here. Finally every bone gets the length of that skeleton
(:func:`with_bone_lengths`), keeping BlazePose's directions.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..motion.skeleton import T2M

# BlazePose landmark indices
NOSE, L_EAR, R_EAR = 0, 7, 8
L_SH, R_SH, L_EL, R_EL, L_WR, R_WR = 11, 12, 13, 14, 15, 16
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK = 23, 24, 25, 26, 27, 28
L_HEEL, R_HEEL, L_TOE, R_TOE = 29, 30, 31, 32
BODY = (L_SH, R_SH, L_EL, R_EL, L_WR, R_WR, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK)
BODY_NAMES = ("left shoulder", "right shoulder", "left elbow", "right elbow", "left wrist", "right wrist",
              "left hip", "right hip", "left knee", "right knee", "left ankle", "right ankle")

PELVIS_UP = 0.06
SPINE_FRACTIONS = (0.22, 0.45, 0.68)
HIP_WIDTH = 0.7
HIP_DOWN = 0.0
NECK_UP = 0.3
HEAD_UP = 0.9
COLLAR_OUT = 0.6
COLLAR_DOWN = 0.05
FOOT_BALL = 0.75
# Bone lengths (metres, from each joint's parent) of the Bandai-Namco dataset-2 skeleton, which the demo model
# is trained on (the same for every clip of that dataset). A monocular video does not tell a person's size
# (BlazePose's world landmarks are a learned average body), so the recovered directions are put on this body.
BONE_LENGTHS = (0.0, 0.068, 0.068, 0.079, 0.391, 0.391, 0.079, 0.41, 0.41, 0.09, 0.118, 0.118, 0.164, 0.139,
                0.139, 0.065, 0.053, 0.053, 0.243, 0.243, 0.223, 0.223)
SMOOTH_SECONDS = 0.04  # Gaussian sigma of the landmark smoothing

J = {n: i for i, n in enumerate(T2M.joint_names)}


def fill_gaps(track: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over invalid frames ([T, ...] values, [T] or [T, N] validity), ends held."""
    out = np.array(track, dtype=np.float64)
    t = np.arange(len(out))
    flat = out.reshape(len(out), -1)
    v = np.broadcast_to(valid.reshape(len(out), *valid.shape[1:], *([1] * (out.ndim - valid.ndim))), out.shape)
    vflat = v.reshape(len(out), -1) & np.isfinite(flat)
    for c in range(flat.shape[1]):
        ok = vflat[:, c]
        if ok.any() and not ok.all():
            flat[:, c] = np.interp(t, t[ok], flat[ok, c])
    return flat.reshape(out.shape)


def smooth(track: np.ndarray, fps: float, seconds: float = SMOOTH_SECONDS) -> np.ndarray:
    """Gaussian smoothing along time (sigma ``seconds``).

    Each end is padded by point reflection through a straight line fitted to its first (last) 4 sigma of
    frames, which keeps a steady motion steady and still smooths the end frames: padding with the end frame
    (scipy's "nearest") slowed the first and last frames of every walk to half speed.
    """
    sigma = seconds * fps
    if sigma < 0.3 or len(track) < 3:
        return track
    x = np.asarray(track, dtype=np.float64)
    n = min(int(np.ceil(4 * sigma)), len(x) - 1)

    def end_value(seg: np.ndarray) -> np.ndarray:  # the fitted line's value at seg[0]
        t = np.arange(len(seg), dtype=np.float64)
        t0 = t - t.mean()
        slope = np.tensordot(t0, seg - seg.mean(0), axes=(0, 0)) / (t0 @ t0)
        return seg.mean(0) - slope * t.mean()

    a, b = end_value(x[:n + 1]), end_value(x[::-1][:n + 1])
    padded = np.concatenate([2 * a - x[n:0:-1], x, 2 * b - x[-2:-n - 2:-1]])
    return gaussian_filter1d(padded, sigma, axis=0, mode="nearest")[n:n + len(x)]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def smpl22_from_blazepose(p: np.ndarray) -> np.ndarray:
    """[T, 33, 3] landmarks in a Y-up metric frame → SMPL-22 joints [T, 22, 3] in the same frame."""
    mid_hip = (p[:, L_HIP] + p[:, R_HIP]) / 2
    mid_sh = (p[:, L_SH] + p[:, R_SH]) / 2
    mid_ear = (p[:, L_EAR] + p[:, R_EAR]) / 2
    trunk = mid_sh - mid_hip
    length = np.linalg.norm(trunk, axis=-1, keepdims=True)
    up = _unit(trunk)
    out = np.zeros((len(p), 22, 3))
    pelvis = mid_hip + up * length * PELVIS_UP
    neck = mid_sh + (mid_ear - mid_sh) * NECK_UP
    out[:, J["pelvis"]] = pelvis
    for k, f in zip(("spine1", "spine2", "spine3"), SPINE_FRACTIONS, strict=True):
        out[:, J[k]] = pelvis + (neck - pelvis) * f
    out[:, J["neck"]] = neck
    out[:, J["head"]] = mid_sh + (mid_ear - mid_sh) * HEAD_UP
    for side, hip, sh, el, wr, knee, ank, heel, toe in (
            ("left", L_HIP, L_SH, L_EL, L_WR, L_KNEE, L_ANK, L_HEEL, L_TOE),
            ("right", R_HIP, R_SH, R_EL, R_WR, R_KNEE, R_ANK, R_HEEL, R_TOE)):
        out[:, J[f"{side}_hip"]] = mid_hip + (p[:, hip] - mid_hip) * HIP_WIDTH - up * length * HIP_DOWN
        out[:, J[f"{side}_collar"]] = neck + (p[:, sh] - neck) * COLLAR_OUT - up * length * COLLAR_DOWN
        out[:, J[f"{side}_shoulder"]] = p[:, sh]
        out[:, J[f"{side}_elbow"]] = p[:, el]
        out[:, J[f"{side}_wrist"]] = p[:, wr]
        out[:, J[f"{side}_knee"]] = p[:, knee]
        out[:, J[f"{side}_ankle"]] = p[:, ank]
        out[:, J[f"{side}_foot"]] = p[:, heel] + (p[:, toe] - p[:, heel]) * FOOT_BALL
    return out


def with_bone_lengths(joints: np.ndarray, lengths: tuple[float, ...] = BONE_LENGTHS) -> np.ndarray:
    """Joints [T, 22, 3] with each bone's direction kept and its length set (root first, down the tree)."""
    out = np.array(joints, dtype=np.float64)
    for j, parent in enumerate(T2M.parents):
        if parent >= 0:
            out[:, j] = out[:, parent] + _unit(joints[:, j] - joints[:, parent]) * lengths[j]
    return out

