"""Write retargeted motion into Blender as a new Action per generation (Blender 4.2 LTS .. 5.0).

Policy:

- every call makes a **new** Action ("SALAD: <prompt>", Blender adds .001 suffixes); existing actions
  are never modified, except that the action being replaced on the armature gets a **fake user**
  so it survives saving, and every SALAD action gets one at creation. Nothing is pushed to the NLA
  (NLA strips would blend into the evaluated pose); the new action copies the replaced one's
  channels it does not drive (:mod:`kept_channels`, *Keep Other Channels*);
- keys are written in bulk (``keyframe_points.add`` + ``foreach_set``), linear interpolation,
  one key per scene frame, each bone's rotation in its own rotation mode; the pose (basis) and the
  bones' rotation modes are never changed;
- F-curves are found through feature detection: slotted actions (4.4+: layers -> strips ->
  channelbag per slot; the only way in 5.0, where ``Action.fcurves`` is gone) or the legacy
  ``Action.fcurves`` (4.2, 4.3);
- metadata lives in custom properties (``salad_prompt``, ``salad_seed``, ``salad_frames``,
  ``salad_model``, ``salad_guidance``, ``salad_steps``, ``salad_edits`` as a JSON list, ...), written
  once by :func:`metadata.make_metadata` when the action is created;
- the motion (20 fps) is retargeted at its own rate and rotations are slerped to the scene's fps;
- any failure before or while writing leaves the scene as it was (the half-written action is
  removed).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

import bpy
import numpy as np

from . import kept_channels, loops, rigify, rigify_ik, rigs, smpl22
from . import retarget as rt
from .armature import rig_rest_from_object
from .inputs import ResultWarning
from .metadata import ACTION_PREFIX, action_name, make_metadata, read_metadata

__all__ = ["ACTION_PREFIX", "action_name", "make_metadata", "read_metadata"]  # re-exported: older callers


def scene_fps(scene: bpy.types.Scene) -> float:
    """Frames per second of a scene (``fps / fps_base``, e.g. 29.97)."""
    return float(scene.render.fps) / float(scene.render.fps_base)


# ----------------------------------------------------------------------------------------------------
# Version-robust F-curve access
# ----------------------------------------------------------------------------------------------------


def is_slotted(action: bpy.types.Action) -> bool:
    """True when this Blender stores F-curves in layers/strips/channelbags (4.4+).

    Feature test on the API shape rather than the version: 4.4 introduced ``slots.new(id_type,
    name)``; 4.3 had an experimental ``slots.new(for_id)`` that we must not use; 4.2 has no slots.
    """
    if not (hasattr(action, "layers") and hasattr(action, "slots")):
        return False
    fn = bpy.types.ActionSlots.bl_rna.functions.get("new")
    return fn is not None and "id_type" in fn.parameters.keys()


class FCurveSink:
    """Where new F-curves go: a slotted action's channelbag for one slot, or a legacy action.

    ``new(data_path, index, group)`` hides the difference (4.4/4.5 channelbags have no
    ``group_name`` argument; legacy actions spell it ``action_group``).
    """

    def __init__(self, action: bpy.types.Action, id_name: str) -> None:
        self.action = action
        self.slot = None
        self.written: set[tuple[str, int]] = set()  # (data path, index) of every curve made here
        self._groups: dict[str, Any] = {}
        if is_slotted(action):
            self.slot = action.slots.new(id_type="OBJECT", name=id_name)
            layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
            strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
            self.fcurves = strip.channelbag(self.slot, ensure=True).fcurves
            self._group_owner = strip.channelbag(self.slot)
        else:
            self.fcurves = action.fcurves
            self._group_owner = action

    def new(self, data_path: str, index: int, group: str) -> bpy.types.FCurve:
        """A new F-curve in ``group`` ("" = in no group)."""
        self.written.add((data_path, index))
        if self.slot is None:
            if not group:
                return self.fcurves.new(data_path, index=index)
            return self.fcurves.new(data_path, index=index, action_group=group)
        fc = self.fcurves.new(data_path, index=index)
        if not group:
            return fc
        grp = self._groups.get(group)
        if grp is None:
            grp = self._groups[group] = self._group_owner.groups.new(group)
        fc.group = grp
        return fc


def action_fcurves(action: bpy.types.Action, slot: Any = None) -> list[bpy.types.FCurve]:
    """All F-curves of an action (of one slot, if given), on any supported Blender version."""
    if not is_slotted(action):
        return list(action.fcurves)
    out = []
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                if slot is None or bag.slot_handle == slot.handle:
                    out.extend(bag.fcurves)
    return out


def replaced_curves(obj: bpy.types.Object) -> tuple[Any, list[bpy.types.FCurve]]:
    """(the Action ``obj`` plays now, its F-curves for ``obj``'s slot); (None, []) without one."""
    ad = obj.animation_data
    old = ad.action if ad is not None else None
    if old is None:
        return None, []
    slot = getattr(ad, "action_slot", None)
    if is_slotted(old) and slot is None:
        return old, []  # a slotted action without a slot animates nothing
    return old, action_fcurves(old, slot)


def source_curves(obj: bpy.types.Object, action: bpy.types.Action) -> list[bpy.types.FCurve]:
    """``action``'s F-curves for ``obj`` (the slot it plays, else :func:`object_slot`), whether or not it plays it."""
    ad = obj.animation_data
    if ad is not None and ad.action == action:
        return replaced_curves(obj)[1]
    if not is_slotted(action):
        return action_fcurves(action)
    slot = object_slot(action, obj)
    return [] if slot is None else action_fcurves(action, slot)


def slot_frame_range(action: bpy.types.Action, slot: Any = None) -> tuple[float, float]:
    """The frames of ``action`` that ``slot`` keys: a slotted action shared by several objects spans all of
    theirs, so sampling one object over ``action.frame_range`` held its last pose through the others' frames.

    A manual frame range (``use_frame_range``) is the animator's choice and wins.
    """
    if slot is None or action.use_frame_range or not is_slotted(action):
        return tuple(action.frame_range)
    ranges = [tuple(fc.range()) for fc in action_fcurves(action, slot) if len(fc.keyframe_points)]
    if not ranges:
        return tuple(action.frame_range)
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def keys_start(action: bpy.types.Action) -> int:
    """The frame a SALAD result's keys start on: where a result made again from its recipe (edit, re-roll, part
    regeneration) is placed, so its keys land on the parent's.

    The frame most of its curves start on: SALAD keys every channel it writes from the clip's first frame (rest
    keys and kept channels start there too), so neither a Manual Frame Range nor a key the animator added before
    the clip on a few curves moves it (``frame_range[0]`` did: every key of the result shifted by the trim).
    """
    starts = Counter(int(round(fc.range()[0])) for fc in action_fcurves(action) if len(fc.keyframe_points))
    if not starts:
        return int(round(action.curve_frame_range[0]))
    return max(starts.items(), key=lambda kv: (kv[1], -kv[0]))[0]  # ties: the earlier frame


def _write_curve(fc: bpy.types.FCurve, frames: np.ndarray, values: np.ndarray) -> None:
    """Bulk-write keys: one ``add`` and ``foreach_set`` calls, linear interpolation."""
    n = len(frames)
    kp = fc.keyframe_points
    kp.add(n)
    co = np.empty((n, 2), dtype=np.float32)
    co[:, 0] = frames
    co[:, 1] = values
    kp.foreach_set("co", co.ravel())
    # Interpolation is an enum; foreach_set takes its integer value (LINEAR == 1 since 2.5x).
    kp.foreach_set("interpolation", np.ones(n, dtype=np.int32))
    fc.update()


def assign_action(obj: bpy.types.Object, action: bpy.types.Action, slot: Any = None) -> None:
    """Make ``action`` (and its slot) the object's active action; protect the one it replaces."""
    ad = obj.animation_data_create()
    old = ad.action
    if old is not None and old != action and not old.use_fake_user:
        old.use_fake_user = True
    ad.action = action
    if slot is not None and hasattr(ad, "action_slot"):
        ad.action_slot = slot


def full_strength(obj: bpy.types.Object) -> str:
    """Give the active action of ``obj`` Replace blending at influence 1 (Blender's defaults); what it had, if not.

    Why: over NLA strips, a new result that took over an influence of 0.3 (or Add) played 30 % of the motion
    (or on top of the strips): a new whole-body motion looked broken. Without strips Blender ignores both."""
    ad = obj.animation_data
    blend, influence = ad.action_blend_type, float(ad.action_influence)
    ad.action_blend_type, ad.action_influence = "REPLACE", 1.0
    was = ([f"influence {influence:.2f}"] if abs(influence - 1.0) > 1e-6 else []) + \
        ([f"blend mode {ad.bl_rna.properties['action_blend_type'].enum_items[blend].name}"]
         if blend != "REPLACE" else [])
    return " and ".join(was)


ROTATION_PATHS = {"QUATERNION": ("rotation_quaternion", 4), "AXIS_ANGLE": ("rotation_axis_angle", 4)}


def rotation_channels(quats: np.ndarray, mode: str) -> tuple[str, np.ndarray]:
    """Quaternions [T, 4] (w, x, y, z, sign-continuous) as the F-curve values of a bone in ``mode``.

    Why: a bone keeps the rotation mode the animator chose; quaternion keys on an Euler bone would do
    nothing. Euler angles (any order) stay continuous over time (no 360 degree flips between keys);
    axis-angle is (angle, x, y, z) with the axis kept when the angle is zero.
    """
    quats = np.asarray(quats, dtype=np.float64)
    if mode == "QUATERNION":
        return "rotation_quaternion", quats
    if mode == "AXIS_ANGLE":
        out = np.empty_like(quats)
        axis = np.array([0.0, 1.0, 0.0])  # Blender's default axis
        for t, q in enumerate(quats):
            s = float(np.linalg.norm(q[1:]))
            if s > 1e-9:
                axis = q[1:] / s
            out[t, 0] = 2.0 * np.arctan2(s, q[0]) if s > 1e-9 else 0.0
            out[t, 1:] = axis
        return "rotation_axis_angle", out
    from mathutils import Quaternion

    out = np.empty((len(quats), 3))
    prev = None
    for t, q in enumerate(quats):
        e = Quaternion(q).to_euler(mode) if prev is None else Quaternion(q).to_euler(mode, prev)
        out[t] = e
        prev = e
    return "rotation_euler", out


def rest_channels(mode: str) -> tuple[str, tuple[float, ...]]:
    """A bone's rest rotation in its rotation mode (path, values)."""
    if mode == "QUATERNION":
        return "rotation_quaternion", (1.0, 0.0, 0.0, 0.0)
    if mode == "AXIS_ANGLE":
        return "rotation_axis_angle", (0.0, 0.0, 1.0, 0.0)
    return "rotation_euler", (0.0, 0.0, 0.0)


def object_slot(action: bpy.types.Action, obj: bpy.types.Object) -> Any:
    """The slot of a slotted action that animates ``obj`` (by name, else the first object slot); None before 4.4."""
    if not is_slotted(action):
        return None
    slots = [s for s in action.slots if getattr(s, "target_id_type", "OBJECT") == "OBJECT"]
    named = [s for s in slots if getattr(s, "name_display", "") == obj.name]
    return (named or slots or [None])[0]


def push_to_nla(obj: bpy.types.Object) -> bpy.types.NlaStrip:
    """Move the object's active action into a new NLA track, like Blender's Push Down (no active action after)."""
    ad = obj.animation_data
    if ad is None or ad.action is None:
        raise ValueError(f"{obj.name!r} plays no action to push to the NLA")
    act = ad.action
    slot = getattr(ad, "action_slot", None)
    track = ad.nla_tracks.new()
    track.name = act.name
    strip = track.strips.new(act.name, int(round(act.frame_range[0])), act)
    if slot is not None and hasattr(strip, "action_slot"):
        strip.action_slot = slot
    ad.action = None
    return strip


def write_action(
    obj: bpy.types.Object,
    result: rt.RetargetResult,
    *,
    name: str,
    start_frame: int = 1,
    metadata: dict[str, Any] | None = None,
    assign: bool = True,
    rest_keys: Sequence[tuple[str, str, Sequence[float]]] = (),
    cyclic: bool = False,
    keep_others: bool = True,
    held: Collection[str] = (),
    keep_from: bpy.types.Action | None = None,
    handover: kept_channels.Handover | None = None,
) -> bpy.types.Action:
    """Create a new Action with ``result``'s channels keyed from ``start_frame``, one key per frame.

    Writes every mapped bone's rotation in that bone's own rotation mode (quaternion, Euler of any
    order, axis-angle; the pose bones are not changed) and ``location`` of the root bone.
    ``rest_keys`` (bone, property, rest values), from :func:`stale_pose_channels`, get one key each, so
    a stale pose cannot offset the motion and the user's pose is left alone. Does not
    resample: ``result`` must already be at the scene's fps. ``cyclic``: ``result`` is a loop
    (:func:`loops.make_cyclic`); its curves get a Cycles modifier (the root's location: Repeat with
    Offset, so the travel goes on). ``keep_others`` (with ``assign``): the Action it replaces keeps
    playing on the channels ``result`` does not drive (:mod:`kept_channels`; no rest key over them) except
    the transforms of the ``held`` bones (:func:`held_bones`). ``keep_from``: keep those channels of this Action
    instead (the one a shot was made from, e.g. an in-between's A), whatever the rig plays when the result lands;
    ``handover``: from its frame on, those of another Action (an in-between's B, :func:`kept_channels.copy_joined`).
    On failure nothing is left behind.
    """
    old, old_curves = replaced_curves(obj) if assign else (None, [])
    if assign and keep_from is not None:
        old, old_curves = keep_from, source_curves(obj, keep_from)
    then = handover if assign and handover is not None and handover.action is not None else None
    action = bpy.data.actions.new(name)
    try:
        action.use_fake_user = True
        if "id_root" in action.bl_rna.properties and not is_slotted(action):
            action.id_root = "OBJECT"
        sink = FCurveSink(action, obj.name)
        frames = start_frame + np.arange(result.num_frames, dtype=np.float64)
        esc = bpy.utils.escape_identifier
        for k, bone in enumerate(result.bone_names):
            prop, values = rotation_channels(result.quats[:, k], obj.pose.bones[bone].rotation_mode)
            for i in range(values.shape[1]):
                fc = sink.new(f'pose.bones["{esc(bone)}"].{prop}', i, bone)
                _write_curve(fc, frames, values[:, i])
                if cyclic:
                    fc.modifiers.new("CYCLES")
        path = f'pose.bones["{esc(result.root_bone)}"].location'
        for i in range(3):
            fc = sink.new(path, i, result.root_bone)
            _write_curve(fc, frames, result.root_location[:, i])
            if cyclic:
                mod = fc.modifiers.new("CYCLES")
                mod.mode_before = mod.mode_after = "REPEAT_OFFSET"
        for bone, (quats, loc) in result.ik_keys.items():  # a control rig's IK controls (Rigify)
            prop, values = rotation_channels(quats, obj.pose.bones[bone].rotation_mode)
            curves = [(f'pose.bones["{esc(bone)}"].{prop}', i, values[:, i], "REPEAT") for i in range(values.shape[1])]
            curves += [(f'pose.bones["{esc(bone)}"].location', i, loc[:, i], "REPEAT_OFFSET") for i in range(3)]
            for path, i, vals, mode in curves:
                fc = sink.new(path, i, bone)
                _write_curve(fc, frames, vals)
                if cyclic:
                    mod = fc.modifiers.new("CYCLES")
                    mod.mode_before = mod.mode_after = mode
        for bone, prop, value in result.switches:  # a control rig's switches (Rigify: limbs to FK)
            if bone in obj.pose.bones and prop in obj.pose.bones[bone].keys():
                path = f'pose.bones["{esc(bone)}"]["{esc(prop)}"]'
                _write_curve(sink.new(path, 0, bone), frames[:1], np.array([value]))
        driven = {kept_channels.channel(*c) for c in sink.written}
        kept, transforms, held_keyed = kept_channels.split(old_curves, driven, held)
        kept_b, transforms_b, held_b = kept_channels.split(source_curves(obj, then.action), driven, held) \
            if then is not None else ([], [], [])
        kept, kept_b = (kept, kept_b) if keep_others else ([], [])
        user_keyed = {(fc.data_path, fc.array_index) for fc in kept + kept_b}
        for bone, prop, rest in rest_keys:
            for i, v in enumerate(rest):
                path = f'pose.bones["{esc(bone)}"].{prop}'
                if (path, i) not in user_keyed:  # the user's own keys there play on instead
                    _write_curve(sink.new(path, i, bone), frames[:1], np.array([v]))
        b_curves = {(fc.data_path, fc.array_index): fc for fc in kept_b}
        for fc in kept:
            group = fc.group.name if fc.group is not None else ""
            dst, b = sink.new(fc.data_path, fc.array_index, group), b_curves.pop((fc.data_path, fc.array_index), None)
            if b is None:  # A's alone: it plays on as A's curve goes on (held, cycled...)
                kept_channels.copy_trimmed(fc, dst, frames[0], frames[-1])
            else:
                kept_channels.copy_joined(fc, b, dst, (frames[0], frames[-1]), then.a_end, then.b_start, then.offset)
        for fc in b_curves.values():  # B's alone: B's curve, as it plays before and from B's part
            group = fc.group.name if fc.group is not None else ""
            kept_channels.copy_trimmed(fc, sink.new(fc.data_path, fc.array_index, group), frames[0], frames[-1],
                                       then.offset)
        for key, value in (metadata or {}).items():
            action[key] = value
        if assign:
            assign_action(obj, action, sink.slot)
            layered = full_strength(obj)
    except BaseException:
        bpy.data.actions.remove(action)
        raise
    if assign and layered:
        warnings.warn(f"'{obj.name}' played its action with {layered}; the new one plays with Replace at influence "
                      "1 (set them again in the NLA editor's sidebar to layer it)", ResultWarning, stacklevel=2)
    if transforms or held_keyed:
        warnings.warn(kept_channels.transform_warning(old.name, transforms, held_keyed), ResultWarning, stacklevel=2)
    if transforms_b or held_b:
        warnings.warn(kept_channels.transform_warning(then.action.name, transforms_b, held_b), ResultWarning,
                      stacklevel=2)
    return action


# ----------------------------------------------------------------------------------------------------
# End to end
# ----------------------------------------------------------------------------------------------------


def prepare_retarget(
    arm_obj: bpy.types.Object,
    joints: np.ndarray,
    *,
    bone_map: str | dict[str, str] | None = None,
    fps: float | None = None,
    contacts: np.ndarray | None = None,
    placement: rt.Placement | None = None,
    cyclic_blend: int = 0,
) -> rt.RetargetResult:
    """Validate the rig and compute the keyframe values, touching no Blender data.

    ``bone_map``: preset name ("smpl22", "mixamo", "rigify_control", "rigify"), a custom {joint: bone}
    dict, or None to auto-detect. ``cyclic_blend`` > 0 makes a seamless loop with that many frames of
    cross-fade (:mod:`loops`). Raises :class:`~salad_blender.rigs.RigError` for a rig that cannot take
    the motion (missing bones, mirrored sides) and ValueError for malformed joints or a loop too short.
    """
    if arm_obj is None or arm_obj.type != "ARMATURE":
        raise rigs.RigError(f"not an armature object: {getattr(arm_obj, 'name', arm_obj)!r}")
    if arm_obj.mode == "EDIT":
        raise rigs.RigError(f"{arm_obj.name!r} is in Edit Mode; leave it so its bones are up to date")
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (smpl22.NUM_JOINTS, 3) or len(joints) < 2:
        raise ValueError(f"expected joints of shape [T >= 2, 22, 3], got {list(joints.shape)}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("joint positions contain NaN or infinity")
    rig = rig_rest_from_object(arm_obj)
    name, mapping = rigs.resolve_bone_map(rig.bone_names, bone_map)
    rigs.check_sides(rig, mapping)
    if contacts is not None:
        joints = rt.pin_contacts(joints, contacts)
    if name == rigify.RIGIFY_CONTROL:
        result = rigify.retarget_control_rig(joints, rig, placement=placement, fps=smpl22.FPS)
        result.switches = list(rigify.SWITCHES)
        result.rest_bones = rigify.rest_bones(rig.bone_names)
    else:
        result = rt.retarget(joints, rig, mapping, placement=placement, fps=smpl22.FPS)
    if fps is not None:
        result = rt.resample(result, fps)
    if cyclic_blend:
        up_armature = np.linalg.inv(rig.world)[:3, :3] @ np.array([0.0, 0.0, 1.0])
        up_local = rig.rest[rig.index[result.root_bone], :3, :3].T @ up_armature
        result = loops.make_cyclic(result, cyclic_blend, up_local)
    if name == rigify.RIGIFY_CONTROL:  # IK controls last: they follow the final (resampled, looped) FK keys
        limbs = rigify_ik.find_limbs(rig.bone_names)
        local = {b.name: b.use_local_location for b in arm_obj.data.bones}
        result.ik_keys = rigify_ik.ik_keys(rig, result, limbs, local)
        result.switches = list(rigify.SWITCHES) + rigify_ik.switches(limbs)
        result.rest_bones = rigify.rest_bones(rig.bone_names) + rigify_ik.rest_bones(rig.bone_names)
    return result


def keep_other_channels(scene: bpy.types.Scene, asked: bool | None) -> bool:
    """Whether a result keeps the replaced Action's other channels: ``asked``, else the scene's setting."""
    if asked is not None:
        return bool(asked)
    return bool(getattr(getattr(scene, "salad", None), "keep_other_channels", True))


def held_bones(arm_obj: bpy.types.Object, result: rt.RetargetResult) -> set[str]:
    """Bones the motion needs at rest but does not key: its bones' parents (a Mixamo root, a twist bone) and a
    control rig's rest bones (Rigify's root, torso, tweaks, IK foot roll). Their transform carries the body, so
    a replaced Action's keys there are not kept (they would move it twice, like the rig object's own)."""
    out = {b for b in result.rest_bones if b in arm_obj.pose.bones}
    for name in result.bone_names:
        b = arm_obj.data.bones[name].parent
        while b is not None:
            out.add(b.name)
            b = b.parent
    return out - set(result.bone_names) - set(result.ik_keys)


def stale_pose_channels(arm_obj: bpy.types.Object, result: rt.RetargetResult) -> list[tuple[str, str, tuple]]:
    """Channels the motion needs at rest but the current pose has moved: (bone, property, rest values).

    The retargeter assumes unkeyed ancestors (a Rigify root, twist bones...) at rest and keyed bones
    without extra location or scale; a stale manual pose there would offset the whole motion. Keying
    those channels at rest in the new action (instead of resetting the pose) leaves the user's pose
    and rotation modes alone and travels with the action.
    """
    keyed = set(result.bone_names)
    ik_keyed = set(result.ik_keys)  # rotation and location keyed; a stale scale (a foot_ik) scaled the limb's end
    todo = keyed | ik_keyed | held_bones(arm_obj, result)
    out = []
    for name in sorted(todo):
        pb = arm_obj.pose.bones[name]
        rot_prop, rot_rest = rest_channels(pb.rotation_mode)
        chans = [("scale", (1.0, 1.0, 1.0))]
        if name not in ik_keyed:
            if name != result.root_bone:
                chans.append(("location", (0.0, 0.0, 0.0)))
            if name not in keyed:
                chans.append((rot_prop, rot_rest))
        for prop, rest in chans:
            now = tuple(getattr(pb, prop))
            if rot_prop == "rotation_axis_angle" and prop == rot_prop and abs(now[0]) < 1e-6:
                continue  # any axis with a zero angle is the rest rotation
            if max(abs(a - b) for a, b in zip(now, rest, strict=True)) > 1e-6:
                out.append((name, prop, rest))
    return out


def apply_motion(
    arm_obj: bpy.types.Object,
    joints: np.ndarray,
    *,
    prompt: str,
    seed: int = 0,
    model: str = "",
    guidance: float = 0.0,
    steps: int = 0,
    edits: Sequence[Any] = (),
    bone_map: str | dict[str, str] | None = None,
    scene: bpy.types.Scene | None = None,
    start_frame: int | None = None,
    frame_range: str = "set",
    contacts: np.ndarray | None = None,
    placement: rt.Placement | None = None,
    name: str | None = None,
    meta: dict[str, Any] | None = None,
    cyclic_blend: int = 0,
    max_frames: int | None = None,
    keep_others: bool | None = None,
    keep_from: bpy.types.Action | None = None,
    handover: kept_channels.Handover | None = None,
) -> bpy.types.Action:
    """Retarget a generated motion (model space, 20 fps, [T, 22, 3]) onto ``arm_obj`` as a new Action.

    The result job of a generation calls this. Keys start at ``start_frame`` (default the scene's
    start) at the scene's fps. ``frame_range``: "set" (scene range = the clip), "extend" (only grow
    the end), or "keep". ``contacts`` [T, 4] (l_ankle, l_foot, r_ankle, r_foot) pins planted feet.
    ``name``: what the action is named after (default the prompt; edits name it after the edit).
    ``meta``: further :func:`metadata.make_metadata` fields (rig, sampler, parent ...).
    ``cyclic_blend`` > 0: a seamless loop (Make Cyclic) with that many scene frames of cross-fade.
    ``max_frames``: at most this many keys (an edited real clip: its scene frames; the 20 fps result's
    last pose may lie up to one model frame past the clip's end, which would key one frame too many).
    ``keep_others``: copy the replaced Action's channels the motion does not drive (None: the scene's
    *Keep Other Channels*, on when the add-on's settings are not registered); ``keep_from``: of this Action
    (the source of a shot) rather than the replaced one, and ``handover``'s Action's from its frame on.
    Everything is validated and computed before the first Blender datum is created, so an error
    leaves the scene unchanged.
    """
    scene = scene or bpy.context.scene
    if frame_range not in ("set", "extend", "keep"):
        raise ValueError(f"frame_range must be 'set', 'extend' or 'keep', not {frame_range!r}")
    ad = arm_obj.animation_data if arm_obj is not None else None
    if ad is not None and ad.use_tweak_mode:
        raise rigs.RigError(f"{arm_obj.name!r} is in NLA tweak mode; leave it before generating")
    result = prepare_retarget(arm_obj, joints, bone_map=bone_map, fps=scene_fps(scene),
                              contacts=contacts, placement=placement, cyclic_blend=cyclic_blend)
    if max_frames is not None:
        result = result.cropped(max_frames)
    start = int(scene.frame_start if start_frame is None else start_frame)
    props = make_metadata(prompt=prompt, seed=seed, frames=len(joints), model=model, guidance=guidance,
                          steps=steps, edits=edits, cyclic=cyclic_blend or None, **(meta or {}))
    action = write_action(arm_obj, result, name=action_name(prompt if name is None else name), start_frame=start,
                          metadata=props, rest_keys=stale_pose_channels(arm_obj, result),
                          cyclic=bool(cyclic_blend), keep_others=keep_other_channels(scene, keep_others),
                          held=held_bones(arm_obj, result), keep_from=keep_from, handover=handover)
    end = start + result.num_frames - 1
    if frame_range == "set":
        scene.frame_start, scene.frame_end = start, end
    elif frame_range == "extend":
        scene.frame_end = max(scene.frame_end, end)
    return action
