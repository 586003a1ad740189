"""Sample an armature's evaluated pose into SMPL-22 joints (the bpy half of real-motion editing).

The numpy half (resampling, scale, checks, placing the result back) is :mod:`real_motion`.
"""

from __future__ import annotations

from collections.abc import Callable

import bpy
import numpy as np

from . import actions, armature, fk_sampling, real_motion, rigify, smpl22
from .inputs import JobError


def rig_to_metres(obj: bpy.types.Object, mapping: dict[str, str]) -> float:
    """World units → metres for the model (see :func:`real_motion.to_metres`)."""
    return real_motion.to_metres(armature.rig_rest_from_object(obj).joint_heads_world(mapping), obj.name)


def sample_world_joints(obj: bpy.types.Object, mapping: dict[str, str], frames: range,
                        scene: bpy.types.Scene | None = None, fast: bool = True) -> np.ndarray:
    """World-space heads [F, 22, 3] (Blender space) of the mapped bones at each frame (evaluated pose).

    Unmapped joints are filled from their nearest mapped ancestor. The scene's current frame is
    restored afterwards. ``fast``: a plainly keyed rig's heads come from its F-curves at once
    (:mod:`fk_sampling`, checked against Blender's evaluation at a few frames); any other rig, or
    ``fast=False``, is evaluated frame by frame (a scene update each; from :data:`PROGRESS_FRAMES` frames on, the
    mouse cursor shows the progress, as Blender's own blocking operators do: there is no event loop to cancel in).
    """
    scene = scene or bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    if not any(i.original == obj for i in depsgraph.ids if isinstance(i, bpy.types.Object)):
        # not evaluated: every frame would sample one frozen pose (a rig disabled in viewports that no mesh needs)
        raise JobError(f"'{obj.name}' is disabled in viewports, so Blender does not play its animation: turn on "
                       "Object Properties > Visibility > Show in Viewports (or include its collection) first.")
    bones = real_motion.joint_bones(mapping)

    def evaluated(f: int) -> np.ndarray:
        scene.frame_set(int(f))
        ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mw = np.array(ev.matrix_world)
        pb = ev.pose.bones
        heads = np.array([tuple(pb[b].head) for b in bones])
        return heads @ mw[:3, :3].T + mw[:3, 3]

    if mapping.get("pelvis") == rigify.ORG_MAP["pelvis"]:  # a Rigify rig: its spine starts below the hips
        rest = armature.rig_rest_from_object(obj).joint_heads_world(mapping)
        rest_heads = np.array([rest.get(j, rest["pelvis"]) for j in smpl22.JOINT_NAMES])
        return rigify.smpl_pelvis(_sample_heads(obj, bones, frames, scene, fast, evaluated), rest_heads)
    return _sample_heads(obj, bones, frames, scene, fast, evaluated)


def _sample_heads(obj: bpy.types.Object, bones: list[str], frames: range, scene: bpy.types.Scene, fast: bool,
                  evaluated: Callable[[int], np.ndarray]) -> np.ndarray:
    old_frame, old_sub = scene.frame_current, scene.frame_subframe
    try:
        if fast and len(frames) > fk_sampling.CHECK_FRAMES:
            out = fk_sampling.world_heads(obj, bones, frames, evaluated)
            if out is not None:
                return out
        out = np.empty((len(frames), smpl22.NUM_JOINTS, 3))
        wm = _window_manager() if len(frames) >= PROGRESS_FRAMES else None
        if wm is not None:  # Blender's convention for blocking work: the mouse cursor counts (Bake Action does)
            wm.progress_begin(0, len(frames))
        try:
            for i, f in enumerate(frames):
                out[i] = evaluated(f)
                if wm is not None and i % 25 == 0:
                    wm.progress_update(i)
        finally:
            if wm is not None:
                wm.progress_end()
    finally:
        scene.frame_set(old_frame, subframe=old_sub)
    return out


PROGRESS_FRAMES = 500  # frames sampled one by one (~0.5 s or more) from which the cursor shows the count


def _window_manager() -> bpy.types.WindowManager | None:
    return getattr(bpy.context, "window_manager", None)


def sample_motion(obj: bpy.types.Object, mapping: dict[str, str], frame_start: int, frame_end: int,
                  scene: bpy.types.Scene | None = None) -> real_motion.SampledMotion:
    """Sample an armature's animation over [frame_start, frame_end] into model space at 20 fps."""
    scene = scene or bpy.context.scene
    world = sample_world_joints(obj, mapping, range(int(frame_start), int(frame_end) + 1), scene)
    to_m = rig_to_metres(obj, mapping)
    fps = actions.scene_fps(scene)
    return real_motion.SampledMotion(real_motion.to_model(world, fps, to_m), to_m, world, int(frame_start), fps)
