"""The Bandai-Namco rig → SMPL-22 joint mapping: reads the dataset's BVH files as the model's 22 joints.

Torch-free and free of training code, because editing a user's real Bandai-rig BVH (``motion_io``, run by the
worker) needs it as much as the dataset build (``training.data.bandai``) does.
"""

from __future__ import annotations

import numpy as np

from .bvh import parse_bvh
from .skeleton import T2M

CM_TO_M = 0.01
MODEL_FPS = 20.0

# SMPL-22 joint ← weighted sum of Bandai joints (after FK). Bandai has two torso joints between the
# pelvis and the neck (Spine, Chest) where SMPL has three; spine1 is interpolated half way between
# Hips and Spine so that no two SMPL joints coincide (a zero-length bone would break the IK).
SMPL22_FROM_BANDAI: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = (
    ("pelvis", (("Hips", 1.0),)),
    ("left_hip", (("UpperLeg_L", 1.0),)),
    ("right_hip", (("UpperLeg_R", 1.0),)),
    ("spine1", (("Hips", 0.5), ("Spine", 0.5))),
    ("left_knee", (("LowerLeg_L", 1.0),)),
    ("right_knee", (("LowerLeg_R", 1.0),)),
    ("spine2", (("Spine", 1.0),)),
    ("left_ankle", (("Foot_L", 1.0),)),
    ("right_ankle", (("Foot_R", 1.0),)),
    ("spine3", (("Chest", 1.0),)),
    ("left_foot", (("Toes_L", 1.0),)),
    ("right_foot", (("Toes_R", 1.0),)),
    ("neck", (("Neck", 1.0),)),
    ("left_collar", (("Shoulder_L", 1.0),)),
    ("right_collar", (("Shoulder_R", 1.0),)),
    ("head", (("Head", 1.0),)),
    ("left_shoulder", (("UpperArm_L", 1.0),)),
    ("right_shoulder", (("UpperArm_R", 1.0),)),
    ("left_elbow", (("LowerArm_L", 1.0),)),
    ("right_elbow", (("LowerArm_R", 1.0),)),
    ("left_wrist", (("Hand_L", 1.0),)),
    ("right_wrist", (("Hand_R", 1.0),)),
)
assert tuple(n for n, _ in SMPL22_FROM_BANDAI) == T2M.joint_names


def mapping_matrix(bandai_names: list[str]) -> np.ndarray:
    """[22, J_bandai] weights so that ``smpl = W @ bandai`` per frame."""
    w = np.zeros((len(SMPL22_FROM_BANDAI), len(bandai_names)))
    for i, (_, sources) in enumerate(SMPL22_FROM_BANDAI):
        for name, weight in sources:
            w[i, bandai_names.index(name)] = weight
    return w


def bvh_to_smpl22(text: str, fps: float = MODEL_FPS) -> np.ndarray:
    """Bandai BVH text → SMPL-22 joint positions [T, 22, 3] in metres at ``fps`` (not canonicalised).

    FK includes joint_Root, which carries the forward travel in four dataset-1 cycle clips.
    """
    motion = parse_bvh(text)
    pos = motion.positions(scale=CM_TO_M, fps=fps)
    return np.einsum("kj,tjc->tkc", mapping_matrix(motion.names), pos)
