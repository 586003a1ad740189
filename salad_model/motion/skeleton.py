"""Skeleton tables for the HumanML3D (t2m, 22 joints) and KIT-ML (kit, 21 joints) layouts.

Torch-free on purpose: the Blender add-on and the data pipeline use these tables without torch.
Every table restates SALAD_SPEC §1.2 and §2.3; the VAE builds its fixed graph/pool matrices from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

T2M_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
T2M_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
T2M_CHAINS: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20),
)
T2M_CONTACT_JOINTS: tuple[int, ...] = (7, 10, 8, 11)
T2M_NEIGHBOURS: tuple[tuple[int, ...], ...] = (
    (1, 2, 3), (0, 4), (0, 5), (0, 6), (1, 7), (2, 8), (3, 9), (4, 10), (5, 11), (6, 12, 13, 14),
    (7,), (8,), (9, 15), (9, 16), (9, 17), (12,), (13, 18), (14, 19), (16, 20), (17, 21), (18,), (19,),
)
# 22 joints -> 12 body parts (groups overlap), SALAD_SPEC §2.3.
T2M_PART12_GROUPS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2, 3), (0, 1, 4), (4, 7, 10), (0, 2, 5), (5, 8, 11), (0, 3, 6, 9),
    (9, 6, 12, 13, 14), (9, 13, 16), (16, 18, 20), (9, 14, 17), (17, 19, 21), (9, 12, 15),
)

KIT_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 3, 3, 5, 6, 3, 8, 9, 0, 11, 12, 13, 14, 0, 16, 17, 18, 19)
KIT_CHAINS: tuple[tuple[int, ...], ...] = (
    (0, 11, 12, 13, 14, 15), (0, 16, 17, 18, 19, 20), (0, 1, 2, 3, 4), (3, 5, 6, 7), (3, 8, 9, 10),
)
KIT_CONTACT_JOINTS: tuple[int, ...] = (19, 20, 14, 15)
KIT_NEIGHBOURS: tuple[tuple[int, ...], ...] = (
    (1, 11, 16), (0, 2), (1, 3), (2, 4, 5, 8), (3,), (3, 6), (5, 7), (6,), (3, 9), (8, 10), (9,),
    (0, 12), (11, 13), (12, 14), (13, 15), (14,), (0, 17), (16, 18), (17, 19), (18, 20), (19,),
)
KIT_PART12_GROUPS: tuple[tuple[int, ...], ...] = (
    (0, 1, 11, 16), (0, 16, 17, 18), (17, 18, 19, 20), (0, 11, 12, 13), (12, 13, 14, 15), (0, 1, 2, 3),
    (2, 3, 5, 8, 4), (3, 8, 9), (8, 9, 10), (3, 5, 6), (5, 6, 7), (3, 4),
)
# Names are not in the reference code; sides follow the HumanML3D processing code.
KIT_JOINT_NAMES: tuple[str, ...] = (
    "root", "spine1", "spine2", "chest", "head", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle",
    "right_heel", "right_toe", "left_hip", "left_knee", "left_ankle", "left_heel", "left_toe",
)

PART12_NEIGHBOURS: tuple[tuple[int, ...], ...] = (
    (1, 3, 5), (0, 2), (1,), (0, 4), (3,), (0, 6), (5, 7, 9, 11), (6, 8), (7,), (6, 10), (9,), (6,),
)
# 12 parts -> 7 latent ("atomic") parts; identical for t2m and kit.
PART7_GROUPS: tuple[tuple[int, ...], ...] = (
    (0, 1, 3, 5), (0, 1, 2), (0, 3, 4), (0, 5, 6), (6, 7, 8), (6, 9, 10), (6, 11),
)
PART7_NEIGHBOURS: tuple[tuple[int, ...], ...] = ((1, 2, 3), (0,), (0,), (0, 4, 5, 6), (3,), (3,), (3,))
# Each joint's own latent part, for holding parts in joint space (runtime/kept_parts.py). The 12 → 7 groups
# overlap, so this picks one owner per joint: the pelvis triangle (pelvis, hips, first spine joint: the root part's
# own 12-part group) is the root; a leg is knee, ankle, foot; the torso the upper spine and the chest's joints
# (neck and collars; KIT: the shoulders), which stay rigid with it — the add-on turns the chest bone to fit all
# of them at once, so a regenerated collar dragged the kept neck and head 25 cm; an arm is shoulder to wrist
# (KIT: elbow, wrist); the head part the head.
PART7_JOINTS: dict[str, tuple[tuple[int, ...], ...]] = {
    "t2m": ((0, 1, 2, 3), (4, 7, 10), (5, 8, 11), (6, 9, 12, 13, 14), (16, 18, 20), (17, 19, 21), (15,)),
    "kit": ((0, 1, 11, 16), (17, 18, 19, 20), (12, 13, 14, 15), (2, 3, 5, 8), (9, 10), (6, 7), (4,)),
}
PART7_NAMES: tuple[str, ...] = (
    "root", "left leg", "right leg", "torso", "left arm", "right arm", "head",
)
# Latent parts swapped by left/right mirroring (SALAD_SPEC §5).
MIRROR_PART_PAIRS: dict[str, tuple[tuple[int, int], ...]] = {
    "lower": ((1, 2),),
    "upper": ((4, 5),),
    "all": ((1, 2), (4, 5)),
}


def _mirror_map(names: tuple[str, ...]) -> tuple[int, ...]:
    """Index of each joint's left/right counterpart (itself for centre joints)."""
    index = {n: i for i, n in enumerate(names)}
    out = []
    for n in names:
        if n.startswith("left_"):
            out.append(index["right_" + n[5:]])
        elif n.startswith("right_"):
            out.append(index["left_" + n[6:]])
        else:
            out.append(index[n])
    return tuple(out)


@dataclass(frozen=True)
class Skeleton:
    """One dataset's skeleton: joint tables plus the VAE's pooling hierarchy."""

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    neighbours: tuple[tuple[int, ...], ...]
    chains: tuple[tuple[int, ...], ...]
    contact_joints: tuple[int, ...]
    part12_groups: tuple[tuple[int, ...], ...]
    fps: float

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def feature_dim(self) -> int:
        """HumanML3D feature width, 12·J − 1 (263 for t2m, 251 for kit)."""
        return 12 * self.num_joints - 1

    @property
    def mirror(self) -> tuple[int, ...]:
        return _mirror_map(self.joint_names)

    def children(self, j: int) -> list[int]:
        return [i for i, p in enumerate(self.parents) if p == j]


T2M = Skeleton("t2m", T2M_JOINT_NAMES, T2M_PARENTS, T2M_NEIGHBOURS, T2M_CHAINS, T2M_CONTACT_JOINTS,
               T2M_PART12_GROUPS, 20.0)
KIT = Skeleton("kit", KIT_JOINT_NAMES, KIT_PARENTS, KIT_NEIGHBOURS, KIT_CHAINS, KIT_CONTACT_JOINTS,
               KIT_PART12_GROUPS, 12.5)
SKELETONS = {"t2m": T2M, "kit": KIT}


def adjacency(neighbours: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """0/1 adjacency with self loops, as the VAE graph convolution stores it."""
    n = len(neighbours)
    a = np.eye(n, dtype=np.float32)
    for i, nb in enumerate(neighbours):
        a[i, list(nb)] = 1.0
    return a


def pool_matrix(groups: tuple[tuple[int, ...], ...], n_in: int) -> np.ndarray:
    """Row-normalised averaging matrix [groups, n_in] (STPool)."""
    p = np.zeros((len(groups), n_in), dtype=np.float32)
    for g, members in enumerate(groups):
        p[g, list(members)] = 1.0 / len(members)
    return p


def unpool_matrix(groups: tuple[tuple[int, ...], ...], n_in: int) -> np.ndarray:
    """0/1 membership matrix [n_in, groups] (STUnpool sums overlapping groups)."""
    u = np.zeros((n_in, len(groups)), dtype=np.float32)
    for g, members in enumerate(groups):
        u[list(members), g] = 1.0
    return u
