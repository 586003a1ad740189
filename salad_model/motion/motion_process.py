"""Joint positions → HumanML3D 263-dim features, canonicalisation and left/right mirroring (numpy).

Follows the HumanML3D processing conventions (SALAD_SPEC §1.1) so that features built here live in
the same space as the official data, including two of its quirks that the decoder relies on:

* the heading used for the features comes from ``(left_hip − right_hip) + (right_shoulder −
  left_shoulder)`` (HumanML3D's IK unpacks its face-joint list in a different order than its
  canonicalisation does, so the hip term enters with the opposite sign; the shoulders, being wider,
  dominate), smoothed over time with a Gaussian of σ = 20 frames;
* the heading of frame 0 is forced to the identity, which is what ``recover_from_ric`` assumes.

One deliberate fix: the relative root rotation quaternion is put in the w ≥ 0 hemisphere before the
arcsin. HumanML3D does not, so a heading that crosses ±180° between two frames gets a rotation
velocity of the wrong sign and the decoded motion spins away. With the fix, features → joints is an
exact inverse for any motion (the spec's recovery is unchanged).

The inverse, features → joints, is ``salad_model.motion.features.recover_from_ric`` (torch).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from salad_model.motion.skeleton import T2M, Skeleton

# Rest-pose bone directions of HumanML3D's IK template (t2m), per joint (from its parent).
T2M_RAW_OFFSETS = np.array([
    [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
    [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
    [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
], dtype=np.float64)
# Joints that define the facing direction: right hip, left hip, right shoulder, left shoulder.
T2M_FACE_JOINTS = (2, 1, 17, 16)
# HumanML3D foot-contact rule: squared per-frame displacement (m², at 20 fps) below this → contact.
FOOT_VELOCITY_THRESHOLD = 0.002
HEADING_SMOOTH_SIGMA = 20.0  # frames

_UP = np.array([0.0, 1.0, 0.0])


# --- quaternions (w, x, y, z), numpy, broadcasting over leading dims --------------------------------

def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def qinv(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v [..., 3] by unit quaternions q [..., 4]."""
    shape = np.broadcast_shapes(q.shape[:-1], v.shape[:-1])
    q = np.broadcast_to(q, shape + (4,))
    v = np.broadcast_to(v, shape + (3,))
    u = q[..., 1:]
    w = q[..., :1]
    uv = np.cross(u, v)
    return v + 2 * (w * uv + np.cross(u, uv))


def qbetween(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc unit quaternions rotating unit vectors u onto v (antiparallel → 180° turn)."""
    u, v = np.broadcast_arrays(u, v)
    axis = np.cross(u, v)
    w = np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1) + (u * v).sum(-1)
    q = np.concatenate([w[..., None], axis], axis=-1)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    bad = n[..., 0] < 1e-9
    if bad.any():  # u ≈ −v: turn half way round an axis perpendicular to u
        ub = u[bad]
        perp = np.cross(ub, np.array([1.0, 0.0, 0.0]))
        small = np.linalg.norm(perp, axis=-1) < 1e-6
        perp[small] = np.cross(ub[small], np.array([0.0, 0.0, 1.0]))
        perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
        q[bad] = np.concatenate([np.zeros((len(perp), 1)), perp], axis=-1)
        n[bad] = 1.0
    return q / n


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=-2)


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    """Continuous 6-D rotation: the first two columns of the rotation matrix, concatenated."""
    m = quat_to_matrix(q)
    return np.concatenate([m[..., 0], m[..., 1]], axis=-1)


def yaw_quat(angle: np.ndarray) -> np.ndarray:
    """Quaternions of rotations by ``angle`` (radians) about +Y."""
    angle = np.asarray(angle, dtype=np.float64)
    return np.stack([np.cos(angle / 2), 0 * angle, np.sin(angle / 2), 0 * angle], axis=-1)


# --- canonicalisation ---------------------------------------------------------------------------

def facing_angle(joints: np.ndarray, face_joints: tuple[int, int, int, int] = T2M_FACE_JOINTS) -> np.ndarray:
    """Heading angle(s) about +Y (0 = facing +Z, positive toward +X) from hips and shoulders.

    ``joints`` [..., J, 3]. Uses the geometrically consistent across-vector (right − left for both
    hips and shoulders), as HumanML3D's canonicalisation does.
    """
    r_hip, l_hip, r_sh, l_sh = face_joints
    across = (joints[..., r_hip, :] - joints[..., l_hip, :]) + (joints[..., r_sh, :] - joints[..., l_sh, :])
    forward = np.cross(_UP, across)  # up × (right-pointing) = forward
    return np.arctan2(forward[..., 0], forward[..., 2])


def canonicalize(joints: np.ndarray, face_joints: tuple[int, int, int, int] = T2M_FACE_JOINTS) -> np.ndarray:
    """Floor at y = 0 (lowest joint over the clip), root XZ at the origin and facing +Z at frame 0."""
    j = np.array(joints, dtype=np.float64)
    j[..., 1] -= j[..., 1].min()
    j[..., [0, 2]] -= j[0, 0, [0, 2]]
    theta = facing_angle(j[0], face_joints)
    return qrot(yaw_quat(-theta), j)


# --- features -----------------------------------------------------------------------------------

def foot_contacts(joints: np.ndarray, threshold: float = FOOT_VELOCITY_THRESHOLD,
                  contact_joints: tuple[int, ...] = T2M.contact_joints) -> np.ndarray:
    """Binary contacts [T−1, 4]: squared displacement to the next frame below ``threshold``."""
    disp = joints[1:, list(contact_joints)] - joints[:-1, list(contact_joints)]
    return ((disp ** 2).sum(-1) < threshold).astype(np.float64)


def heading_quaternions(joints: np.ndarray, smooth_sigma: float = HEADING_SMOOTH_SIGMA) -> np.ndarray:
    """Per-frame yaw quaternions [T, 4] that turn the body's (smoothed) forward direction onto +Z.

    HumanML3D convention: across = (left_hip − right_hip) + (right_shoulder − left_shoulder), smoothed
    forward, and frame 0 forced to the identity.
    """
    r_hip, l_hip, r_sh, l_sh = T2M_FACE_JOINTS
    across = (joints[:, l_hip] - joints[:, r_hip]) + (joints[:, r_sh] - joints[:, l_sh])
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = np.cross(_UP, across)
    if smooth_sigma > 0:
        forward = gaussian_filter1d(forward, smooth_sigma, axis=0, mode="nearest")
    theta = np.arctan2(forward[:, 0], forward[:, 2])
    q = yaw_quat(-theta)
    q[0] = np.array([1.0, 0.0, 0.0, 0.0])
    return q


def inverse_kinematics(joints: np.ndarray, root_quat: np.ndarray, skeleton: Skeleton = T2M,
                       raw_offsets: np.ndarray = T2M_RAW_OFFSETS) -> np.ndarray:
    """Local joint quaternions [T, J, 4] (HumanML3D's IK onto its template directions).

    Each bone's global rotation is the shortest arc from its template direction to its actual
    direction; every chain starts again from the root heading (also for the arm chains, as in
    HumanML3D), and the local rotation is the parent-relative part of that.
    """
    t, nj = joints.shape[:2]
    quat = np.zeros((t, nj, 4))
    quat[:, 0] = root_quat
    for chain in skeleton.chains:
        r = root_quat
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            v = joints[:, b] - joints[:, a]
            v = v / np.linalg.norm(v, axis=-1, keepdims=True)
            swing = qbetween(raw_offsets[b][None], v)
            local = qmul(qinv(r), swing)
            quat[:, b] = local
            r = qmul(r, local)
    return quat


def joints_to_features(joints: np.ndarray, feet_threshold: float = FOOT_VELOCITY_THRESHOLD,
                       smooth_sigma: float = HEADING_SMOOTH_SIGMA) -> np.ndarray:
    """HumanML3D features [T−1, 263] from SMPL-22 joint positions [T, 22, 3] (metres, Y up, 20 fps).

    Row t describes the step t → t+1. The motion is used where it is (canonicalise first for
    training data); ``recover_from_ric`` of the result gives back the joints of frames 0..T−2 with
    the root's XZ moved to the origin at frame 0 and the frame-0 heading kept as it was.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (22, 3):
        raise ValueError(f"expected joints [T, 22, 3], got {joints.shape}")
    if joints.shape[0] < 2:
        raise ValueError("need at least 2 frames to compute features")
    t = joints.shape[0]
    contacts = foot_contacts(joints, feet_threshold)

    r_rot = heading_quaternions(joints, smooth_sigma)
    quat = inverse_kinematics(joints, r_rot)
    cont6d = quat_to_cont6d(quat)

    root_vel = qrot(r_rot[1:], joints[1:, 0] - joints[:-1, 0])  # step t→t+1 in the heading of t+1
    r_vel_q = qmul(r_rot[1:], qinv(r_rot[:-1]))
    r_vel_q = np.where(r_vel_q[:, :1] < 0, -r_vel_q, r_vel_q)  # same rotation, |half angle| ≤ 90°
    r_vel = np.arcsin(np.clip(r_vel_q[:, 2], -1.0, 1.0))

    ric = joints.copy()
    ric[..., 0] -= joints[:, :1, 0]
    ric[..., 2] -= joints[:, :1, 2]
    ric = qrot(r_rot[:, None], ric)
    local_vel = qrot(r_rot[:-1, None], joints[1:] - joints[:-1])

    return np.concatenate([
        r_vel[:, None], root_vel[:, [0, 2]], ric[:-1, 0, 1:2],
        ric[:-1, 1:].reshape(t - 1, -1),
        cont6d[:-1, 1:].reshape(t - 1, -1),
        local_vel.reshape(t - 1, -1),
        contacts,
    ], axis=-1)


# --- mirroring ----------------------------------------------------------------------------------

def mirror_joints(joints: np.ndarray, skeleton: Skeleton = T2M) -> np.ndarray:
    """Left/right mirror image: negate X and swap left/right joints."""
    out = np.array(joints, copy=True)
    out[..., 0] *= -1
    return out[..., list(skeleton.mirror), :]


MIRROR_REGIONS = ("all", "upper", "lower")


def mirror_joint_set(which: str, skeleton: Skeleton = T2M) -> list[int]:
    """Joints whose channels a mirror of ``which`` touches: every joint, or the sided arm / leg joints.

    Legs are the sided joints of kinematic chains that start at the root; arms are the other sided joints.
    """
    if which not in MIRROR_REGIONS:
        raise ValueError(f"mirror region must be one of {', '.join(MIRROR_REGIONS)}, got {which!r}")
    if which == "all":
        return list(range(skeleton.num_joints))
    sided = {j for j, n in enumerate(skeleton.joint_names) if n.startswith(("left_", "right_"))}
    legs = {j for c in skeleton.chains if c[0] == 0 for j in c if j in sided}
    return sorted(legs if which == "lower" else sided - legs)


def mirror_feature_permutation(skeleton: Skeleton = T2M, which: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """(index, sign) with ``mirror(f) = f[..., index] * sign`` for HumanML3D features.

    Derivation: mirroring is the reflection M = diag(−1, 1, 1) plus the left/right joint swap. Yaw
    velocity flips sign, X components of positions/velocities flip, and a local rotation R becomes
    M R M, whose first two columns change sign as (+, −, −) and (−, +, +). The heading and the IK are
    equivariant under M because the template directions are mirror-symmetric. Tested against
    re-deriving features from mirrored joints.

    ``which="upper"``/``"lower"`` mirrors only the arm / leg joints (and, for legs, the foot contacts) in
    the body's facing frame and keeps the root, spine and head: the arms (legs) swap roles while the
    trajectory stays. Positions are exact for a left/right symmetric trunk; the rotation channels of the
    touched joints are mirrored as if their parents were (joints are recovered from positions only).
    """
    j = skeleton.num_joints
    mir = skeleton.mirror
    touched = set(mirror_joint_set(which, skeleton))
    ric0, rot0 = 4, 4 + 3 * (j - 1)
    vel0 = rot0 + 6 * (j - 1)
    con0 = vel0 + 3 * j
    dim = skeleton.feature_dim
    idx = np.arange(dim, dtype=np.int64)
    sign = np.ones(dim, dtype=np.float32)
    if which == "all":
        idx[:4] = [0, 1, 2, 3]
        sign[:4] = [-1.0, -1.0, 1.0, 1.0]
    for k in sorted(touched):
        if k > 0:
            idx[ric0 + 3 * (k - 1): ric0 + 3 * k] = ric0 + 3 * (mir[k] - 1) + np.arange(3)
            sign[ric0 + 3 * (k - 1): ric0 + 3 * k] = [-1.0, 1.0, 1.0]
            idx[rot0 + 6 * (k - 1): rot0 + 6 * k] = rot0 + 6 * (mir[k] - 1) + np.arange(6)
            sign[rot0 + 6 * (k - 1): rot0 + 6 * k] = [1.0, -1.0, -1.0, -1.0, 1.0, 1.0]
        idx[vel0 + 3 * k: vel0 + 3 * k + 3] = vel0 + 3 * mir[k] + np.arange(3)
        sign[vel0 + 3 * k: vel0 + 3 * k + 3] = [-1.0, 1.0, 1.0]
    cj = list(skeleton.contact_joints)
    for n, c in enumerate(cj):
        if c in touched:
            idx[con0 + n] = con0 + cj.index(mir[c])
    return idx, sign


def mirror_features(features: np.ndarray, skeleton: Skeleton = T2M, which: str = "all") -> np.ndarray:
    """Features of the left/right mirrored motion (exact channel permutation and sign flips).

    ``which`` = ``"all"`` (the true mirror image), ``"upper"`` (arms only) or ``"lower"`` (legs only).
    """
    idx, sign = mirror_feature_permutation(skeleton, which)
    return features[..., idx] * sign.astype(features.dtype)


def root_heading(features: np.ndarray) -> np.ndarray:
    """The root's heading quaternions [..., T, 4], integrated from the features' rotation velocity channel."""
    f = np.asarray(features, dtype=np.float64)
    angle = np.concatenate([np.zeros(f.shape[:-2] + (1,)), np.cumsum(f[..., :-1, 0], axis=-1)], axis=-1)
    return yaw_quat(2 * angle)


def recover_from_ric_np(features: np.ndarray, joints_num: int = 22) -> np.ndarray:
    """Numpy twin of ``salad_model.motion.features.recover_from_ric`` (SALAD_SPEC §1.4), for torch-free use."""
    f = np.asarray(features, dtype=np.float64)
    q = root_heading(f)
    d = np.zeros(f.shape[:-1] + (3,))
    d[..., 1:, 0] = f[..., :-1, 1]
    d[..., 1:, 2] = f[..., :-1, 2]
    r = np.cumsum(qrot(qinv(q), d), axis=-2)
    r[..., 1] = f[..., 3]
    local = f[..., 4:4 + 3 * (joints_num - 1)].reshape(f.shape[:-1] + (joints_num - 1, 3))
    pos = qrot(qinv(q)[..., None, :], local)
    pos[..., 0] += r[..., None, 0]
    pos[..., 2] += r[..., None, 2]
    return np.concatenate([r[..., None, :], pos], axis=-2)
