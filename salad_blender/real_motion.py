"""Real (non-SALAD) animation as the model sees it, and the way back: the pure-numpy half.

An armature's pose is sampled (by :mod:`pose_sampling`, which needs bpy) into world-space joint
positions; here they are resampled to the model's 20 fps, scaled to metres, checked, and the
worker's canonical result (root at the origin, floor at 0, facing +Z) is placed back where the
original clip stands. No bpy, so all of it is tested with plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import facing, smpl22
from . import retarget as rt
from .inputs import JobError

HUMAN_HIP_HEIGHT = (0.6, 1.3)  # metres: a rest hip height in this range is taken as human-sized
TARGET_HIP_HEIGHT = 0.9  # metres: what other rigs are scaled to before the model sees them
MIN_REAL_FRAMES = 20  # model frames (1 s at 20 fps)


@dataclass
class SampledMotion:
    """An armature's animation as the model sees it.

    ``joints`` [T, 22, 3]: model space (metres, Y up), 20 fps. ``to_metres``: world units × this =
    the metres sent (object scale is in the world positions; a non-human-sized rig is also rescaled
    so its rest hip height is ~0.9 m). ``world`` [F, 22, 3]: the raw world-space samples (Blender
    space, one per scene frame from ``frame_start``), ``fps`` the scene's fps.
    """

    joints: np.ndarray
    to_metres: float
    world: np.ndarray
    frame_start: int
    fps: float


def to_metres(rest_heads: Mapping[str, np.ndarray], name: str = "armature") -> float:
    """World units → metres from a rig's rest joint heads (world space, Z up).

    1 for a human-sized rig (hip height within :data:`HUMAN_HIP_HEIGHT`), else what makes its hips
    :data:`TARGET_HIP_HEIGHT` high: the model only knows human-sized bodies.
    """
    zs = np.array([p[2] for p in rest_heads.values()])
    hip = float(rest_heads["pelvis"][2] - zs.min())
    if hip <= 1e-9:
        raise JobError(f"The armature '{name}' has no height at rest (its pelvis is at its feet); "
                       "cannot measure it.")
    lo, hi = HUMAN_HIP_HEIGHT
    return 1.0 if lo <= hip <= hi else TARGET_HIP_HEIGHT / hip


def joint_bones(mapping: Mapping[str, str]) -> list[str]:
    """The bone sampled for each SMPL-22 joint: its own, else its nearest mapped ancestor's."""
    names = [mapping.get(n) for n in smpl22.JOINT_NAMES]
    bones = []
    for j in range(smpl22.NUM_JOINTS):
        k = j
        while names[k] is None and smpl22.PARENTS[k] >= 0:
            k = smpl22.PARENTS[k]
        bones.append(names[k])
    if any(b is None for b in bones):
        raise JobError("The bone map must map 'pelvis'.")
    return bones


def resampled_count(n: int, fps_in: float, fps_out: float) -> int:
    """How many samples :func:`resample_positions` makes of ``n`` (known before sampling: a length check)."""
    if n < 2 or abs(fps_in - fps_out) < 1e-9:
        return n
    return int(np.ceil((n - 1) / fps_in * fps_out - 1e-6)) + 1


def resample_positions(points: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear resampling of [F, ...] samples from ``fps_in`` to ``fps_out`` (same start).

    The count inverts :func:`retarget.resample` (and :func:`loops.scene_frames`), which keys a clip of N
    frames at ``floor((N - 1) * fps_in / fps_out) + 1`` frames, its last key at or before the clip's end:
    rounding up here gets the N back (a 40-frame shot keyed at 24 fps is 47 keys, sampled back to 40 frames,
    not 39). The last sample may then lie up to one output frame past the last input one; it holds that pose.
    """
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if n < 2 or abs(fps_in - fps_out) < 1e-9:
        return points.copy()
    m = resampled_count(n, fps_in, fps_out)
    t = np.minimum(np.arange(m) / fps_out * fps_in, n - 1)  # positions in input frames (the end held)
    i0 = np.clip(np.floor(t).astype(int), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    w = (t - i0).reshape((-1,) + (1,) * (points.ndim - 1))
    return points[i0] * (1.0 - w) + points[i1] * w


def to_model(world: np.ndarray, fps: float, metres: float) -> np.ndarray:
    """World-space samples [F, 22, 3] at ``fps`` → model-space joints [T, 22, 3] at 20 fps, in metres."""
    return smpl22.blender_to_model(resample_positions(world, fps, smpl22.FPS) * metres).astype(np.float32)


def check_sampled(joints: np.ndarray, name: str) -> None:
    """Refuse a clip the model cannot invert: too short or with invalid positions."""
    if len(joints) < MIN_REAL_FRAMES:
        raise JobError(f"The animation is too short ({len(joints)} frames at 20 fps); the model needs "
                       f"at least {MIN_REAL_FRAMES / smpl22.FPS:g} s.")
    if not np.all(np.isfinite(joints)):
        raise JobError(f"The animation of '{name}' has invalid (NaN) bone positions.")


def real_placement(sampled: SampledMotion, wmeta: dict[str, Any] | None = None) -> rt.Placement:
    """Where a canonical worker result (root at the origin, floor at 0, facing +Z) goes in the world.

    The input's first-frame root XZ and heading come from the worker's ``meta.placement`` when given
    (else from the sampled joints), the floor from the sampled clip's lowest joint; the scale undoes
    ``to_metres``. A model heading about +Y is the same angle as a Blender heading about +Z.
    """
    j = np.asarray(sampled.joints, dtype=np.float64)
    pl = (wmeta or {}).get("placement") or {}
    root_xz = pl.get("root_xz") or [float(j[0, 0, 0]), float(j[0, 0, 2])]
    heading = float(pl["heading"]) if "heading" in pl else float(facing.model_heading(j[0]))
    ground = np.array([float(root_xz[0]), float(j[..., 1].min()), float(root_xz[1])])
    origin = smpl22.model_to_blender(ground) / sampled.to_metres
    return rt.Placement(scale=1.0 / sampled.to_metres, heading=heading, origin=origin)
