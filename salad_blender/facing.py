"""Which way a body faces, from its hips (and shoulders): the add-on's one computation of it.

Used by the retargeter (where a rig faces), real-motion editing (the heading of a sampled clip) and
``tools/batch.py`` (where the preview camera looks). Pure numpy, no bpy.

The model side keeps its own copy, ``salad_model``'s ``motion_process.facing_angle`` (Blender's
Python has no torch, so the add-on cannot import ``salad_model``);
``tests/salad_blender/test_facing.py`` asserts that the two agree on the same poses.
"""

from __future__ import annotations

import numpy as np

from . import smpl22

UP = np.array([0.0, 0.0, 1.0])  # Blender space: Z up
FRONT = np.array([0.0, -1.0, 0.0])  # Blender's front view: a rest body faces -Y


def forward(left_hip: np.ndarray, right_hip: np.ndarray, left_shoulder: np.ndarray | None = None,
            right_shoulder: np.ndarray | None = None) -> np.ndarray:
    """Horizontal unit forward vector(s) [..., 3] in Blender space from joint positions [..., 3].

    The body's left-pointing vector (left minus right hip, plus left minus right shoulder when
    given) crossed with up. Where it has no horizontal length (a degenerate pose) the answer is
    :data:`FRONT`, so callers always get a direction.
    """
    left = np.asarray(left_hip, dtype=np.float64) - np.asarray(right_hip, dtype=np.float64)
    if left_shoulder is not None and right_shoulder is not None:
        left = left + (np.asarray(left_shoulder, dtype=np.float64) - np.asarray(right_shoulder, dtype=np.float64))
    fwd = np.cross(left, UP)
    norm = np.linalg.norm(fwd, axis=-1, keepdims=True)
    ok = norm > 1e-9
    return np.where(ok, fwd / np.where(ok, norm, 1.0), FRONT)


def heading(fwd: np.ndarray) -> np.ndarray | float:
    """Angle(s) in radians about +Z that turn :data:`FRONT` onto ``fwd`` [..., 3] (Blender space).

    The same number is the model-space heading about +Y (0 = facing +Z), because the model → Blender
    axis change is a proper rotation that takes +Y to +Z and +Z to -Y.
    """
    f = np.asarray(fwd, dtype=np.float64)
    out = np.arctan2(f[..., 0], -f[..., 1])
    return float(out) if np.ndim(out) == 0 else out


def model_heading(joints_model: np.ndarray) -> np.ndarray | float:
    """Heading (radians about +Y, 0 = facing +Z) of model-space poses [..., 22, 3] from hips and shoulders."""
    b = smpl22.model_to_blender(joints_model)
    i = smpl22.INDEX
    return heading(forward(b[..., i["left_hip"], :], b[..., i["right_hip"], :],
                           b[..., i["left_shoulder"], :], b[..., i["right_shoulder"], :]))
