"""Joint positions -> per-bone pose rotations for any armature (pure numpy, no bpy).

The pipeline, every step vectorised over frames (loops only over the 22 joints):

1. model space (Y up) -> Blender space (Z up), :func:`smpl22.model_to_blender`;
2. Blender space -> the armature's space through a :class:`Placement` (uniform scale so the motion's
   legs match the rig's, a heading so the motion starts facing where the rig faces, an origin under
   the rig's pelvis) and the inverse of the armature object's world matrix;
3. per mapped joint an armature-space *delta* rotation ``D`` (posed orientation = ``D @ rest``):
   joints with several mapped children (pelvis, spine3) by Kabsch/SVD from the rest child directions
   to the posed ones (twist included); single-child joints by the minimal swing that takes the rest
   segment, carried along by the parent's ``D``, onto the posed segment (twist inherited); leaves keep
   the parent's ``D``;
4. Blender's pose-bone convention: the basis rotation of bone ``b`` is ``R_b^T D_a^T D_b R_b`` with
   ``R_b`` its rest rotation (``Bone.matrix_local``) and ``a`` its nearest mapped armature ancestor
   (bones in between are unmapped and stay at rest, so they carry ``D_a`` unchanged);
5. quaternions (w, x, y, z) with sign continuity over time, and the root bone's location in its own
   rest frame.

Segments use joint positions (bone heads), never bone tails or rolls, so a rig's bones may point
anywhere and have any roll.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import facing, smpl22

# ----------------------------------------------------------------------------------------------------
# Rotation helpers (batched over leading axes)
# ----------------------------------------------------------------------------------------------------


def quat_from_matrix(m: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] -> unit quaternions [..., 4] (w, x, y, z).

    Shepperd's method: per matrix, use the formula built on the largest of w, x, y, z, which keeps
    the division well conditioned for every rotation angle.
    """
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    m00, m01, m02 = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    m10, m11, m12 = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    m20, m21, m22 = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    tr = m00 + m11 + m22
    # 4 candidate quaternions, each scaled by 4 * (its largest component).
    cand = np.stack(
        [
            np.stack([1.0 + tr, m21 - m12, m02 - m20, m10 - m01], -1),
            np.stack([m21 - m12, 1.0 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
            np.stack([m02 - m20, m01 + m10, 1.0 - m00 + m11 - m22, m12 + m21], -1),
            np.stack([m10 - m01, m02 + m20, m12 + m21, 1.0 - m00 - m11 + m22], -1),
        ],
        axis=1,
    )
    diag = np.stack([tr, m00, m11, m22], -1)
    best = np.argmax(diag, axis=-1)
    q = cand[np.arange(len(m)), best]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    q *= np.where(q[:, :1] < 0.0, -1.0, 1.0)
    return q.reshape(*shape, 4)


def matrix_from_quat(q: np.ndarray) -> np.ndarray:
    """Quaternions [..., 4] (w, x, y, z), normalised here -> rotation matrices [..., 3, 3]."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def quat_continuity(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so each quaternion lies in the hemisphere of the previous one.

    q and -q are the same rotation, but F-curves interpolate components: a sign jump between two keys
    would swing the bone through a wrong in-between. Vectorised as a cumulative product of the signs
    of consecutive dot products.
    """
    q = np.moveaxis(np.asarray(q, dtype=np.float64), axis, 0)
    if q.shape[0] < 2:
        return np.moveaxis(q.copy(), 0, axis)
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.where(dots < 0.0, -1.0, 1.0)
    sign = np.concatenate([np.ones_like(flips[:1]), np.cumprod(flips, axis=0)], axis=0)
    return np.moveaxis(q * sign[..., None], 0, axis)


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of quaternions [..., 4]; ``t`` broadcasts against q[..., 0].

    Takes the short way (flips q1 into q0's hemisphere) and falls back to normalised lerp for nearly
    equal quaternions.
    """
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]
    d = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(d < 0.0, -q1, q1)
    d = np.abs(d)
    theta = np.arccos(np.clip(d, -1.0, 1.0))
    sin_t = np.sin(theta)
    small = sin_t < 1e-6
    safe = np.where(small, 1.0, sin_t)
    w0 = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(small, t, np.sin(t * theta) / safe)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def rotation_z(angle: float) -> np.ndarray:
    """Rotation about +Z by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _unit(v: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimal rotations [..., 3, 3] taking directions ``a`` onto ``b`` (both [..., 3])."""
    a = _unit(np.asarray(a, dtype=np.float64))
    b = _unit(np.asarray(b, dtype=np.float64))
    a, b = np.broadcast_arrays(a, b)
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    zero = np.zeros_like(c)
    vx = np.stack(
        [
            np.stack([zero, -v[..., 2], v[..., 1]], -1),
            np.stack([v[..., 2], zero, -v[..., 0]], -1),
            np.stack([-v[..., 1], v[..., 0], zero], -1),
        ],
        axis=-2,
    )
    eye = np.broadcast_to(np.eye(3), vx.shape)
    opposite = c < -1.0 + 1e-9
    k = 1.0 / np.where(opposite, 1.0, 1.0 + c)
    r = eye + vx + (vx @ vx) * k[..., None, None]
    if np.any(opposite):
        # Half turn about any axis perpendicular to a.
        helper = np.where(np.abs(a[..., :1]) < 0.9, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
        axis = _unit(np.cross(a, helper))
        half = 2.0 * axis[..., :, None] * axis[..., None, :] - eye
        r = np.where(opposite[..., None, None], half, r)
    return r


def kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Best rotations R [..., 3, 3] with ``R @ src[k] ~ dst[..., k]`` (src [k, 3] or [..., k, 3]).

    SVD of the cross-covariance with the reflection fixed, so the answer is always proper.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    h = np.swapaxes(src, -1, -2) @ dst  # [..., 3, 3] = sum_k src_k dst_k^T
    u, _, vt = np.linalg.svd(h)
    v = np.swapaxes(vt, -1, -2)
    ut = np.swapaxes(u, -1, -2)
    d = np.sign(np.linalg.det(v @ ut))
    d = np.where(d == 0.0, 1.0, d)
    fix = np.broadcast_to(np.eye(3), v.shape).copy()
    fix[..., 2, 2] = d
    return v @ fix @ ut


# ----------------------------------------------------------------------------------------------------
# Rig description and placement
# ----------------------------------------------------------------------------------------------------


@dataclass
class RigRest:
    """What retargeting needs to know about an armature, as plain arrays.

    Built from Blender by :func:`salad_blender.armature.rig_rest_from_object`; tests build it by hand.
    ``rest`` holds each bone's rest matrix in armature space (``Bone.matrix_local``: columns are the
    bone's X/Y/Z axes, translation its head); ``world`` is the armature object's ``matrix_world``.
    """

    bone_names: list[str]
    parents: np.ndarray  # [n] armature parent index, -1 for roots
    rest: np.ndarray  # [n, 4, 4]
    world: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        self.parents = np.asarray(self.parents, dtype=np.int64)
        self.rest = np.asarray(self.rest, dtype=np.float64)
        self.world = np.asarray(self.world, dtype=np.float64)
        self.index = {n: i for i, n in enumerate(self.bone_names)}

    @property
    def heads(self) -> np.ndarray:
        """Bone heads [n, 3] in armature space."""
        return self.rest[:, :3, 3]

    def heads_world(self) -> np.ndarray:
        """Bone heads [n, 3] in world space."""
        return self.heads @ self.world[:3, :3].T + self.world[:3, 3]

    def joint_heads_world(self, bone_map: dict[str, str]) -> dict[str, np.ndarray]:
        """World position of every mapped joint (its bone's head)."""
        hw = self.heads_world()
        return {j: hw[self.index[b]] for j, b in bone_map.items()}


@dataclass
class Placement:
    """Similarity transform from the motion's Blender space to world space.

    ``world = origin + scale * Rz(heading) @ p``: the motion's origin (its root's ground point at
    frame 0) lands on ``origin``, its initial facing (-Y) turns by ``heading`` radians about +Z, and
    distances scale by ``scale`` (rig leg length / motion leg length).
    """

    scale: float = 1.0
    heading: float = 0.0
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def apply(self, points: np.ndarray) -> np.ndarray:
        r = rotation_z(self.heading) * self.scale
        return np.asarray(points, dtype=np.float64) @ r.T + np.asarray(self.origin, dtype=np.float64)


def without_root_travel(joints_model: np.ndarray) -> np.ndarray:
    """The motion "in place": the pelvis's ground-plane travel (model X and Z; Y is up) taken out of every
    joint, so the clip stays where it starts (a cycle for a game engine). Height and turning stay."""
    joints_model = np.asarray(joints_model, dtype=np.float64)
    travel = joints_model[:, :1, :] - joints_model[:1, :1, :]
    travel[..., 1] = 0.0
    return joints_model - travel


def _leg_length(pos: dict[str, np.ndarray] | np.ndarray, per_frame: bool) -> float | None:
    """Mean hip->knee->ankle length over both legs (median over frames for a motion), if known."""
    lengths = []
    for side in ("left", "right"):
        chain = [n for n in (f"{side}_hip", f"{side}_knee", f"{side}_ankle") if n in pos]
        if len(chain) < 2 or chain[0] != f"{side}_hip" or chain[-1] != f"{side}_ankle":
            continue
        total = 0.0
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            seg = np.linalg.norm(np.asarray(pos[b]) - np.asarray(pos[a]), axis=-1)
            total = total + (np.median(seg) if per_frame else seg)
        lengths.append(float(total))
    return float(np.mean(lengths)) if lengths else None


def motion_leg_length(joints_blender: np.ndarray) -> float:
    """Median leg length of a motion [T, 22, 3] (hip->knee + knee->ankle, both sides)."""
    pos = {n: joints_blender[:, i] for i, n in enumerate(smpl22.JOINT_NAMES)}
    out = _leg_length(pos, per_frame=True)
    assert out is not None
    return out


def rig_facing(rig: RigRest, bone_map: dict[str, str]) -> np.ndarray:
    """Horizontal unit forward vector of a rig in world space, from its hips (left_hip - right_hip).

    Only meaningful once :func:`salad_blender.rigs.check_sides` has confirmed left is left.
    Falls back to -Y (Blender's front view convention) when the hips are not both mapped.
    """
    pos = rig.joint_heads_world(bone_map)
    if "left_hip" in pos and "right_hip" in pos:
        return facing.forward(pos["left_hip"], pos["right_hip"])
    return facing.FRONT.copy()


def auto_placement(rig: RigRest, bone_map: dict[str, str], joints_blender: np.ndarray) -> Placement:
    """Placement that starts the motion where the rig stands, facing where it faces, at its scale.

    Scale: rig leg length in world units over the motion's median leg length (1 when a leg is not
    mapped). Heading: from the rig's hips. Origin: below the rig's rest pelvis, on the plane of the
    armature object's origin (the floor for FBX/Mixamo imports and for our own armature).
    """
    pos = rig.joint_heads_world(bone_map)
    rig_leg = _leg_length(pos, per_frame=False)
    scale = rig_leg / motion_leg_length(joints_blender) if rig_leg else 1.0
    fwd = rig_facing(rig, bone_map)
    heading = float(facing.heading(fwd))
    origin = np.array([pos["pelvis"][0], pos["pelvis"][1], rig.world[2, 3]])
    return Placement(scale=float(scale), heading=heading, origin=origin)


# ----------------------------------------------------------------------------------------------------
# Retargeting
# ----------------------------------------------------------------------------------------------------


@dataclass
class RetargetResult:
    """Pose-bone channels for the mapped bones, ready for F-curves.

    ``quats`` [T, n, 4] (w, x, y, z) are ``PoseBone.rotation_quaternion`` values (relative to rest, in
    the bone's local frame); ``root_location`` [T, 3] is the root bone's ``PoseBone.location``.
    """

    bone_names: list[str]
    quats: np.ndarray
    root_bone: str
    root_location: np.ndarray
    fps: float
    placement: Placement
    # (bone, custom property, value) keyed once (a control rig's switches) and unkeyed bones whose pose
    # the motion needs at rest beyond the keyed bones' ancestors (see :mod:`salad_blender.rigify`).
    switches: list[tuple[str, str, float]] = field(default_factory=list)
    rest_bones: list[str] = field(default_factory=list)
    # Further bones keyed every frame, {bone: (quaternions [T, 4], location [T, 3])}: a control rig's IK
    # controls matching the FK pose (:mod:`salad_blender.rigify_ik`); derived last, so never resampled.
    ik_keys: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.quats.shape[0])

    def cropped(self, frames: int) -> RetargetResult:
        """The first ``frames`` frames (a real clip's edit keeps exactly the source's scene frames)."""
        n = max(1, min(int(frames), self.num_frames))
        return replace(self, quats=self.quats[:n], root_location=self.root_location[:n],
                       ik_keys={b: (q[:n], loc[:n]) for b, (q, loc) in self.ik_keys.items()})


def _effective_tree(bone_map: dict[str, str]) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Parent/children among mapped joints only (an unmapped joint is skipped over)."""
    mapped = [i for i, n in enumerate(smpl22.JOINT_NAMES) if n in bone_map]
    mset = set(mapped)
    parent: dict[int, int] = {}
    kids: dict[int, list[int]] = {j: [] for j in mapped}
    for j in mapped:
        p = smpl22.PARENTS[j]
        while p != -1 and p not in mset:
            p = smpl22.PARENTS[p]
        parent[j] = p
        if p != -1:
            kids[p].append(j)
    return parent, kids


def joint_deltas(
    rest_joints: np.ndarray, posed: np.ndarray, bone_map: dict[str, str]
) -> dict[int, np.ndarray]:
    """Armature-space delta rotations [T, 3, 3] per mapped joint index (posed = D @ rest).

    ``rest_joints`` [22, 3] and ``posed`` [T, 22, 3] are joint positions in the same (armature)
    space; rows of unmapped joints are ignored.
    """
    t = posed.shape[0]
    parent, kids = _effective_tree(bone_map)
    eye = np.broadcast_to(np.eye(3), (t, 3, 3))
    deltas: dict[int, np.ndarray] = {}
    for j in sorted(parent):  # SMPL order lists parents before children
        dp = deltas[parent[j]] if parent[j] != -1 else eye
        ch = kids[j]
        if not ch:
            deltas[j] = dp
        elif len(ch) == 1:
            c = ch[0]
            carried = dp @ (rest_joints[c] - rest_joints[j])
            deltas[j] = swing(carried, posed[:, c] - posed[:, j]) @ dp
        else:
            src = _unit(rest_joints[ch] - rest_joints[j])
            dst = _unit(posed[:, ch] - posed[:, j][:, None])
            deltas[j] = kabsch(src, dst)
    return deltas


def retarget(
    joints_model: np.ndarray,
    rig: RigRest,
    bone_map: dict[str, str],
    *,
    placement: Placement | None = None,
    fps: float = smpl22.FPS,
) -> RetargetResult:
    """Retarget model-space joints [T, 22, 3] (HumanML3D conventions) onto ``rig``.

    ``bone_map`` maps SMPL-22 joint names to bone names (see :mod:`salad_blender.rigs`); it must map
    ``pelvis``, whose bone receives the root translation. Unmapped bones stay at rest. ``placement``
    defaults to :func:`auto_placement`. Validation of names/sides is the caller's job
    (:func:`salad_blender.rigs.resolve_bone_map`); this only checks that the mapped bones exist.
    """
    joints_model = np.asarray(joints_model, dtype=np.float64)
    if joints_model.ndim != 3 or joints_model.shape[1:] != (smpl22.NUM_JOINTS, 3):
        raise ValueError(f"expected joints of shape [T, 22, 3], got {list(joints_model.shape)}")
    if "pelvis" not in bone_map:
        raise ValueError("the bone map must map 'pelvis' (the root bone that carries the translation)")
    missing = [b for b in bone_map.values() if b not in rig.index]
    if missing:
        raise ValueError(f"bones not in the armature: {missing}")

    joints_bl = smpl22.model_to_blender(joints_model)
    if placement is None:
        placement = auto_placement(rig, bone_map, joints_bl)
    world = placement.apply(joints_bl)
    inv = np.linalg.inv(rig.world)
    posed = world @ inv[:3, :3].T + inv[:3, 3]  # armature space [T, 22, 3]

    rest_joints = np.zeros((smpl22.NUM_JOINTS, 3))
    for name, bone in bone_map.items():
        rest_joints[smpl22.INDEX[name]] = rig.heads[rig.index[bone]]
    deltas = joint_deltas(rest_joints, posed, bone_map)

    # Bone-level: delta of each mapped bone and of its nearest mapped armature ancestor.
    bone_delta = {rig.index[bone_map[smpl22.JOINT_NAMES[j]]]: d for j, d in deltas.items()}
    t = joints_model.shape[0]
    eye = np.broadcast_to(np.eye(3), (t, 3, 3))
    names: list[str] = []
    mats = []
    for joint in smpl22.JOINT_NAMES:
        if joint not in bone_map:
            continue
        b = rig.index[bone_map[joint]]
        a = int(rig.parents[b])
        while a != -1 and a not in bone_delta:
            a = int(rig.parents[a])
        da = bone_delta[a] if a != -1 else eye
        rb = rig.rest[b, :3, :3]
        mats.append(rb.T @ np.swapaxes(da, -1, -2) @ bone_delta[b] @ rb)
        names.append(bone_map[joint])
    quats = quat_continuity(quat_from_matrix(np.stack(mats, axis=1)), axis=0)

    root = rig.index[bone_map["pelvis"]]
    rr = rig.rest[root]
    root_loc = (posed[:, smpl22.INDEX["pelvis"]] - rr[:3, 3]) @ rr[:3, :3]
    return RetargetResult(names, quats, bone_map["pelvis"], root_loc, float(fps), placement)


def resample(result: RetargetResult, fps: float) -> RetargetResult:
    """Resample a result to ``fps`` (slerp rotations, lerp the root), keeping its duration.

    Rotations rather than joint positions are interpolated so bone lengths stay rigid in between.
    Frame k of the output is at time k / fps; the last output frame is at or before the source's end.
    """
    if abs(fps - result.fps) < 1e-9:
        return result
    t_src = result.num_frames
    duration = (t_src - 1) / result.fps
    n = int(np.floor(duration * fps + 1e-6)) + 1
    s = np.arange(n) * (result.fps / fps)
    i0 = np.clip(np.floor(s + 1e-9).astype(np.int64), 0, t_src - 1)
    i1 = np.minimum(i0 + 1, t_src - 1)
    a = np.clip(s - i0, 0.0, 1.0)
    q = slerp(result.quats[i0], result.quats[i1], np.broadcast_to(a[:, None], (n, result.quats.shape[1])))
    q = quat_continuity(q, axis=0)
    loc = result.root_location[i0] * (1.0 - a[:, None]) + result.root_location[i1] * a[:, None]
    return RetargetResult(result.bone_names, q, result.root_bone, loc, float(fps), result.placement,
                          list(result.switches), list(result.rest_bones))


def _topological_order(parents: np.ndarray) -> list[int]:
    """Bone indices with every parent before its children."""
    depth = np.zeros(len(parents), dtype=np.int64)
    for b in range(len(parents)):
        p = int(parents[b])
        while p != -1:
            depth[b] += 1
            p = int(parents[p])
    return [int(i) for i in np.argsort(depth, kind="stable")]


def forward_kinematics(
    rig: RigRest, result: RetargetResult, frames: np.ndarray | None = None
) -> np.ndarray:
    """World-space bone heads [F, n_bones, 3] of ``rig`` posed by ``result`` (unmapped bones at rest).

    Blender's pose evaluation restated in numpy (``pose = parent_pose @ parent_rest^-1 @ rest @
    basis``), so retargeting can be checked without bpy; the bpy tests check Blender agrees.
    """
    idx = np.arange(result.num_frames) if frames is None else np.asarray(frames)
    f = len(idx)
    n = len(rig.bone_names)
    basis = np.broadcast_to(np.eye(4), (f, n, 4, 4)).copy()
    for k, name in enumerate(result.bone_names):
        basis[:, rig.index[name], :3, :3] = matrix_from_quat(result.quats[idx, k])
    basis[:, rig.index[result.root_bone], :3, 3] = result.root_location[idx]
    pose = np.zeros((f, n, 4, 4))
    for b in _topological_order(rig.parents):
        p = int(rig.parents[b])
        if p == -1:
            pose[:, b] = rig.rest[b] @ basis[:, b]
        else:
            pose[:, b] = pose[:, p] @ np.linalg.inv(rig.rest[p]) @ rig.rest[b] @ basis[:, b]
    world = rig.world @ pose
    return world[..., :3, 3]


# ----------------------------------------------------------------------------------------------------
# Foot contacts
# ----------------------------------------------------------------------------------------------------


def _pin_offsets(pos: np.ndarray, flags: np.ndarray, blend: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal offsets [T, 3] that hold a joint still during each contact run, and their weights [T].

    Inside a run the joint is moved to the run's mean horizontal position; the offset fades out
    linearly over ``blend`` frames on each side so pinning never pops.
    """
    t = len(flags)
    delta = np.zeros((t, 3))
    weight = np.zeros(t)
    f = np.concatenate([[False], np.asarray(flags, dtype=bool), [False]])
    starts = np.flatnonzero(~f[:-1] & f[1:])
    ends = np.flatnonzero(f[:-1] & ~f[1:])  # exclusive
    for s, e in zip(starts, ends, strict=True):
        target = pos[s:e].mean(axis=0)
        d = target - pos[s:e]
        d[:, 1] = 0.0  # model space: Y is up, only slide horizontally
        delta[s:e] = d
        weight[s:e] = 1.0
        for k in range(1, blend + 1):
            w = 1.0 - k / (blend + 1)
            for i, edge in ((s - k, s), (e - 1 + k, e - 1)):
                if 0 <= i < t and w > weight[i]:
                    delta[i] = (target - pos[edge]) * np.array([1.0, 0.0, 1.0]) * w
                    weight[i] = w
    return delta, weight


def pin_contacts(joints_model: np.ndarray, contacts: np.ndarray, blend: int = 3) -> np.ndarray:
    """Remove foot sliding: hold planted ankles/toes still, re-solving the knee (two-bone IK).

    ``contacts`` [T, 4] are HumanML3D's flags for (l_ankle, l_foot, r_ankle, r_foot). A planted joint
    keeps its run's mean horizontal position; the foot moves rigidly with whichever of its joints is
    planted; the knee is re-placed in its original bending plane so thigh and shin keep their length.
    Model space in and out ([T, 22, 3]).
    """
    j = np.array(joints_model, dtype=np.float64)
    c = np.asarray(contacts) > 0.5
    if c.shape != (len(j), 4):
        raise ValueError(f"contacts must be [T, 4] for T = {len(j)}, got {list(c.shape)}")
    idx = smpl22.INDEX
    for col, side in ((0, "left"), (2, "right")):
        h, k, a, f = (idx[f"{side}_{n}"] for n in ("hip", "knee", "ankle", "foot"))
        da, wa = _pin_offsets(j[:, a], c[:, col], blend)
        df, wf = _pin_offsets(j[:, f], c[:, col + 1], blend)
        if not (wa.any() or wf.any()):
            continue
        m = (wa > 0) | (wf > 0)  # only frames near a contact change (bit for bit elsewhere)
        d_ankle = np.where((wa > 0)[:, None], da, df)[m]
        d_toe = np.where((wf > 0)[:, None], df, da)[m]
        hip, knee, ankle = j[m, h], j[m, k], j[m, a]
        l1 = np.linalg.norm(knee - hip, axis=-1)
        l2 = np.linalg.norm(ankle - knee, axis=-1)
        target = ankle + d_ankle
        dvec = target - hip
        dist = np.linalg.norm(dvec, axis=-1)
        dunit = dvec / np.maximum(dist, 1e-9)[:, None]
        dist = np.clip(dist, np.abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)
        pole = (knee - hip) - np.sum((knee - hip) * dunit, -1, keepdims=True) * dunit
        pole = _unit(pole)
        cos_a = np.clip((l1**2 + dist**2 - l2**2) / (2.0 * l1 * dist), -1.0, 1.0)
        new_knee = hip + l1[:, None] * (cos_a[:, None] * dunit + np.sqrt(1.0 - cos_a**2)[:, None] * pole)
        new_ankle = hip + dist[:, None] * dunit
        j[m, f] = j[m, f] + d_toe + (new_ankle - target)
        j[m, k] = new_knee
        j[m, a] = new_ankle
    return j
