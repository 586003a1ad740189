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
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

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


@dataclass(frozen=True)
class Handover:
    """Where a result's other channels stop following the Action they are kept from and follow ``action`` instead:
    an in-between's A up to ``a_end`` (its last frame in the result), B from ``b_start`` (its first), B's keys
    moved by ``offset`` frames (a whole number: they stay on frames)."""

    action: Any  # bpy.types.Action
    a_end: float
    b_start: float
    offset: float


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


def copy_trimmed(src: bpy.types.FCurve, dst: bpy.types.FCurve, start: float, end: float, offset: float = 0.0) -> None:
    """Copy ``src``'s keys into the empty ``dst``, keeping only ``start`` .. ``end`` (``dst``'s frames: ``src``'s
    keys are moved by ``offset`` frames, an in-between's B, whose part starts later in the result).

    Keys inside are copied as they are (handles, handle types, interpolation, easing, the curve's auto
    smoothing); each boundary frame gets a key on the user's curve. A segment the boundary cuts keeps its shape:
    a Bézier one is split exactly (de Casteljau); an easing one (Back, Sine...), or a Bézier piece whose handles
    cross in time, is baked to Bézier keys, one per frame or finer (cubic Hermite: within 1e-5). Handles whose
    automatic value would change now that a neighbour is gone are frozen (made Free) where the user's curve had
    them. A curve with modifiers (noise, cycles...) is baked: one linear key per frame with the value the
    modifiers gave.
    """
    _curve_settings(src, dst)
    kp = dst.keyframe_points
    if len(src.modifiers):
        frames = np.arange(int(np.floor(start)), int(np.ceil(end)) + 1, dtype=np.float64)
        co = np.empty((len(frames), 2), dtype=np.float32)
        co[:, 0] = frames
        co[:, 1] = [src.evaluate(float(f) - offset) for f in frames]
        kp.add(len(frames))
        kp.foreach_set("co", co.ravel())
        kp.foreach_set("interpolation", np.ones(len(frames), dtype=np.int32))
        dst.update()
        return
    _write(dst, _keys(src, start, end, offset))


def copy_joined(a: bpy.types.FCurve, b: bpy.types.FCurve, dst: bpy.types.FCurve, span: tuple[float, float],
                a_end: float, b_start: float, offset: float) -> None:
    """``a``'s keys from ``span[0]`` to ``a_end``, then ``b``'s, moved by ``offset`` frames, from ``b_start`` to
    ``span[1]``, into the empty ``dst``: a channel both sides of an in-between key.

    Why: B's part of an in-between is B's motion, so what B keyed there (a prop, the face) plays there too. The
    gap eases from A's last value to B's first (flat Bézier handles, a third of the gap long: no overshoot);
    neither side's own keys change. ``b``'s extrapolation is kept (it is what plays after the result)."""
    _curve_settings(a, dst)
    dst.extrapolation = b.extrapolation
    first, second = _keys(a, span[0], a_end), _keys(b, b_start, span[1], offset)
    last, nxt = first[-1], second[0]
    third = (nxt["co"][0] - last["co"][0]) / 3
    last.update(interpolation=_BEZIER, handle_right=last["co"] + (third, 0.0))
    nxt["handle_left"] = nxt["co"] - (third, 0.0)
    _freeze(last, "right")
    _freeze(nxt, "left")
    _write(dst, first + second)


def _curve_settings(src: bpy.types.FCurve, dst: bpy.types.FCurve) -> None:
    for attr in ("extrapolation", "color_mode", "auto_smoothing", "mute", "hide", "lock"):
        if hasattr(src, attr):
            setattr(dst, attr, getattr(src, attr))


def _keys(src: bpy.types.FCurve, start: float, end: float, offset: float = 0.0) -> list[dict]:
    """``src``'s keys (one dict a key) over ``start`` .. ``end`` of the result, its keys moved by ``offset``; a
    curve with modifiers baked to one linear key a frame."""
    if len(src.modifiers):
        frames = np.arange(int(np.floor(start)), int(np.ceil(end)) + 1, dtype=np.float64)
        return [_new_key(_PLAIN, f, src.evaluate(f - offset), _LINEAR) for f in frames]
    keys = [dict(zip(_KEY_FIELDS, row, strict=True)) for row in zip(*_columns(_read(src)), strict=True)]
    keys = _trimmed(src, keys, start - offset, end - offset)
    if offset:
        for k in keys:
            for name in _PAIRS:
                k[name] = k[name] + (offset, 0.0)
    return keys


def _write(dst: bpy.types.FCurve, keys: list[dict]) -> None:
    dst.keyframe_points.add(len(keys))
    for name, values in _flat(keys).items():
        dst.keyframe_points.foreach_set(name, values)
    dst.update()


_KEY_FIELDS = _PAIRS + _ENUMS + _FLOATS
_CONSTANT, _LINEAR, _BEZIER = 0, 1, 2  # interpolation (easing types follow)
_FREE, _AUTO, _COMPUTED = 0, (1, 4), (1, 2, 4)  # handle types: Free; Auto, Auto Clamped; and Vector
_PLAIN = {"easing": 0, "type": 0, "amplitude": 0.8, "back": 1.70158, "period": 4.1}  # a new key's defaults


def _columns(keys: dict[str, np.ndarray]) -> list:
    return [keys[n].astype(np.float64).reshape(-1, 2) if n in _PAIRS else keys[n].tolist() for n in _KEY_FIELDS]


def _flat(keys: list[dict]) -> dict[str, np.ndarray]:
    out = {}
    for name in _KEY_FIELDS:
        dtype = np.int32 if name in _ENUMS else np.float32
        out[name] = np.array([k[name] for k in keys], dtype=dtype).reshape(-1)
    return out


def _trimmed(src: bpy.types.FCurve, keys: list[dict], start: float, end: float) -> list[dict]:
    """``keys`` (one dict a key, as read) cut to ``start`` .. ``end``, a key added on each boundary."""
    for frame, at_start in ((start, True), (end, False)):
        x = np.array([k["co"][0] for k in keys])
        on = np.flatnonzero(np.abs(x - frame) < _EPS)
        if len(on):
            _freeze(keys[int(on[0])], "left", "right")
            continue
        i = int(np.searchsorted(x, frame))  # keys[i - 1] < frame < keys[i]
        if i in (0, len(keys)):  # beyond the keys: the extrapolation, a straight line
            edge = keys[0 if i == 0 else -1]
            _lost_neighbour(edge, "left" if i == 0 else "right")
            if i == len(keys):
                edge["interpolation"] = _LINEAR
            keys.insert(i, _new_key(edge, frame, src.evaluate(frame), _LINEAR))
            continue
        a, b = keys[i - 1], keys[i]
        _lost_neighbour(b if at_start else a, "left" if at_start else "right")
        interp = a["interpolation"]
        piece = _split(a, b, frame, at_start) if interp == _BEZIER else None
        if piece is not None:
            new = [piece]
        elif interp in (_CONSTANT, _LINEAR):
            new = [_new_key(a, frame, a["co"][1] if interp == _CONSTANT else src.evaluate(frame), interp)]
        else:  # an easing, or a Bézier piece one segment cannot hold: bake that piece
            lo, hi = (frame, min(end, b["co"][0])) if at_start else (a["co"][0], frame)
            new = _baked(src, a, b, lo, hi)
            if not at_start:  # a starts the baked piece
                a.update(interpolation=_BEZIER, handle_right=new[0]["handle_right"])
                _freeze(a, "right")
                new = new[1:]
            elif abs(hi - b["co"][0]) < _EPS:  # b ends it
                b["handle_left"] = new[-1]["handle_left"]
                _freeze(b, "left")
                new = new[:-1]
        keys[i:i] = new
    return [k for k in keys if start - _EPS < k["co"][0] < end + _EPS]


def _freeze(key: dict, *sides: str) -> None:
    for side in sides:
        key[f"handle_{side}_type"] = _FREE


def _lost_neighbour(key: dict, side: str) -> None:
    """Freeze the handles Blender would recompute now that ``key``'s neighbour on ``side`` changed: automatic ones
    (they look both ways), and a vector one on that side."""
    other = "right" if side == "left" else "left"
    if key[f"handle_{side}_type"] in _COMPUTED:
        _freeze(key, side)
    if key[f"handle_{other}_type"] in _AUTO:
        _freeze(key, other)


def _new_key(like: dict, frame: float, value: float, interpolation: int) -> dict:
    co = np.array([frame, value])
    return {**like, "co": co, "handle_left": co - (1.0, 0.0), "handle_right": co + (1.0, 0.0), "type": 0,
            "interpolation": interpolation, "handle_left_type": _FREE, "handle_right_type": _FREE}


def _split(a: dict, b: dict, frame: float, keep_right: bool) -> dict | None:
    """The key that splits the Bézier segment ``a``-``b`` at ``frame`` without changing its shape (de Casteljau);
    ``a``'s right and ``b``'s left handles are shortened to match. None (nothing changed) if a handle of the kept
    piece would reach past its other key: Blender would shorten it (handles that cross in time)."""
    p0, p1, p2, p3 = a["co"], a["handle_right"].copy(), b["handle_left"].copy(), b["co"]
    span = p3[0] - p0[0]  # Blender's evaluation shortens a handle that reaches past the other key
    if abs(p1[0] - p0[0]) > span:
        p1 = p0 + (p1 - p0) * span / abs(p1[0] - p0[0])
    if abs(p3[0] - p2[0]) > span:
        p2 = p3 + (p2 - p3) * span / abs(p3[0] - p2[0])
    lo, hi = 0.0, 1.0
    for _ in range(60):  # bisect for x(u) = frame (x rises with u unless the handles cross in time)
        u = 0.5 * (lo + hi)
        x = ((1 - u) ** 3 * p0[0] + 3 * (1 - u) ** 2 * u * p1[0] + 3 * (1 - u) * u**2 * p2[0] + u**3 * p3[0])
        lo, hi = (u, hi) if x < frame else (lo, u)
    u = 0.5 * (lo + hi)
    p01, p12, p23 = p0 + u * (p1 - p0), p1 + u * (p2 - p1), p2 + u * (p3 - p2)
    p012, p123 = p01 + u * (p12 - p01), p12 + u * (p23 - p12)
    mid = p012 + u * (p123 - p012)
    kept = (mid, p123, p23, p3) if keep_right else (p0, p01, p012, mid)
    span = kept[3][0] - kept[0][0]
    if kept[1][0] - kept[0][0] > span or kept[3][0] - kept[2][0] > span:
        return None
    a["handle_right"], b["handle_left"] = p01, p23
    key = _new_key(a, frame, mid[1], _BEZIER)
    key["handle_left"], key["handle_right"] = p012, p123
    return key


def _baked(src: bpy.types.FCurve, a: dict, b: dict, lo: float, hi: float) -> list[dict]:
    """Bézier keys from ``lo`` to ``hi`` on the easing segment ``a``-``b``, with the user's curve's values and
    slopes (cubic Hermite): one a frame, halved down to 1/16 frame where a piece misses the curve by more than
    1e-5 of the segment's swing (Elastic, Bounce)."""
    f, x0, x1 = src.evaluate, a["co"][0], b["co"][0]
    tol, h = 1e-5 * max(1.0, abs(b["co"][1] - a["co"][1])), 1e-2

    def slope(x: float) -> float:
        if x - h < x0:  # one-sided at the segment's ends: beyond them the curve is another one
            return (-3 * f(x) + 4 * f(x + h) - f(x + 2 * h)) / (2 * h)
        if x + h > x1:
            return (3 * f(x) - 4 * f(x - h) + f(x - 2 * h)) / (2 * h)
        return (f(x + h) - f(x - h)) / (2 * h)

    def fits(p: float, q: float) -> bool:
        d, y0, y1, s0, s1 = q - p, f(p), f(q), slope(p), slope(q)
        for t in (0.25, 0.5, 0.75):
            y = (2 * t**3 - 3 * t**2 + 1) * y0 + (t**3 - 2 * t**2 + t) * d * s0 + (3 * t**2 - 2 * t**3) * y1 \
                + (t**3 - t**2) * d * s1
            if abs(y - f(p + t * d)) > tol:
                return False
        return True

    frames = np.concatenate([[lo], np.arange(np.floor(lo) + 1, hi), [hi]])
    frames = frames[np.concatenate([[True], np.diff(frames) > _EPS])]
    frames[-1] = hi
    todo, xs = [(float(p), float(q)) for p, q in pairwise(frames)][::-1], [float(lo)]
    while todo:  # left to right: the stack's top is the leftmost piece
        p, q = todo.pop()
        if q - p > 1 / 16 + 1e-9 and not fits(p, q):
            todo += [((p + q) / 2, q), (p, (p + q) / 2)]
        else:
            xs.append(q)
    keys = [_new_key(a, x, f(x), _BEZIER) for x in xs]
    for left, right in pairwise(keys):
        third = (right["co"][0] - left["co"][0]) / 3
        left["handle_right"] = left["co"] + (third, third * slope(left["co"][0]))
        right["handle_left"] = right["co"] - (third, third * slope(right["co"][0]))
    return keys
