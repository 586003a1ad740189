"""SMPL-22 (HumanML3D "t2m") skeleton tables for the add-on.

A deliberate copy of ``salad_model.motion.skeleton``'s t2m tables: the add-on runs inside Blender's Python,
where ``salad_model`` (and its dependencies) may not be importable. ``tests/salad_blender/test_retarget.py``
asserts that this copy equals the original, so the two cannot drift apart silently.
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
# Index of each joint's left/right counterpart (itself for centre joints).
MIRROR: tuple[int, ...] = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20)
# Foot-contact joints, in the order of HumanML3D's 4 contact flags: l_ankle, l_foot, r_ankle, r_foot.
CONTACT_JOINTS: tuple[int, ...] = (7, 10, 8, 11)
FPS: float = 20.0
NUM_JOINTS = len(JOINT_NAMES)
INDEX: dict[str, int] = {n: i for i, n in enumerate(JOINT_NAMES)}

# Model (HumanML3D: Y up, facing +Z, left +X) -> Blender (Z up, facing -Y, left +X): (x, y, z) -> (x, -z, y).
# A proper rotation (det +1): no mirroring, so a left joint stays on the character's left.
MODEL_TO_BLENDER: np.ndarray = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def children(j: int) -> list[int]:
    """Direct children of joint ``j``."""
    return [i for i, p in enumerate(PARENTS) if p == j]


def model_to_blender(joints: np.ndarray) -> np.ndarray:
    """Map model-space points [..., 3] (Y up, facing +Z) to Blender space (Z up, facing -Y)."""
    j = np.asarray(joints, dtype=np.float64)
    return np.stack([j[..., 0], -j[..., 2], j[..., 1]], axis=-1)


def blender_to_model(points: np.ndarray) -> np.ndarray:
    """Inverse of :func:`model_to_blender`."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)
