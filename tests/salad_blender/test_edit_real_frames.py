"""Edit Animation with Text keeps the source's length: a clip of N scene frames becomes a new Action of N
keys at 20, 24 and 29.97 fps (real worker + tiny random model; runtime.pose_count explains the model side)."""

from pathlib import Path

import numpy as np
import pytest
from needs import require_module

bpy = require_module("bpy")

from salad_blender import actions, armature, jobs  # noqa: E402
from salad_blender import retarget as rt  # noqa: E402

BVH = Path(__file__).resolve().parents[1] / "data" / "dataset-2_walk-turn-left_active_024.bvh"


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    from salad_model.motion.bandai_rig import bvh_to_smpl22

    return bvh_to_smpl22(BVH.read_text(), fps=20.0)


def mocap_body(clip: np.ndarray, fps: int, fps_base: float) -> bpy.types.Object:
    """A fresh scene at fps / fps_base with an SMPL-22 armature playing the clip as a plain action."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, fps_base
    obj = armature.create_smpl22_armature("Mocap", clip, with_mesh=False)
    act = actions.apply_motion(obj, clip, prompt="mocap", bone_map="smpl22", scene=scene, start_frame=1,
                               placement=rt.Placement())
    for key in [k for k in act.keys() if k.startswith("salad_")]:
        del act[key]
    act.name = "Mocap clip"
    return obj


@pytest.mark.parametrize("fps,fps_base,poses,edit_range", [
    (20, 1.0, 61, None), (24, 1.0, 61, None), (30, 1.001, 61, None), (30, 1.001, 73, None), (24, 1.0, 43, None),
    # ranges whose 20 fps sampling ends up to one model frame past the last scene frame (keyed one too many)
    (24, 1.0, 73, (1, 66)), (30, 1.001, 73, (1, 100)), (30, 1.001, 73, (5, 83)),
])
def test_edit_real_result_has_the_source_scene_frames(clip, config, pool, fps, fps_base, poses, edit_range):
    assert len(clip) >= poses
    obj = mocap_body(clip[:poses], fps, fps_base)
    source = obj.animation_data.action
    lo, hi = (int(round(v)) for v in source.frame_range)
    n_keys = hi - lo + 1
    assert all(len(fc.keyframe_points) == n_keys for fc in actions.action_fcurves(source))
    lo, hi = edit_range or (lo, hi)
    n_src = hi - lo + 1
    job = jobs.start_edit_real(config, obj, "a person walks and turns left",
                               new_prompt="a person runs and turns left", frame_range=edit_range,
                               steps=2, null_text_iters=0, pool=pool)
    job.wait(timeout=180)
    assert job.state == "done", job.message
    new = job.output
    assert new is not source and obj.animation_data.action == new
    assert len(job.result["joints"]) == len(job._op["joints"])  # the worker returns every sampled pose
    for fc in actions.action_fcurves(new):
        assert len(fc.keyframe_points) == n_src  # was 1–2 short (e.g. 119 → 117 at 29.97 fps)
        assert (fc.keyframe_points[0].co[0], fc.keyframe_points[-1].co[0]) == (lo, hi)
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (lo, hi)


@pytest.mark.parametrize("fps,fps_base", [(20, 1.0), (24, 1.0), (30, 1.001)])
def test_a_2_second_clip_goes_through_regenerate_parts(clip, config, pool, fps, fps_base):
    """40 poses (2 s, the model's shortest clip) are accepted (was "1.95 s; needs 2 s") and keep their length."""
    from salad_blender import shot_jobs

    obj = mocap_body(clip[:40], fps, fps_base)
    source = obj.animation_data.action
    lo, hi = (int(round(v)) for v in source.frame_range)
    job = shot_jobs.start_regenerate_parts(config, obj, "a person waves", ["arms"],
                                           sampling=jobs.Sampling(seed=3, steps=2), pool=pool)
    job.wait(timeout=180)
    assert job.state == "done", job.message
    assert len(job.result["joints"]) == 40
    for fc in actions.action_fcurves(job.output):
        assert len(fc.keyframe_points) == hi - lo + 1
        assert (fc.keyframe_points[0].co[0], fc.keyframe_points[-1].co[0]) == (lo, hi)
