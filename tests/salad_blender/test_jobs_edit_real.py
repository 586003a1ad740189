"""salad_blender.pose_sampling and jobs.start_edit_real: sampling an armature's pose into model
space, and the ``edit_real`` job end to end with the real worker + tiny random model (tests/conftest.py).

The tiny model's output is random, so the end-to-end test checks the wiring (request, new Action,
metadata, placement, key count, original untouched); sampling accuracy is checked against the clip.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from needs import require_module

bpy = require_module("bpy")

from blender_state import key_values, snapshot  # noqa: E402
from fake_ui import FakeLayout  # noqa: E402

from salad_blender import actions, armature, jobs, pose_sampling, real_motion, smpl22  # noqa: E402
from salad_blender import retarget as rt  # noqa: E402

BVH = Path(__file__).resolve().parents[1] / "data" / "dataset-2_raise-up-left-hand_active_020.bvh"
CAPTION = "a person raises the left hand"
FAST = dict(steps=4, null_text_iters=1)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """The real clip, model space (metres, Y up) at 20 fps, not canonicalised."""
    from salad_model.motion.bandai_rig import bvh_to_smpl22

    return bvh_to_smpl22(BVH.read_text(), fps=20.0)


def keyed_body(clip: np.ndarray, fps: int = 20, data_scale: float = 1.0, obj_scale: float = 1.0
               ) -> bpy.types.Object:
    """A fresh scene with an SMPL-22 armature playing the clip (a plain, non-SALAD action).

    ``data_scale``: bone lengths × this (100 = a centimetre FBX rig); ``obj_scale``: the object's scale.
    """
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    obj = armature.create_smpl22_armature("Mocap", clip * data_scale, with_mesh=False)
    if obj_scale != 1.0:
        obj.scale = (obj_scale, obj_scale, obj_scale)
        bpy.context.view_layer.update()
    act = actions.apply_motion(obj, clip, prompt="mocap", bone_map="smpl22", scene=scene, start_frame=1,
                               placement=rt.Placement(scale=data_scale * obj_scale))
    for key in [k for k in act.keys() if k.startswith("salad_")]:
        del act[key]  # a plain action, as an imported mocap clip would be
    act.name = "Mocap clip"
    return obj


# ------------------------------------------------------------------------------------------------
# Sampling


def test_sampling_matches_clip(clip):
    obj = keyed_body(clip)
    frame_before = bpy.context.scene.frame_current
    n = len(clip)
    s = pose_sampling.sample_motion(obj, jobs.check_rig(obj, "auto")[1], 1, n)
    assert s.to_metres == 1.0 and s.joints.shape == clip.shape
    assert np.abs(s.joints - clip).max() < 1e-3
    assert bpy.context.scene.frame_current == frame_before


def test_sampling_fbx_scale_at_30_fps(clip):
    """A centimetre rig with object scale 0.01 at 30 fps: metres at 20 fps (1 mm on shared instants)."""
    obj = keyed_body(clip, fps=30, data_scale=100.0, obj_scale=0.01)
    lo, hi = (int(round(v)) for v in obj.animation_data.action.frame_range)
    s = pose_sampling.sample_motion(obj, jobs.check_rig(obj, "auto")[1], lo, hi)
    assert s.to_metres == 1.0 and s.fps == 30.0
    m = min(len(s.joints), len(clip))
    assert abs(len(s.joints) - len(clip)) <= 1
    assert np.abs(s.joints[:m:2] - clip[:m:2]).max() < 1e-3  # instants that are keys at both rates
    assert np.abs(s.joints[:m] - clip[:m]).max() < 0.03  # in between: slerped keys vs. linear resampling


def test_sampling_rescales_a_tiny_rig(clip):
    """A rig 100× too small (no object scale to undo it) is scaled to a 0.9 m hip height."""
    obj = keyed_body(clip, data_scale=0.01)
    mapping = jobs.check_rig(obj, "auto")[1]
    s = pose_sampling.sample_motion(obj, mapping, 1, len(clip))
    rest = armature.rig_rest_from_object(obj).joint_heads_world(mapping)
    hip = rest["pelvis"][2] - min(p[2] for p in rest.values())
    assert s.to_metres == pytest.approx(real_motion.TARGET_HIP_HEIGHT / hip)
    assert np.abs(s.joints - clip * 0.01 * s.to_metres).max() < 1e-3


# ------------------------------------------------------------------------------------------------
# The job end to end


def test_edit_real_mirror_end_to_end(clip, config, pool):
    obj = keyed_body(clip)
    original = obj.animation_data.action
    before = key_values(original)
    names_before = set(bpy.data.actions.keys())
    job = jobs.start_edit_real(config, obj, CAPTION, mirror="all", pool=pool, **FAST)
    assert np.abs(job._op["joints"] - clip).max() < 1e-3  # what is sent = the clip at 20 fps
    job.wait(timeout=120)
    assert job.state == "done", job.message
    new = job.output
    assert new.name not in names_before and obj.animation_data.action == new
    assert key_values(original) == before and original.use_fake_user
    meta = actions.read_metadata(new)
    assert meta["salad_source_action"] == "Mocap clip"
    assert meta["salad_prompt"] == CAPTION
    assert meta["salad_edits"][0]["mirror"] == "all" and meta["salad_source"] == "inversion"
    scene = bpy.context.scene
    n_keys = scene.frame_end - scene.frame_start + 1
    for fc in actions.action_fcurves(new):
        assert len(fc.keyframe_points) == n_keys
    assert scene.frame_start == 1
    assert len(job.result["joints"]) == meta["salad_frames"]
    # placed where the original starts: the pelvis at frame 1 stands above the clip's first root XZ
    scene.frame_set(1)
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    pelvis = np.array(ev.matrix_world) @ np.append(np.array(ev.pose.bones["pelvis"].head), 1.0)
    start = smpl22.model_to_blender(clip[0, 0])
    assert np.linalg.norm(pelvis[:2] - start[:2]) < 0.05


@pytest.mark.parametrize("case", ["no_armature", "no_action", "empty_caption", "unmapped", "two_edits",
                                  "bad_word"])
def test_edit_real_errors_leave_scene_unchanged(clip, config, pool, case):
    obj = keyed_body(clip)
    kwargs: dict = dict(mirror="all")
    caption = CAPTION
    if case == "no_armature":
        obj = None
    elif case == "no_action":
        obj.animation_data.action = None
    elif case == "empty_caption":  # the exact mirror needs none (test_ui_scene.py); the paper's mirror does
        caption, kwargs["mirror_method"] = "   ", "attention"
    elif case == "unmapped":
        kwargs["rig"] = "mixamo"
    elif case == "two_edits":
        kwargs["new_prompt"] = "a person runs"
    elif case == "bad_word":
        kwargs = dict(word="jumps", scale=2.0)
    before = snapshot()
    with pytest.raises(jobs.JobError):
        jobs.start_edit_real(config, obj, caption, pool=pool, **kwargs, **FAST)
    assert snapshot() == before


def test_edit_real_worker_failure_and_cancel(clip, config, pool, tmp_path):
    obj = keyed_body(clip)
    before = snapshot()
    empty = tmp_path / "not_a_model"
    empty.mkdir()
    bad = jobs.WorkerConfig(config.python, str(empty), config.device, config.threads)
    job = jobs.start_edit_real(bad, obj, CAPTION, mirror="all", pool=pool, **FAST)
    job.wait(timeout=120)
    assert job.state == "failed" and "Cannot load the model" in job.message
    assert snapshot() == before
    job = jobs.start_edit_real(config, obj, CAPTION, mirror="all", pool=pool, **FAST)
    job.cancel()
    job.wait(timeout=30)
    assert job.state == "cancelled" and "nothing was changed" in job.message
    assert snapshot() == before


# ------------------------------------------------------------------------------------------------
# Operator and panel


@pytest.fixture(scope="session", autouse=True)
def _close_shared_worker():
    yield
    jobs.POOL.close()


def test_operator_and_panel(clip, tiny_model_dir):
    from types import SimpleNamespace

    import addon_utils

    from salad_blender import panels

    obj = keyed_body(clip)
    addon_utils.enable("salad_blender", default_set=True)
    try:
        bpy.context.preferences.use_preferences_save = False
        prefs = bpy.context.preferences.addons["salad_blender"].preferences
        prefs.python_path, prefs.model_source, prefs.model_folder = sys.executable, "FOLDER", str(tiny_model_dir)
        prefs.device, prefs.threads = "cpu", 1
        bpy.context.view_layer.objects.active = obj
        calls: list = []
        panels.SALAD_PT_edit_real.draw(SimpleNamespace(layout=FakeLayout(calls)), bpy.context)
        assert ("op", "salad.edit_real") in calls and ("label", "Mocap clip") in calls
        s = bpy.context.scene.salad
        s.real_edit = "PROMPT"  # the exact mirror (the default) needs no caption
        before = snapshot()
        with pytest.raises(RuntimeError, match="Describe the animation"):
            bpy.ops.salad.edit_real(blocking=True)  # no caption: refused, nothing changes
        assert snapshot() == before
        s.real_caption, s.real_edit, s.real_mirror, s.steps = CAPTION, "MIRROR", "lower", 4
        original = obj.animation_data.action
        jobs_before = key_values(original)
        assert bpy.ops.salad.edit_real(blocking=True) == {"FINISHED"}
        new = obj.animation_data.action
        assert new != original and new["salad_source_action"] == "Mocap clip"
        assert key_values(original) == jobs_before
    finally:
        addon_utils.disable("salad_blender", default_set=True)


def test_inversion_actions_refuse_seed_edits(clip, config, pool):
    """A result of edit_real has no seed recipe: the regenerating edits refuse it, edit_real accepts it."""
    obj = keyed_body(clip)
    act = obj.animation_data.action
    act["salad_prompt"], act["salad_source"] = CAPTION, "inversion"
    for k, v in actions.make_metadata(prompt=CAPTION, seed=0, frames=len(clip)).items():
        if k not in act.keys():
            act[k] = v
    before = snapshot()
    with pytest.raises(jobs.JobError, match="editing real animation"):
        jobs.start_edit(config, obj, mirror="all", pool=pool)
    with pytest.raises(jobs.JobError, match="editing real animation"):
        jobs.start_attention(config, action=act, pool=pool)
    assert snapshot() == before
    job = jobs.start_edit_real(config, obj, CAPTION, mirror="upper", pool=pool, **FAST)
    job.cancel()
