"""The apply steps' Blender data: a worker result becomes a new Action (and our body when asked).

Runs on the main thread inside :meth:`motion_job.MotionJob.poll`; the only code of a job that creates
Blender data. A failure half-way removes what it created, so a failed job leaves the scene as it was.
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np

from . import actions, armature, retarget, rigs
from . import retarget as rt
from .inputs import JobError, Target


def scene_named(name: str, ref: bpy.types.Scene | None = None) -> bpy.types.Scene:
    """The scene a job was started in (``ref``, even renamed meanwhile; else by name; the current one when
    unnamed), or why it is gone."""
    scene = find_again(ref, name, bpy.data.scenes) if name else bpy.context.scene
    if scene is None:
        raise JobError(f"The scene '{name}' was deleted while the motion was generated; nothing was changed.")
    return scene


def find_again(ref: Any, name: str, ids: Any) -> Any:
    """The ID a job started on, when its result lands: ``ref`` itself if it is still in ``ids`` (the user may have
    renamed it meanwhile: a name lookup lost the result), else the one named ``name`` (an undo or a deletion
    invalidates references; None when it is gone)."""
    try:
        if ref is not None and ids.get(ref.name) == ref:
            return ref
    except ReferenceError:
        pass
    return ids.get(name)


def on_this(obj: bpy.types.Object) -> dict[str, Any]:
    """Target fields of a result for ``obj`` in the current scene: names, and the IDs themselves (renames)."""
    scene = bpy.context.scene
    return {"armature": obj.name, "armature_ref": obj, "scene": scene.name, "scene_ref": scene}


def remove_object_tree(obj: bpy.types.Object) -> None:
    """Remove an object we created, its children and their now unused data."""
    for child in list(obj.children):
        remove_object_tree(child)
    data = obj.data
    bpy.data.objects.remove(obj)
    if data is not None and data.users == 0:
        if isinstance(data, bpy.types.Armature):
            bpy.data.armatures.remove(data)
        elif isinstance(data, bpy.types.Mesh):
            bpy.data.meshes.remove(data)


def place_motion(result: dict, target: Target, *, prompt: str, meta: dict, model: str, name: str,
                 edits: list, extra: dict[str, Any], placement: rt.Placement | None = None,
                 parent_action: bpy.types.Action | None = None) -> bpy.types.Action:
    """Write a worker result into a new Action on the target (creating our body if asked).

    ``meta`` is the worker's result metadata; ``extra`` further :func:`metadata.make_metadata` fields;
    ``placement`` overrides the automatic one (a re-rolled shot keeps its parent's scale); ``parent_action``: the
    Action the result is a version of, on the same frames (edit, re-roll, part regeneration): the result keeps its
    Manual Frame Range and (*Keep Other Channels*) its other channels, whatever the armature plays meanwhile.
    """
    joints = np.asarray(result["joints"], dtype=np.float64)
    if target.in_place:
        joints = retarget.without_root_travel(joints)
    contacts = result.get("contacts") if target.pin_feet and not target.in_place else None
    scene = scene_named(target.scene, target.scene_ref)
    created = None
    if target.kind == "new":
        collection = bpy.data.collections.get(target.collection) if target.collection else None
        obj = created = new_body(target.name, joints, collection or scene.collection, target.location,
                                 units=units_per_metre(scene))
        rig: str | dict[str, str] = "smpl22"
    else:
        obj = find_again(target.armature_ref, target.armature, bpy.data.objects)
        if obj is None:
            raise JobError(f"The armature '{target.armature}' was deleted (or undone) while the motion was "
                           "generated; nothing was changed.")
        rig = target.rig
    others = [] if target.kind == "new" else others_found(target)
    made: list[bpy.types.Action] = []
    before = playing([obj, *(o for o, _ in others)]) if target.kind != "new" else []
    scene_range = scene.frame_start, scene.frame_end
    try:
        for o, o_rig, o_place in [(obj, rig, placement), *((o, o_rig, None) for o, o_rig in others)]:
            made.append(actions.apply_motion(
                o, joints, prompt=prompt, name=name, seed=int(meta.get("seed", 0)), model=model,
                guidance=float(meta.get("guidance", 0.0)), steps=int(meta.get("steps", 0)), edits=edits,
                bone_map=o_rig, scene=scene, start_frame=target.start_frame,
                contacts=None if contacts is None else np.asarray(contacts), frame_range=target.scene_range,
                placement=o_place, cyclic_blend=target.cyclic_blend, keep_from=parent_action if o == obj else None,
                meta={"scheduler": str(meta.get("scheduler", "ddim")), "model_name": str(meta.get("model", "")),
                      "rig": o_rig, "pin_feet": bool(target.pin_feet), "in_place": target.in_place,
                      "guided_steps": meta.get("guided_steps"), **extra}))
    except BaseException:
        undo_actions(made, before)
        scene.frame_start, scene.frame_end = scene_range
        if created is not None:
            remove_object_tree(created)
        raise
    for act in made:
        keep_manual_range(parent_action, act)
    action = made[0]
    if created is not None and target.select and may_take_selection():
        select_only(created)
    return action


def keep_manual_range(parent: bpy.types.Action | None, action: bpy.types.Action) -> None:
    """Give ``action`` the Manual Frame Range (and Cyclic Animation) of ``parent``, a version of it on the same
    frames: an animator who trimmed a clip to the part they play or loop had to trim every edit of it again, as
    Blender's own copy of an action keeps it."""
    if parent is None or not parent.use_frame_range:
        return
    action.use_frame_range = True
    action.frame_start, action.frame_end = parent.frame_start, parent.frame_end
    action.frame_start = parent.frame_start  # a start past the old end moved the end; the end may have moved it
    if hasattr(parent, "use_cyclic"):
        action.use_cyclic = parent.use_cyclic


def others_found(target: Target) -> list[tuple[bpy.types.Object, str | dict[str, str]]]:
    """The other armatures of 'All Selected' (each found again, even renamed meanwhile) and their rigs."""
    out = []
    for n in target.others:
        o = find_again(target.other_ref(n), n, bpy.data.objects)
        if o is None:
            raise JobError(f"The selected armature '{n}' was deleted (or undone) while the motion was generated; "
                           "nothing was changed.")
        out.append((o, target.other_rigs.get(n, target.rig)))
    return out


def playing(objs: list[bpy.types.Object]) -> list[tuple[bpy.types.Object, Any, Any, Any]]:
    """(armature, action, slot, (blend type, influence)) each armature plays now, to give back after a failed
    apply (a result sets Replace, 1.0: :func:`actions.full_strength`)."""
    out = []
    for o in objs:
        ad = getattr(o, "animation_data", None)
        out.append((o, *((ad.action, getattr(ad, "action_slot", None), (ad.action_blend_type, ad.action_influence))
                         if ad is not None else (None, None, None))))
    return out


def undo_actions(made: list[bpy.types.Action], before: list[tuple[bpy.types.Object, Any, Any, Any]]) -> None:
    """Remove the actions a half-done apply created; each armature gets back what it played, and how."""
    for obj, act, slot, how in before:
        ad = obj.animation_data
        if ad is not None and ad.action in made:
            ad.action = act
            if slot is not None and hasattr(ad, "action_slot"):
                ad.action_slot = slot
            if how is not None:
                ad.action_blend_type, ad.action_influence = how
    for act in made:
        bpy.data.actions.remove(act)


def units_per_metre(scene: bpy.types.Scene) -> float:
    """Blender units in one metre of the scene: 1, or 100 at unit scale 0.01 (a scene in centimetres)."""
    us = scene.unit_settings
    scale = float(us.scale_length) if us.system != "NONE" else 1.0
    return 1.0 / scale if scale > 0 else 1.0


def new_body(name: str, joints: np.ndarray, collection: bpy.types.Collection,
             location: tuple[float, float, float] = (0.0, 0.0, 0.0), *, units: float = 1.0) -> bpy.types.Object:
    """Our SMPL-22 body with the motion's proportions (exact FK), else with standard proportions.

    ``units``: the object's scale, so the body is human-sized in the scene's units (:func:`units_per_metre`);
    the retargeter reads it from the object like any scaled rig.

    A badly trained or random model can produce joints whose median proportions make no body (feet
    pointing backwards, a mirrored pelvis); the retargeter still maps their bone directions onto a
    standard body, which is better than refusing the motion.
    """
    obj = armature.create_smpl22_armature(name, joints, collection=collection, location=location)
    try:
        rigs.check_sides(armature.rig_rest_from_object(obj), rigs.SMPL22_MAP)
    except rigs.RigError:
        remove_object_tree(obj)
        obj = armature.create_smpl22_armature(name, None, collection=collection, location=location)
        obj["salad_standard_body"] = True
    obj.scale = (units, units, units)
    obj.matrix_world = obj.matrix_basis  # no parent: make the placement visible before the first redraw
    return obj


def may_take_selection() -> bool:
    """A new body may become the active object only while the user is in Object Mode (not posing a rig)."""
    active = getattr(bpy.context.view_layer.objects, "active", None)
    return active is None or active.mode == "OBJECT"


def select_only(obj: bpy.types.Object) -> None:
    """Make a new body the active, selected object (best effort: it may sit in a hidden layer).

    Only in the view layer that shows it: after the user switched scenes while the job ran, the selection of
    the scene they look at is theirs (it was cleared, then selecting the body there failed).
    """
    try:
        view_layer = bpy.context.view_layer
        if bpy.context.scene not in obj.users_scene:
            return
        for o in view_layer.objects:
            o.select_set(False)
        obj.select_set(True)
        view_layer.objects.active = obj
    except (RuntimeError, AttributeError, ReferenceError):
        pass
