"""Add-on bugs left by the first session-6 audit, each pinned by a test that failed before its fix.

Runs in-process with the bpy wheel; each test starts from ``read_factory_settings(use_empty=True)``.
"""

from types import SimpleNamespace

import numpy as np
import pytest
from needs import require_module

bpy = require_module("bpy")

from test_shot_audit import activate, make_shot  # noqa: E402 - the addon fixture: conftest.py

from salad_blender import actions, armature, jobs, metadata, shot_jobs  # noqa: E402

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


# ------------------------------------------------------------------------------------ 2. derived names

LONG_SOURCE = "a person walks forward slowly, then turns around to look behind them"
CJK_SOURCE = "一个人向前慢慢地走然后转身回头看"  # 16 characters, 48 bytes


def _fits_and_keeps(name: str, *starts: str) -> None:
    assert len(name.encode("utf-8")) <= metadata.NAME_BYTES
    for s in starts:
        assert s in name, (s, name)


def test_continue_names_shorten_the_source_first_and_keep_the_prompt():
    """Before: 'source + prompt' was cut at its end, so a long source hid the continuation's prompt."""
    cont = [(0, metadata.MIN_SOURCE_BYTES), (2, 0)]
    a = metadata.derived_name([LONG_SOURCE, " + ", "a person sits down"], cont)
    b = metadata.derived_name([LONG_SOURCE, " + ", "a person jumps"], cont)
    assert a == "a person walks forward slowl... + a person sits down" and a != b  # cut only as far as needed
    _fits_and_keeps(b, "a person walks", "+ a person jumps")
    # a continuation of a continuation still names its newest prompt
    c = metadata.derived_name([a, " + ", "a person stands up"], cont)
    _fits_and_keeps(c, "a person walks", "+ a person stands up")
    # an over-long prompt keeps its start; the source keeps at least its first MIN_SOURCE_BYTES
    d = metadata.derived_name([LONG_SOURCE, " + ", "a person dances " * 10], cont)
    _fits_and_keeps(d, "a person walk", "+ a person dances a person")
    # in-between: both sources shortened before the prompt
    e = metadata.derived_name([LONG_SOURCE, " > ", "a person turns", " > ", LONG_SOURCE],
                              [(0, metadata.MIN_SOURCE_BYTES), (4, metadata.MIN_SOURCE_BYTES), (2, 0)])
    _fits_and_keeps(e, "> a person turns >", "a person")
    assert metadata.derived_name(["walk", " + ", "sit"], cont) == "walk + sit"  # short names are kept whole


def test_derived_names_never_split_a_utf8_character():
    cont = [(0, metadata.MIN_SOURCE_BYTES), (2, 0)]
    for prompt in ("一个人坐下来", "一个人坐下来休息一会儿然后站起来再走开", "é" * 40):
        name = metadata.derived_name([CJK_SOURCE * 2, " + ", prompt], cont)
        assert len(name.encode("utf-8")) <= metadata.NAME_BYTES and "\ufffd" not in name
        src, _, rest = name.partition(" + ")
        assert src.endswith("...") and (CJK_SOURCE * 2).startswith(src[:-3])  # whole characters of the source
        kept = rest.removesuffix("...")
        assert prompt.startswith(kept) and len(kept) >= min(len(prompt), 3)


def test_continues_of_a_long_named_action_keep_their_prompts(addon):  # noqa: F811 - the fixture
    """Through the operator (fake worker): before, both continuations were named by the source's text alone,
    'SALAD: a person walks forward slowly, then turns aro...' and the same with '.001'."""
    body = make_shot()
    activate(body)
    shot = body.animation_data.action
    shot.name = "SALAD: " + LONG_SOURCE
    s = bpy.context.scene.salad_shot
    names = []
    for prompt in ("a person sits", "a person jumps"):
        body.animation_data.action = shot
        s.continue_prompt, s.continue_seconds = prompt, 1.0
        assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
        names.append(body.animation_data.action.name)
        assert names[-1].startswith("SALAD: a person walks") and names[-1].endswith(f" + {prompt}"), names[-1]
    s.continue_prompt = "a person waves"  # continuing the continuation
    assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
    names.append(body.animation_data.action.name)
    assert names[-1].endswith(" + a person waves") and len(set(names)) == 3, names


# ------------------------------------------------------------------------------------ 3. Remove Segment


def test_remove_segment_with_the_index_out_of_range_is_disabled_and_cancels(addon):  # noqa: F811 - the fixture
    """Before: poll only asked for a segment, and execute returned FINISHED having removed nothing."""
    from salad_blender.shot_operators import SALAD_OT_shot_segment_remove

    s = bpy.context.scene.salad_shot
    s.segments.clear()
    for _ in range(2):
        bpy.ops.salad.shot_segment_add()
    s.active_segment = 5  # a script can set any index >= 0
    assert not bpy.ops.salad.shot_segment_remove.poll()
    reports = []
    fake = SimpleNamespace(report=lambda kind, msg: reports.append((kind, msg)))
    assert SALAD_OT_shot_segment_remove.execute(fake, bpy.context) == {"CANCELLED"}
    assert reports == [({"ERROR"}, "No segment 6 to remove: the shot has 2.")] and len(s.segments) == 2
    s.active_segment = 1
    assert bpy.ops.salad.shot_segment_remove() == {"FINISHED"} and len(s.segments) == 1
    assert s.active_segment == 0


# ------------------------------------------------------------------------------------ 4. In-between


def _anim_state(obj) -> dict:  # noqa: ANN001 - a bpy Object
    """What sampling must not change on an armature: its animation block, and its pose channels."""
    return {"animation_data": obj.animation_data is not None,
            "pose": {pb.name: (tuple(pb.location), tuple(pb.rotation_quaternion), tuple(pb.scale))
                     for pb in obj.pose.bones}}


@pytest.mark.parametrize("how", ["refused", "cancelled", "worker_error"])
def test_inbetween_on_an_armature_without_animation_leaves_it_so(how):
    """Before: sampling A and B on the armature created an animation block that stayed after a failure or a
    cancel, and left the armature in B's last sampled pose."""
    from shot_fakes import FakePool, ShotWorker
    from test_shot_jobs_scripted import CONFIG, FAST, keyed_body

    from benchmarks.bench_retarget import synthetic_walk
    from salad_blender.client import WorkerError

    pool = FakePool(ShotWorker(steps=2))
    obj = keyed_body({"A": synthetic_walk(96), "B": synthetic_walk(60, turn_deg=-40.0),
                      "Short": synthetic_walk(16)})
    for act in bpy.data.actions:
        act.use_fake_user = True  # kept while no object uses them
    obj.animation_data_clear()
    bpy.context.view_layer.update()
    before = _anim_state(obj)
    a, b = bpy.data.actions["A"], bpy.data.actions["Short" if how == "refused" else "B"]
    if how == "refused":
        with pytest.raises(jobs.JobError, match="in-betweening to it needs at least 1 s"):
            shot_jobs.start_inbetween(CONFIG, obj, a, b, "a person turns", 1.0, sampling=FAST, pool=pool)
    else:
        if how == "worker_error":
            pool.worker.error = WorkerError("invalid_input", "no")
        job = shot_jobs.start_inbetween(CONFIG, obj, a, b, "a person turns", 1.0, sampling=FAST, pool=pool)
        if how == "cancelled":
            job.poll()
            job.cancel()
        job.wait(timeout=30)
        assert job.state == ("cancelled" if how == "cancelled" else "failed")
    assert _anim_state(obj) == before


# ------------------------------------------------------------------------------------ 5. odd scenes


def test_shot_in_an_odd_scene_keys_and_samples_back_its_frames(addon):  # noqa: F811 - the fixture
    """Generate Shot in a 60 / 2 fps scene with frame_step 2 and start frame 7: the 80-frame shot (two 2 s
    segments) gets floor(79 * 30 / 20) + 1 = 119 keys from frame 7, and Continue sends those back as 80 frames."""
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base, scene.frame_step, scene.frame_start = 60, 2.0, 2, 7
    body = make_shot()
    shot = body.animation_data.action
    assert tuple(shot.frame_range) == (7.0, 7.0 + 118) and metadata.action_meta(shot)["salad_frames"] == 80
    activate(body)
    s = bpy.context.scene.salad_shot
    s.continue_prompt, s.continue_seconds = "a person sits", 1.0
    assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
    sent = addon.worker.ops[-1]
    assert sent["op"] == "continue" and len(sent["joints"]) == 80
    assert body.animation_data.action.frame_range[0] == 7.0
