"""Bone heads of a plainly keyed armature at many frames, from its F-curves by forward kinematics.

Why: sampling a source action with ``scene.frame_set`` costs a full scene update per frame (the skinned mesh
too): ~1 ms a frame on the test body, far more on a production character, so 10 min of mocap froze Blender for
18 s or more. Mocap (BVH, FBX imports) and SALAD results are plain keys on plain bones: their pose is the
F-curves' values put through the bones' rest matrices, which numpy does for all frames at once.

:func:`world_heads` answers only when that is all there is to the pose (no constraints, drivers, NLA layers,
animated or parented object, unusual bone inheritance) and agrees with Blender's own evaluation at a few
frames; otherwise None, and the caller evaluates every frame in the scene.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import bpy
import numpy as np

from . import actions
from .kept_channels import OBJECT_TRANSFORMS

CHECK_FRAMES = 5  # frames (first, last and between) where the result is compared with Blender's evaluation
TOLERANCE = 1e-4  # of the rig's size (its bones' longest head distance from the origin): the spot check's limit
_CHANNELS = {"location": 3, "rotation_quaternion": 4, "rotation_euler": 3, "rotation_axis_angle": 4, "scale": 3}


def world_heads(obj: bpy.types.Object, bones: Sequence[str], frames: Sequence[int],
                evaluated: Callable[[int], np.ndarray]) -> np.ndarray | None:
    """World-space heads [F, len(bones), 3] of ``bones`` at ``frames`` (whole frames), or None when the fast path
    does not apply or disagrees with ``evaluated(frame)`` (Blender's heads at one frame, [len(bones), 3])."""
    if not _plain(obj):
        return None
    curves = _curves(obj)
    if curves is None:
        return None
    frames = np.asarray(frames, dtype=np.float64)
    pose, index = _pose_matrices(obj, curves, frames, bones)
    heads = pose[:, [index[b] for b in bones]][..., :3, 3]
    mw = np.array(obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).matrix_world)  # not animated: _curves
    out = heads @ mw[:3, :3].T + mw[:3, 3]
    size = max(1e-9, float(np.abs(out).max()))
    for k in np.unique(np.linspace(0, len(frames) - 1, CHECK_FRAMES).round().astype(int)):
        if np.abs(evaluated(int(frames[k])) - out[k]).max() > TOLERANCE * size:
            return None
    return out


def _plain(obj: bpy.types.Object) -> bool:
    """Nothing but the played Action's F-curves moves the bones: no constraints, drivers, NLA layers, parent,
    bones that skip their parent's rotation or scale, or a rig shown in its rest position."""
    ad = obj.animation_data
    if ad is None or ad.action is None or len(ad.drivers) or obj.constraints or obj.parent is not None:
        return False
    if any(not t.mute for t in ad.nla_tracks) or getattr(ad, "action_influence", 1.0) < 1.0:
        return False
    if getattr(ad, "action_blend_type", "REPLACE") != "REPLACE":
        return False
    data_ad = obj.data.animation_data
    if data_ad is not None and (data_ad.action is not None or len(data_ad.drivers)):
        return False
    if obj.data.pose_position != "POSE" or any(pb.constraints for pb in obj.pose.bones):
        return False
    return all(b.use_inherit_rotation and b.inherit_scale == "FULL" and b.use_local_location
               for b in obj.data.bones)


def _curves(obj: bpy.types.Object) -> dict[tuple[str, str, int], bpy.types.FCurve] | None:
    """The played slot's unmuted pose-channel curves by (bone, property, index); None if the object's own
    transform is keyed (it would move the body per frame)."""
    _, fcurves = actions.replaced_curves(obj)
    paths = {f'pose.bones["{bpy.utils.escape_identifier(b.name)}"]': b.name for b in obj.pose.bones}
    out = {}
    for fc in fcurves:
        if fc.mute:
            continue
        if fc.data_path in OBJECT_TRANSFORMS:
            return None
        head, _, prop = fc.data_path.rpartition(".")
        if head in paths and prop in _CHANNELS:
            out[(paths[head], prop, fc.array_index)] = fc
    return out


def _values(fc: bpy.types.FCurve, frames: np.ndarray) -> np.ndarray:
    """``fc`` at ``frames``: a key's own value where a frame has a key (mocap keys every frame), else evaluated."""
    out = np.empty(len(frames))
    todo = np.ones(len(frames), dtype=bool)
    if not len(fc.modifiers) and len(fc.keyframe_points):
        co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        x, y = co[0::2].astype(np.float64), co[1::2].astype(np.float64)
        i = np.clip(np.searchsorted(x, frames), 0, len(x) - 1)
        on = np.abs(x[i] - frames) < 1e-6
        out[on], todo = y[i[on]], ~on
    for k in np.flatnonzero(todo):
        out[k] = fc.evaluate(float(frames[k]))
    return out


def _channel(pb: bpy.types.PoseBone, curves: dict, prop: str, frames: np.ndarray) -> np.ndarray:
    """[F, n] values of one pose channel: keyed components from their curves, the others as the pose holds them."""
    static = np.array(getattr(pb, prop), dtype=np.float64)
    out = np.repeat(static[None], len(frames), axis=0)
    for i in range(_CHANNELS[prop]):
        fc = curves.get((pb.name, prop, i))
        if fc is not None:
            out[:, i] = _values(fc, frames)
    return out


def _rotation(pb: bpy.types.PoseBone, curves: dict, frames: np.ndarray) -> np.ndarray:
    """[F, 3, 3] rotation of a pose bone in its own rotation mode (as Blender: quaternion and axis normalised)."""
    mode = pb.rotation_mode
    if mode == "QUATERNION":
        q = _channel(pb, curves, "rotation_quaternion", frames)
        n = np.linalg.norm(q, axis=1, keepdims=True)
        q = np.where(n > 1e-12, q / np.maximum(n, 1e-12), [1.0, 0.0, 0.0, 0.0])
        return _quat_matrix(q)
    if mode == "AXIS_ANGLE":
        aa = _channel(pb, curves, "rotation_axis_angle", frames)
        axis = aa[:, 1:]
        n = np.linalg.norm(axis, axis=1, keepdims=True)
        axis = np.where(n > 1e-12, axis / np.maximum(n, 1e-12), [0.0, 1.0, 0.0])
        half = aa[:, :1] / 2
        return _quat_matrix(np.concatenate([np.cos(half), np.sin(half) * axis], axis=1))
    e = _channel(pb, curves, "rotation_euler", frames)
    out = np.broadcast_to(np.eye(3), (len(frames), 3, 3))
    for axis in mode:  # "XYZ": X is applied first, so R = Rz @ Ry @ Rx
        out = _axis_matrix("XYZ".index(axis), e[:, "XYZ".index(axis)]) @ out
    return out


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q.T
    return np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
                     np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
                     np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], 1)


def _axis_matrix(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros((len(angle), 3, 3))
    a, b = [(1, 2), (2, 0), (0, 1)][axis]
    out[:, axis, axis] = 1.0
    out[:, a, a], out[:, a, b], out[:, b, a], out[:, b, b] = c, -s, s, c
    return out


def _pose_matrices(obj: bpy.types.Object, curves: dict, frames: np.ndarray, wanted: Sequence[str]
                   ) -> tuple[np.ndarray, dict[str, int]]:
    """[F, bones, 4, 4] armature-space pose matrices of ``wanted`` and their ancestors (parents first), and each
    bone's index: parent's pose @ rest offset from the parent @ T·R·S."""
    bones = _parents_first([obj.data.bones[b] for b in wanted])
    index = {b.name: i for i, b in enumerate(bones)}
    out = np.empty((len(frames), len(bones), 4, 4))
    for bone in bones:
        i, pb = index[bone.name], obj.pose.bones[bone.name]
        basis = np.zeros((len(frames), 4, 4))
        basis[:, :3, :3] = _rotation(pb, curves, frames) * _channel(pb, curves, "scale", frames)[:, None, :]
        if not bone.use_connect:  # a connected bone's head stays on its parent's tail: Blender ignores its location
            basis[:, :3, 3] = _channel(pb, curves, "location", frames)
        basis[:, 3, 3] = 1.0
        rest = np.array(bone.matrix_local)
        if bone.parent is None:
            out[:, i] = rest @ basis
        else:
            offset = np.linalg.inv(np.array(bone.parent.matrix_local)) @ rest
            out[:, i] = out[:, index[bone.parent.name]] @ offset @ basis
    return out, index


def _parents_first(bones: Sequence[bpy.types.Bone]) -> list[bpy.types.Bone]:
    """``bones`` and their ancestors, each after its parent."""
    out: dict[str, bpy.types.Bone] = {}
    for bone in bones:
        chain = []
        while bone is not None and bone.name not in out:
            chain.append(bone)
            bone = bone.parent
        for b in reversed(chain):
            out[b.name] = b
    return list(out.values())
