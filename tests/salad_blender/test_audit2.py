"""Add-on bugs left by the first session-6 audit, each pinned by a test that failed before its fix.

Runs in-process with the bpy wheel; each test starts from ``read_factory_settings(use_empty=True)``.
"""

import numpy as np
import pytest
from needs import require_module

bpy = require_module("bpy")

from salad_blender import actions, armature, jobs, shot_jobs  # noqa: E402

# scene fps as Blender stores it: (fps, fps_base); 30 / 1.001 = 29.97 (NTSC)
SCENE_RATES = [(20, 1.0), (24, 1.0), (25, 1.0), (30, 1.0), (60, 1.0), (30, 1.001)]


@pytest.mark.parametrize("fps,fps_base", SCENE_RATES, ids=lambda v: f"{v:g}")
@pytest.mark.parametrize("frames", [40, 41, 57])
def test_generated_motion_samples_back_to_its_frame_count(scene, walk, fps, fps_base, frames):
    """A generated N-frame motion keyed at the scene's fps samples back (as shots sample sources) to N frames.

    Before: the keys end at or before the clip's end and sampling rounded down again, so a 2 s shot
    (40 frames) at 24 fps came back as 39 frames and Regenerate Parts called it 1.90 s.
    Tolerance: 1 mm at the first frame; 3 cm up to the last but one (slerped keys vs. linear resampling of
    positions); the last frame holds the last key, which lies between the clip's last two frames, so it is
    off by less than the clip's last step.
    """
    scene.render.fps, scene.render.fps_base = fps, fps_base
    clip = walk[:frames]
    arm = armature.create_smpl22_armature(joints=clip, with_mesh=False)
    act = actions.apply_motion(arm, clip, prompt="a person walks", seed=0, start_frame=1)
    src = shot_jobs._sample(arm, act, jobs.check_rig(arm, "auto")[1], scene)
    assert src.frames == frames
    got = src.sampled.joints
    assert np.abs(got[0] - clip[0]).max() < 1e-3
    assert np.abs(got[:-1] - clip[:-1]).max() < 0.03
    last_step = np.abs(clip[-1] - clip[-2]).max()
    assert np.abs(got[-1] - clip[-1]).max() <= last_step + 1e-3
