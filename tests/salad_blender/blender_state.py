"""What add-on tests read back from Blender: the names in the file, an action's keys, posed joint positions.

A helper module (like fake_ui.py), imported by the tests that run in bpy.
"""

import bpy
import numpy as np

from salad_blender import actions


def snapshot() -> dict:
    """Everything a failed or cancelled job must leave as it was (and take nothing away from)."""
    scene = bpy.context.scene
    return {
        "objects": sorted(o.name for o in bpy.data.objects),
        "actions": sorted(a.name for a in bpy.data.actions),
        "armatures": sorted(a.name for a in bpy.data.armatures),
        "meshes": sorted(m.name for m in bpy.data.meshes),
        "images": sorted(i.name for i in bpy.data.images),
        "assigned": {o.name: (o.animation_data.action.name if o.animation_data and o.animation_data.action
                              else None) for o in bpy.data.objects},
        "range": (scene.frame_start, scene.frame_end),
        "frame": scene.frame_current,
    }


def key_values(action) -> dict:  # noqa: ANN001 - a bpy Action
    """Every key of an action, by (data path, index): equal dicts mean the same animation."""
    return {(fc.data_path, fc.array_index): [tuple(k.co) for k in fc.keyframe_points]
            for fc in actions.action_fcurves(action)}


def world_heads(obj, bone_names, frame) -> np.ndarray:  # noqa: ANN001 - a bpy Object
    """Posed bone heads [n, 3] in world space at a scene frame, through the evaluated depsgraph."""
    bpy.context.scene.frame_set(frame)
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mw = np.array(ev.matrix_world)
    heads = np.array([np.array(ev.pose.bones[n].head) for n in bone_names])
    return heads @ mw[:3, :3].T + mw[:3, 3]
