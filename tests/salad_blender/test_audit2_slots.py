"""Shots on an armature that plays one slot of a Blender 5 slotted action shared with another armature (audit2)."""

import numpy as np
import pytest
from needs import require_module

bpy = require_module("bpy")

from shot_fakes import FakePool, ShotWorker  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, armature, jobs, shot_jobs  # noqa: E402

CONFIG = jobs.WorkerConfig(python="python", model="demo")


def _shared_action() -> tuple[bpy.types.Object, bpy.types.Action, np.ndarray]:
    """'Other' plays slot 1 of an action (a 150-frame walk); 'Mocap' plays slot 2 of it (a 96-frame walk)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0
    long_walk, walk = synthetic_walk(150, turn_deg=30.0), synthetic_walk(96)
    other = armature.create_smpl22_armature("Other", long_walk, with_mesh=False)
    shared = actions.apply_motion(other, long_walk, prompt="other", bone_map="smpl22", start_frame=1)
    mine = armature.create_smpl22_armature("Mocap", walk, with_mesh=False)
    own = actions.apply_motion(mine, walk, prompt="mine", bone_map="smpl22", start_frame=1)
    slot = shared.slots.new(id_type="OBJECT", name="Mocap")
    bag = shared.layers[0].strips[0].channelbag(slot, ensure=True)
    for fc in actions.action_fcurves(own):
        co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        new = bag.fcurves.new(fc.data_path, index=fc.array_index)
        new.keyframe_points.add(len(fc.keyframe_points))
        new.keyframe_points.foreach_set("co", co)
        new.update()
    for key in [k for k in shared.keys() if k.startswith("salad_")]:
        del shared[key]
    shared.name = "Shared"
    actions.assign_action(mine, shared, slot)
    bpy.data.actions.remove(own)
    bpy.context.view_layer.update()
    return mine, shared, walk


@pytest.mark.skipif(not hasattr(bpy.types, "ActionSlot"), reason="optional: slotted actions are Blender 4.4+")
def test_continue_samples_the_slot_the_armature_plays():
    """The source is the playing slot's motion over that slot's own frames (96), not the action's whole range
    (150, set by the other armature's slot), which held the last pose for 54 frames before the continuation."""
    obj, shared, walk = _shared_action()
    assert obj.animation_data.action_slot.identifier == "OBMocap"
    assert tuple(shared.frame_range) == (1.0, 150.0)
    pool = FakePool(ShotWorker(steps=2))
    job = shot_jobs.start_continue(CONFIG, obj, "a person sits", 2.0, sampling=jobs.Sampling(seed=1, steps=2),
                                   pin_feet=False, pool=pool)
    sent = job._op["joints"]
    assert sent.shape == walk.shape
    assert np.abs(sent - walk).max() < 1e-3
    assert obj.animation_data.action == shared and obj.animation_data.action_slot.identifier == "OBMocap"
    job.wait(timeout=30)
    assert job.state == "done", job.message
    new = obj.animation_data.action
    assert new != shared and actions.action_fcurves(shared)  # the shared action is kept


@pytest.mark.skipif(not hasattr(bpy.types, "ActionSlot"), reason="optional: slotted actions are Blender 4.4+")
def test_edit_real_samples_the_slot_the_armature_plays():
    obj, shared, walk = _shared_action()
    pool = FakePool(ShotWorker(steps=2))
    job = jobs.start_edit_real(CONFIG, obj, "a person walks", mirror="all", pool=pool, steps=2, null_text_iters=0)
    assert job._op["joints"].shape == walk.shape and np.abs(job._op["joints"] - walk).max() < 1e-3
    job.cancel()
