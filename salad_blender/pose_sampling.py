"""Sample an armature's evaluated pose into SMPL-22 joints (the bpy half of real-motion editing).

The numpy half (resampling, scale, checks, placing the result back) is :mod:`real_motion`.
"""

from __future__ import annotations

import bpy
import numpy as np

from . import actions, armature, real_motion, smpl22
from .inputs import JobError


def rig_to_metres(obj: bpy.types.Object, mapping: dict[str, str]) -> float:
    """World units → metres for the model (see :func:`real_motion.to_metres`)."""
    return real_motion.to_metres(armature.rig_rest_from_object(obj).joint_heads_world(mapping), obj.name)


def sample_world_joints(obj: bpy.types.Object, mapping: dict[str, str], frames: range,
                        scene: bpy.types.Scene | None = None) -> np.ndarray:
    """World-space heads [F, 22, 3] (Blender space) of the mapped bones at each frame (evaluated pose).

    Unmapped joints are filled from their nearest mapped ancestor. The scene's current frame is
    restored afterwards.
    """
    scene = scene or bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    if not any(i.original == obj for i in depsgraph.ids if isinstance(i, bpy.types.Object)):
        # not evaluated: every frame would sample one frozen pose (a rig disabled in viewports that no mesh needs)
        raise JobError(f"'{obj.name}' is disabled in viewports, so Blender does not play its animation: turn on "
                       "Object Properties > Visibility > Show in Viewports (or include its collection) first.")
    bones = real_motion.joint_bones(mapping)
    out = np.empty((len(frames), smpl22.NUM_JOINTS, 3))
    old_frame, old_sub = scene.frame_current, scene.frame_subframe
    try:
        for i, f in enumerate(frames):
            scene.frame_set(int(f))
            ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
            mw = np.array(ev.matrix_world)
            pb = ev.pose.bones
            heads = np.array([tuple(pb[b].head) for b in bones])
            out[i] = heads @ mw[:3, :3].T + mw[:3, 3]
    finally:
        scene.frame_set(old_frame, subframe=old_sub)
    return out


def sample_motion(obj: bpy.types.Object, mapping: dict[str, str], frame_start: int, frame_end: int,
                  scene: bpy.types.Scene | None = None) -> real_motion.SampledMotion:
    """Sample an armature's animation over [frame_start, frame_end] into model space at 20 fps."""
    scene = scene or bpy.context.scene
    world = sample_world_joints(obj, mapping, range(int(frame_start), int(frame_end) + 1), scene)
    to_m = rig_to_metres(obj, mapping)
    fps = actions.scene_fps(scene)
    return real_motion.SampledMotion(real_motion.to_model(world, fps, to_m), to_m, world, int(frame_start), fps)
