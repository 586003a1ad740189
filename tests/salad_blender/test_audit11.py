"""audit11: an animator's pass over session 13's changes (headless bpy, 4.2 legacy and 5.0 slotted actions).

Regenerate Parts on an action longer than the model takes is refused before anything is sampled (sampling a
Rigify rig frame by frame costs ~7 ms a frame: 30 s of it, seconds of a frozen UI, for a refusal), with the
model's own limit (what its worker said at load, or its folder's config.json), never the demo's numbers copied.
Scripted worker (shot_fakes); no timing.
"""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from shot_fakes import Answer, FakePool, ShotWorker  # noqa: E402
from test_shot_jobs_scripted import CONFIG, FAST, keyed_body, run  # noqa: E402
from test_shot_operators import draw  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, armature, jobs, model_limits, pose_sampling, real_motion, shot_jobs, shot_panels  # noqa: E402


class ModelInfoWorker(ShotWorker):
    """Answers ``load`` as the real worker does: the model info, with the model's clip limits (here 2-6 s)."""

    def submit(self, request):
        if request["op"] == "load":
            self.sent.append(request)
            return Answer({"name": "fake", "fps": 20.0, "min_frames": 40, "max_frames": 120, "reused": False})
        return super().submit(request)


@pytest.fixture
def limits():
    model_limits.forget()
    yield
    model_limits.forget()


@pytest.fixture
def sampled(monkeypatch):
    """Counts the sampling runs of shot jobs."""
    calls = []
    real = shot_jobs.sample_motion

    def counting(*args, **kw):
        calls.append(args[2:4])
        return real(*args, **kw)

    monkeypatch.setattr(shot_jobs, "sample_motion", counting)
    return calls


def test_a_too_long_action_is_refused_before_it_is_sampled_at_the_models_own_limit(limits, sampled):
    """The limit comes from the worker's load answer (6 s on this fake model, not the demo's 9.8 s): unknown before
    the first load (the worker's own check then), known after; a Manual Frame Range within it goes through."""
    pool = FakePool(ModelInfoWorker(steps=1))
    obj = keyed_body({"Mocap": synthetic_walk(80), "Long take": synthetic_walk(400)})  # 4 s and 20 s at 20 fps
    assert model_limits.known("demo") is None
    run(shot_jobs.start_regenerate_parts(CONFIG, obj, "a person kicks", ["arms"], sampling=FAST, pool=pool))
    assert model_limits.known("demo") == model_limits.Limits(20.0, 40, 120)
    assert len(sampled) == 1
    long_take = bpy.data.actions["Long take"]
    obj.animation_data.action = long_take
    if hasattr(long_take, "slots"):
        obj.animation_data.action_slot = long_take.slots[0]
    sent = len(pool.worker.sent)
    with pytest.raises(jobs.JobError) as err:
        shot_jobs.start_regenerate_parts(CONFIG, obj, "a person kicks", ["arms"], sampling=FAST, pool=pool)
    msg = str(err.value)
    assert "'Long take' is 20.0 s long (frames 1–400); this model takes at most 6.0 s" in msg, msg
    assert "Manual Frame Range" in msg
    assert len(sampled) == 1 and len(pool.worker.sent) == sent  # nothing sampled, nothing sent
    long_take.use_frame_range, long_take.frame_start, long_take.frame_end = True, 101, 220  # 6 s: 120 frames
    run(shot_jobs.start_regenerate_parts(CONFIG, obj, "a person kicks", ["arms"], sampling=FAST, pool=pool))
    assert sampled[-1] == (101, 220) and len(pool.worker.ops[-1]["joints"]) == 120


def test_the_operator_says_the_limit_of_the_model_folder_without_sampling(addon, limits, sampled):
    """A model folder's config.json gives its limits before any worker ran (the tiny test model: 196 frames at
    20 fps); the scene's fps counts (30 s at 24 fps = 720 scene frames)."""
    walk = synthetic_walk(600)
    obj = armature.create_smpl22_armature("Mocap", walk, with_mesh=False)
    act = actions.apply_motion(obj, walk, prompt="mocap", bone_map="smpl22", start_frame=1)
    for key in [k for k in act.keys() if k.startswith("salad_")]:
        del act[key]  # mocap: sampled, not regenerated from a recipe
    bpy.context.view_layer.objects.active = obj
    bpy.context.scene.render.fps = 24
    act.use_frame_range, act.frame_start, act.frame_end = True, 1, 721
    s = bpy.context.scene.salad_shot
    s.parts, s.parts_prompt = {"left_arm"}, "a person waves"
    with pytest.raises(RuntimeError, match=r"is 30\.0 s long .*at most 9\.8 s for regenerating parts\. Set a "
                                           r"Manual Frame Range"):
        bpy.ops.salad.regenerate_parts(blocking=True)
    assert not sampled and not addon.worker.ops
    said = " ".join(c[1] for c in draw(shot_panels.SALAD_PT_regenerate_parts) if c[0] == "label")
    assert "30.0 s long; this model takes at most 9.8 s" in said and "Manual Frame Range" in said, said  # at once
    assert "…" not in said  # whole, over several lines
    act.frame_start, act.frame_end = 241, 475  # 9.8 s at 24 fps (235 frames -> 196 at 20 fps)
    assert "s long" not in " ".join(c[1] for c in draw(shot_panels.SALAD_PT_regenerate_parts) if c[0] == "label")
    assert bpy.ops.salad.regenerate_parts(blocking=True) == {"FINISHED"}
    assert sampled == [(241, 475)] and len(addon.worker.ops[-1]["joints"]) == 196


def test_durations_in_the_segment_list_have_their_unit_and_no_false_snap_hint():
    """The Shot list's column said a bare "72.60" (every field says "Duration (s)"); now "72.6 s". A 72.6 s segment
    (held as float32 72.5999985) said "Makes 72.6 s (whole 0.2 s steps)" under its field: 72.6 s is whole steps."""
    import numpy as np

    from salad_blender import ui_state

    f32 = [float(np.float32(v)) for v in (72.6, 4.0, 2.25, 300.0, 0.2)]
    assert [ui_state.seconds_text(v) for v in f32] == ["72.6 s", "4 s", "2.25 s", "300 s", "0.2 s"]
    for v in (72.6, 299.8, 12.6, 2.0, 0.2):
        assert ui_state.snap_hint(float(np.float32(v))) == "", v
    assert ui_state.snap_hint(float(np.float32(72.5))) == "Makes 72.4 s"  # half to even: 362.5 latents -> 362
    assert ui_state.snap_hint(float(np.float32(2.1))) == "Makes 2.0 s"


def _rigify_with_mocap(seconds: float):
    """The generated Rigify rig playing a plain (non-SALAD) walk keyed on its controls, 20 fps (the model's: no
    resampling between the scene's frames and the model's enters the comparison)."""
    from testdata import DATA

    from salad_blender import rigify

    bpy.ops.wm.open_mainfile(filepath=str(DATA / "rigify_human.blend"))
    rig = bpy.data.objects["rig"]
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0
    act = actions.apply_motion(rig, synthetic_walk(int(seconds * 20)), prompt="walk", scene=scene,
                               meta={"rig": rigify.RIGIFY_CONTROL}, start_frame=1)
    for key in [k for k in act.keys() if k.startswith("salad_")]:
        del act[key]
    act.name = "mocap walk"
    bpy.context.view_layer.objects.active = rig
    return rig, act


@pytest.mark.parametrize("op", ["continue", "regenerate"])
def test_continue_and_regenerate_on_a_rigify_control_rig(limits, sampled, op):
    """A Rigify control rig (constraints: sampled frame by frame) continues and regenerates: the result is keyed on
    its controls and, where it holds the source, its ORG bones play the source (the scripted worker gives the source
    back): within 1 mm (measured 0.0 mm). Rigify's ORG-spine head, read as the pelvis, is below the hips where the
    SMPL pelvis is above them: the upper body came back 84 mm off against the legs (both ops, 20 and 24 fps)."""
    rig, src = _rigify_with_mocap(4.0)
    pool = FakePool(ShotWorker(steps=1))
    _, mapping = jobs.check_rig(rig, "auto")
    bones = real_motion.joint_bones(mapping)
    before = pose_sampling.sample_world_joints(rig, mapping, range(1, 77))  # the 76 frames the worker keeps
    if op == "continue":
        new = run(shot_jobs.start_continue(CONFIG, rig, "a person sits down", 2.0, sampling=FAST, pin_feet=False,
                                           pool=pool))
    else:
        new = run(shot_jobs.start_regenerate_parts(CONFIG, rig, "a person waves", ["arms"], sampling=FAST,
                                                   pin_feet=False, pool=pool))
    assert sampled == [(1, 80)]
    assert rig.animation_data.action == new and new != src
    paths = {fc.data_path for fc in actions.action_fcurves(new)}
    assert 'pose.bones["torso"].location' in paths and not any('"DEF-' in p or '"ORG-' in p for p in paths)
    after = pose_sampling.sample_world_joints(rig, mapping, range(1, 77))
    err = np.linalg.norm(after - before, axis=-1).max()
    assert err < 1e-3, (err, bones)


def test_a_continuation_of_a_source_one_request_cannot_hold_is_refused_before_sampling(limits, sampled):
    """Continue and In-between send their sources whole: over what one worker request holds (1 MiB: 2955 frames,
    ~148 s at 20 fps) they were sampled first and refused after; now before, saying the limit and the fix."""
    from salad_blender import motion_job

    pool = FakePool(ShotWorker(steps=1))
    obj = keyed_body({"Mocap": synthetic_walk(80), "B": synthetic_walk(60)})
    act, b = bpy.data.actions["Mocap"], bpy.data.actions["B"]
    act.use_frame_range, act.frame_start, act.frame_end = True, 1, motion_job.FRAMES_PER_REQUEST + 1
    with pytest.raises(jobs.JobError, match=r"Continue: 'Mocap' is 14\d\.\d s .*at most 14\d s of motion\. Set a "
                                            r"Manual Frame Range"):
        shot_jobs.start_continue(CONFIG, obj, "a person sits down", 2.0, sampling=FAST, pool=pool)
    with pytest.raises(jobs.JobError, match=r"In-between: 'Mocap' is .* 'B' is 3\.0 s"):
        shot_jobs.start_inbetween(CONFIG, obj, act, b, "a person turns", 1.0, sampling=FAST, pool=pool)
    assert not sampled and not pool.worker.sent
    act.frame_end = motion_job.FRAMES_PER_REQUEST - 60  # with B's 60 frames: just fits
    run(shot_jobs.start_inbetween(CONFIG, obj, act, b, "a person turns", 1.0, sampling=FAST, pin_feet=False,
                                  pool=pool))
    assert len(sampled) == 2


def test_the_edit_panel_points_mocap_to_regenerate_parts_too():
    """The Edit panel told an animator with mocap to use Edit Animation with Text only, with the Regenerate Parts
    sub-panel, which works on it, right below (Blender 4.3 screenshot)."""
    from test_ui_state import Action
    from test_ui_state import armature as fake_armature

    from salad_blender import ui_state

    said = ui_state.edit_blocker(fake_armature(Action("mocap")))
    assert said == "This action was not made by SALAD: use Edit Animation with Text or Regenerate Parts"
