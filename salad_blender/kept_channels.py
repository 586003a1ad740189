"""Keep Other Channels: what a result Action takes over from the Action it replaces on a rig.

Why: a result replaces the rig's active Action, so keys the animator had on channels the generation does
not drive (fingers, face, props, IK poles, custom properties, a hand's scale) would stop playing. The new
Action gets copies of those F-curves, trimmed to its own frames; channels the result drives keep only the
result's keys. The rig object's own transform is never copied (the motion moves the body already: it
would move twice), nor that of the bones that carry the body, which the motion holds at rest (its bones'
parents, a control rig's torso); a :class:`~salad_blender.inputs.ResultWarning` says those keys no longer play.
The replaced Action is only read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import bpy
import numpy as np

OBJECT_TRANSFORMS = {"location": "location", "rotation_euler": "rotation", "rotation_quaternion": "rotation",
                     "rotation_axis_angle": "rotation", "scale": "scale", "delta_location": "delta location",
                     "delta_rotation_euler": "delta rotation", "delta_rotation_quaternion": "delta rotation",
                     "delta_scale": "delta scale"}
_ROTATIONS = ("rotation_quaternion", "rotation_euler", "rotation_axis_angle")
_PAIRS = ("co", "handle_left", "handle_right")
_ENUMS = ("interpolation", "handle_left_type", "handle_right_type", "easing", "type")
_FLOATS = ("amplitude", "back", "period")
_EPS = 1e-4  # frames: a key this close to a boundary frame is on it


def channel(data_path: str, index: int) -> tuple[str, int]:
    """What a curve animates: a bone's rotation in any rotation mode is one channel (a result that keys a
    bone's quaternion drives its Euler curves too: they must not come back if the mode is switched)."""
    head, _, prop = data_path.rpartition(".")
    return (f"{head}.rotation", -1) if prop in _ROTATIONS else (data_path, index)


def split(curves: Iterable[bpy.types.FCurve], driven: set[tuple[str, int]],
          held: Collection[str] = ()) -> tuple[list, list[str], list[str]]:
    """(curves to copy, object transform properties not copied, ``held`` bones whose transform keys are not copied)
    of the replaced action's curves. ``held``: bones the motion needs at rest (:func:`actions.held_bones`)."""
    keep, transforms, held_keyed = [], [], []
    held_paths = {f'pose.bones["{bpy.utils.escape_identifier(b)}"]': b for b in held}
    for fc in curves:
        head, _, prop = fc.data_path.rpartition(".")
        if fc.data_path in OBJECT_TRANSFORMS:
            _add(transforms, OBJECT_TRANSFORMS[fc.data_path])
        elif head in held_paths and prop in OBJECT_TRANSFORMS:
            if not _at_rest(fc, prop):  # a rest key (an earlier result's) changes nothing: no need to say it
                _add(held_keyed, held_paths[head])
        elif channel(fc.data_path, fc.array_index) not in driven and len(fc.keyframe_points):
            keep.append(fc)
    return keep, transforms, sorted(held_keyed)


def _at_rest(fc: bpy.types.FCurve, prop: str) -> bool:
    """Every key of a bone's transform curve is at the rest value (scale 1, quaternion w 1, axis-angle y 1, else 0)."""
    rest = {"scale": 1.0, "rotation_quaternion": (1.0, 0.0, 0.0, 0.0), "rotation_axis_angle": (0.0, 0.0, 1.0, 0.0)}
    value = rest.get(prop, 0.0)
    value = value[fc.array_index] if isinstance(value, tuple) else value
    co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return bool(np.all(np.abs(co[1::2] - value) < 1e-6)) and not len(fc.modifiers)


def _add(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def transform_warning(action_name: str, transforms: list[str], held_keyed: Sequence[str] = ()) -> str:
    """The warning about transform keys that no longer play: the rig object's own, and those of bones that carry
    the body (a parent of the hips, a control rig's torso)."""
    parts = [f"the rig object's {_listed(transforms)}"] if transforms else []
    if held_keyed:
        named = list(held_keyed)
        bones = [f"'{b}'" for b in named[:4]] + ([f"{len(named) - 4} more"] if len(named) > 4 else [])
        parts.append(f"the transform of {_listed(bones)}, which carr{'ies' if len(bones) == 1 else 'y'} the body")
    return (f"'{action_name}' also keys {' and '.join(parts)}: they no longer play (the old Action is kept, "
            "with a fake user)")


def _read(fc: bpy.types.FCurve) -> dict[str, np.ndarray]:
    n = len(fc.keyframe_points)
    out = {}
    for name in _PAIRS:
        out[name] = np.empty(2 * n, dtype=np.float32)
        fc.keyframe_points.foreach_get(name, out[name])
    for name in _ENUMS:
        out[name] = np.empty(n, dtype=np.int32)
        fc.keyframe_points.foreach_get(name, out[name])
    for name in _FLOATS:
        out[name] = np.empty(n, dtype=np.float32)
        fc.keyframe_points.foreach_get(name, out[name])
    return out


def copy_trimmed(src: bpy.types.FCurve, dst: bpy.types.FCurve, start: float, end: float) -> None:
    """Copy ``src``'s keys into the empty ``dst``, keeping only ``start`` .. ``end``.

    Keys inside are copied as they are (handles, interpolation, easing); the boundary frames get a key
    with the curve's value there (Blender's insert splits a Bézier segment without changing its shape, and
    the boundary handles are then frozen, so the curve inside the range plays as before). A curve with
    modifiers (noise, cycles...) is baked: one linear key per frame with the value the modifiers gave.
    """
    for attr in ("extrapolation", "color_mode", "auto_smoothing", "mute", "hide", "lock"):
        if hasattr(src, attr):
            setattr(dst, attr, getattr(src, attr))
    kp = dst.keyframe_points
    if len(src.modifiers):
        frames = np.arange(int(np.floor(start)), int(np.ceil(end)) + 1, dtype=np.float64)
        co = np.empty((len(frames), 2), dtype=np.float32)
        co[:, 0] = frames
        co[:, 1] = [src.evaluate(float(f)) for f in frames]
        kp.add(len(frames))
        kp.foreach_set("co", co.ravel())
        kp.foreach_set("interpolation", np.ones(len(frames), dtype=np.int32))
        dst.update()
        return
    keys = _read(src)
    kp.add(len(src.keyframe_points))
    for name, values in keys.items():
        kp.foreach_set(name, values)
    dst.update()
    x = keys["co"][0::2]
    for frame in (start, end):
        if not np.any(np.abs(x - frame) < _EPS):
            kp.insert(frame, src.evaluate(frame), options={"FAST"})
    dst.update()
    co = np.empty(2 * len(kp), dtype=np.float32)
    kp.foreach_get("co", co)
    x = co[0::2]
    for i in np.flatnonzero((np.abs(x - start) < _EPS) | (np.abs(x - end) < _EPS)):
        k = kp[int(i)]  # freeze the boundary keys' handles: without their outer neighbours auto handles would move
        left, right = tuple(k.handle_left), tuple(k.handle_right)
        k.handle_left_type = k.handle_right_type = "FREE"
        k.handle_left, k.handle_right = left, right
    for i in reversed(np.flatnonzero((x < start - _EPS) | (x > end + _EPS))):
        kp.remove(kp[int(i)], fast=True)
    dst.update()
