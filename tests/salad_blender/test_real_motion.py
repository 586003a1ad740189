"""salad_blender.real_motion, without Blender: resampling, scale, checks and placing a result back."""

import numpy as np
import pytest

from salad_blender import real_motion, smpl22
from salad_blender.inputs import JobError


def test_resample_positions():
    x = np.arange(31, dtype=np.float64)[:, None] / 30.0  # 1 s at 30 fps: value = time
    y = real_motion.resample_positions(x, 30.0, 20.0)
    assert len(y) == 21 and np.allclose(y[:, 0], np.arange(21) / 20.0)  # tolerance: numpy default (1e-8)


def test_to_metres_keeps_humans_and_rescales_others():
    heads = {"pelvis": np.array([0.0, 0.0, 1.0]), "left_foot": np.array([0.1, 0.0, 0.05])}
    assert real_motion.to_metres(heads) == 1.0  # hip 0.95 m: human-sized
    tiny = {k: v * 0.01 for k, v in heads.items()}
    assert real_motion.to_metres(tiny) == pytest.approx(real_motion.TARGET_HIP_HEIGHT / 0.0095)
    with pytest.raises(JobError, match="no height at rest"):
        real_motion.to_metres({"pelvis": np.zeros(3), "left_foot": np.zeros(3)})


def test_joint_bones_fall_back_to_ancestors():
    bones = real_motion.joint_bones({"pelvis": "Hips", "left_hip": "LeftUpLeg"})
    i = smpl22.INDEX
    assert bones[i["left_knee"]] == "LeftUpLeg" and bones[i["right_hip"]] == "Hips" and bones[i["head"]] == "Hips"
    with pytest.raises(JobError, match="must map 'pelvis'"):
        real_motion.joint_bones({"left_hip": "LeftUpLeg"})


def test_check_sampled():
    ok = np.zeros((real_motion.MIN_REAL_FRAMES, 22, 3))
    real_motion.check_sampled(ok, "rig")
    with pytest.raises(JobError, match="too short"):
        real_motion.check_sampled(ok[:-1], "rig")
    ok[3, 4, 1] = np.nan
    with pytest.raises(JobError, match="invalid"):
        real_motion.check_sampled(ok, "rig")


def test_placement_puts_canonical_result_back(walk):
    """A canonicalised copy of the input (the worker's side), placed with real_placement, lands on the input."""
    from salad_model.motion import motion_process

    clip = walk + np.array([0.7, 0.0, -1.2])  # somewhere off the origin
    s = real_motion.SampledMotion(joints=clip.astype(np.float32), to_metres=0.5, world=np.zeros((1, 22, 3)),
                                  frame_start=1, fps=20.0)
    pl = real_motion.real_placement(s)
    world = pl.apply(smpl22.model_to_blender(motion_process.canonicalize(clip)))
    assert np.abs(world - smpl22.model_to_blender(clip) / 0.5).max() < 1e-4  # float32 input: 0.1 mm
