"""An armature Blender does not evaluate cannot be sampled: say so before anything is sent.

audit9: a rig disabled in viewports (Object > Visibility > Show in Viewports off, the Outliner's monitor icon) that no
visible mesh deforms is left out of the depsgraph, so every frame sampled the same frozen pose: Continue, In-between,
Regenerate Parts and 'Edit selected animation with text' sent a motionless source and made a result from it, with
no word. (A rig hidden with the eye, or in a hidden collection, is still evaluated, and so is a disabled one whose
mesh it deforms: those work and are not refused.)
"""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from shot_fakes import FakePool, ShotWorker  # noqa: E402
from test_shot_jobs_scripted import CONFIG, FAST, keyed_body  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import jobs, shot_jobs  # noqa: E402


def starts(obj, pool):  # noqa: ANN001, ANN201 - every job that samples the armature's animation
    act = obj.animation_data.action
    return {
        "continue": lambda: shot_jobs.start_continue(CONFIG, obj, "a person sits down", 2.0, sampling=FAST, pool=pool),
        "inbetween": lambda: shot_jobs.start_inbetween(CONFIG, obj, act, act, "a person turns", 1.0, sampling=FAST,
                                                       pool=pool),
        "parts": lambda: shot_jobs.start_regenerate_parts(CONFIG, obj, "a person waves", ["arms"], sampling=FAST,
                                                          pool=pool),
        "edit real": lambda: jobs.start_edit_real(CONFIG, obj, "a person walks", new_prompt="a person runs",
                                                  pool=pool),
    }


def test_a_rig_disabled_in_viewports_is_refused_before_the_worker():
    obj = keyed_body({"Walk": synthetic_walk(96)})
    obj.hide_viewport = True
    pool = FakePool(ShotWorker(steps=1))
    n = len(bpy.data.actions)
    for kind, start in starts(obj, pool).items():
        with pytest.raises(jobs.JobError, match="'Mocap' is disabled in viewports") as err:
            start()
        assert "Show in Viewports" in str(err.value), kind
    assert not pool.worker.ops and len(bpy.data.actions) == n


@pytest.mark.parametrize("how", ["eye", "hidden collection"])
def test_a_hidden_rig_is_still_sampled(how):
    walk = synthetic_walk(96)
    obj = keyed_body({"Walk": walk})
    if how == "eye":
        obj.hide_set(True)
    else:
        col = bpy.data.collections.new("Rigs")
        bpy.context.scene.collection.children.link(col)
        for c in list(obj.users_collection):
            c.objects.unlink(obj)
        col.objects.link(obj)
        bpy.context.view_layer.layer_collection.children["Rigs"].hide_viewport = True
    pool = FakePool(ShotWorker(steps=1))
    job = shot_jobs.start_continue(CONFIG, obj, "a person sits down", 2.0, sampling=FAST, pool=pool)
    sent = np.asarray(job._op["joints"])
    assert np.ptp(sent[:, 0, 2]) > 1.0  # the walk's travel reached the worker, not one pose
