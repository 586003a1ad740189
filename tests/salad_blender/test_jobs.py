"""The add-on's job functions end to end: real worker subprocess + tiny random model + bpy in-process.

What is checked here is the wiring (request → worker → result joints → keys, metadata, edit chain,
images) and that failures/cancels leave the scene as it was. Retarget accuracy itself is covered by
test_retarget.py / test_actions.py. The tiny model's joints are random (not a body), so FK is
compared with the retargeter's numpy FK of the *result joints* (1 mm), not with the joints themselves.
"""

import json
import os
import signal
import stat
import sys
import time

import numpy as np
import pytest
from needs import require_module

bpy = require_module("bpy")

from blender_state import key_values, snapshot, world_heads  # noqa: E402

from salad_blender import actions, armature, heatmap, jobs  # noqa: E402
from salad_blender import retarget as rt  # noqa: E402

PROMPT = "a person walks forward and waves with the right hand"
FAST = dict(seconds=4.0, steps=10)


@pytest.fixture(scope="session", autouse=True)
def _close_shared_worker():
    """The session's worker is shared with test_operators (same settings): close it at the very end."""
    yield
    jobs.POOL.close()


@pytest.fixture(scope="module")
def slow_pool():
    """A second worker whose steps take 0.15 s, so a test can act in the middle of sampling."""
    pool = jobs.WorkerPool()
    yield pool
    pool.close()


@pytest.fixture
def slow_config(config):
    return jobs.WorkerConfig(config.python, config.model, config.device, config.threads,
                             env=(("SALAD_WORKER_DEBUG_STEP_DELAY", "0.15"),))


def assert_fk_matches_result(obj, joints, frames, bone_map=None):
    """Blender's FK of the keys == numpy FK of the retargeted result joints (1 mm)."""
    scene = bpy.context.scene
    res = actions.prepare_retarget(obj, joints, bone_map=bone_map, fps=actions.scene_fps(scene))
    rig = armature.rig_rest_from_object(obj)
    expect = rt.forward_kinematics(rig, res, np.asarray(frames))
    for k, f in enumerate(frames):
        got = world_heads(obj, rig.bone_names, scene.frame_start + f)
        err = np.abs(got - expect[k]).max()
        assert err < 1e-3, (f, err)


def wait_for_step(job, step=1):
    """Poll until the worker reports ``step`` (no clock: a job that ends first fails the test)."""
    while job.stage != "run" or job.step < step:
        assert not job.poll(), job.message
        time.sleep(0.01)


# ------------------------------------------------------------------------------------------ success


def test_generate_new_body_end_to_end(scene, config):
    scene.render.fps, scene.render.fps_base = 20, 1.0
    job = jobs.start_generate(config, PROMPT, jobs.Sampling(seed=3, **FAST), jobs.Target(pin_feet=False))
    seen = []
    while not job.poll():
        seen.append((job.stage, round(job.progress, 3)))
        time.sleep(0.01)
    assert job.state == "done", job.message
    assert job.progress == 1.0 and "done" in job.message
    assert [p for _, p in seen] == sorted(p for _, p in seen)  # progress never goes back
    act = job.output
    assert act.name == actions.action_name(PROMPT)
    arm = bpy.data.objects["SALAD Body"]
    assert arm.type == "ARMATURE" and arm.animation_data.action == act
    assert [c.type for c in arm.children] == ["MESH"]
    joints = job.result["joints"]
    assert joints.shape == (80, 22, 3)
    fcurves = actions.action_fcurves(act)
    assert len(fcurves) == 22 * 4 + 3 and all(len(fc.keyframe_points) == 80 for fc in fcurves)
    assert (scene.frame_start, scene.frame_end) == (1, 80)
    meta = actions.read_metadata(act)
    assert meta["salad_prompt"] == PROMPT and meta["salad_seed"] == 3 and meta["salad_frames"] == 80
    assert meta["salad_model"] == config.model and meta["salad_steps"] == 10
    assert meta["salad_guidance"] == pytest.approx(7.5) and meta["salad_edits"] == []
    assert act["salad_scheduler"] == "ddim" and act["salad_rig"] == "smpl22"
    assert_fk_matches_result(arm, joints, [0, 41, 79], "smpl22")
    # random joints are no body: the add-on falls back to the standard body (the trained model's body,
    # joints played exactly, is tested in test_jobs_demo.py)
    assert arm.get("salad_standard_body")


def test_generate_onto_selected_mixamo_rig_at_30_fps(scene, config, walk, build_mixamo_rig):
    scene.render.fps, scene.render.fps_base = 30, 1.0
    scene.frame_start = 11
    rig, names = build_mixamo_rig(walk)
    before = len(bpy.data.objects)
    job = jobs.start_generate(config, "a person jumps", jobs.Sampling(seed=1, **FAST),
                              jobs.Target(kind="armature", armature=rig.name, rig="auto", pin_feet=True))
    job.wait(60)
    assert job.state == "done", job.message
    assert len(bpy.data.objects) == before  # no new body
    act = job.output
    assert rig.animation_data.action == act and act["salad_rig"] == "mixamo"
    n = len(actions.action_fcurves(act)[0].keyframe_points)
    assert scene.frame_start == 11 and scene.frame_end == 11 + n - 1
    assert abs(n - 80 * 30 / 20) <= 2  # 4 s at 30 fps
    res = actions.prepare_retarget(rig, job.result["joints"], bone_map="mixamo", fps=30.0,
                                   contacts=job.result["contacts"])
    rest = armature.rig_rest_from_object(rig)
    expect = rt.forward_kinematics(rest, res, np.array([0, n // 2]))
    for k, f in enumerate((0, n // 2)):
        assert np.abs(world_heads(rig, rest.bone_names, 11 + f) - expect[k]).max() < 1e-3


def test_edit_chain_new_actions_and_untouched_parents(scene, config):
    scene.render.fps = 20
    gen = jobs.start_generate(config, "a person walks forward", jobs.Sampling(seed=5, **FAST),
                              jobs.Target(pin_feet=False)).wait(60)
    assert gen.state == "done", gen.message
    arm = bpy.data.objects["SALAD Body"]
    src = gen.output
    src_keys, src_meta = key_values(src), actions.read_metadata(src)

    swap = jobs.start_edit(config, arm, new_prompt="a person runs forward").wait(60)
    assert swap.state == "done", swap.message
    a1 = swap.output
    m1 = actions.read_metadata(a1)
    assert a1 != src and arm.animation_data.action == a1 and a1.name == "SALAD: a person runs forward"
    assert m1["salad_prompt"] == "a person walks forward" and m1["salad_seed"] == 5
    assert m1["salad_frames"] == 80 and m1["salad_steps"] == 10
    assert [e["mode"] for e in m1["salad_edits"]] == ["word_swap"]
    assert m1["salad_edits"][0]["edit_prompt"] == "a person runs forward"
    assert "word swap" in jobs.last_why(m1)  # the worker's explanation travels to the panel
    assert a1["salad_parent"] == src.name

    rew = jobs.start_edit(config, arm, word="runs", scale=2.0).wait(60)
    assert rew.state == "done", rew.message
    a2 = rew.output
    m2 = actions.read_metadata(a2)
    assert [e["mode"] for e in m2["salad_edits"]] == ["word_swap", "reweight"]
    assert m2["salad_prompt"] == "a person runs forward"  # the source of this edit: the current prompt
    assert m2["salad_edits"][1]["scale"] == 2.0 and "runs" in a2.name

    mir = jobs.start_edit(config, arm, mirror="upper").wait(60)
    assert mir.state == "done", mir.message
    m3 = actions.read_metadata(mir.output)
    assert [e["mode"] for e in m3["salad_edits"]] == ["word_swap", "reweight", "mirror"]
    assert m3["salad_edits"][2]["which"] == "upper" and m3["salad_edits"][2]["method"] == "geometric"
    with pytest.raises(jobs.JobError, match="Mirror method"):
        jobs.start_edit(config, arm, mirror="upper", mirror_method="sideways")

    # four distinct actions; the earlier ones untouched and kept (fake user)
    assert len({src.name, a1.name, a2.name, mir.output.name}) == 4
    assert key_values(src) == src_keys and actions.read_metadata(src) == src_meta
    assert all(a.use_fake_user for a in (src, a1, a2))
    assert key_values(a1) != src_keys
    # the edit starts where its parent started
    assert mir.output.frame_range[0] == src.frame_range[0]


def test_edit_is_stateless_same_metadata_same_keys(scene, config):
    """Editing twice from the same action gives the same motion (the edit regenerates the source)."""
    scene.render.fps = 20
    gen = jobs.start_generate(config, "a person walks forward", jobs.Sampling(seed=9, **FAST),
                              jobs.Target(pin_feet=False)).wait(60)
    arm = bpy.data.objects["SALAD Body"]
    src = gen.output
    first = jobs.start_edit(config, arm, new_prompt="a person runs forward").wait(60).output
    second = jobs.start_edit(config, arm, new_prompt="a person runs forward", action=src).wait(60).output
    a, b = key_values(first), key_values(second)
    assert a.keys() == b.keys()
    assert max(np.abs(np.array(a[k]) - np.array(b[k])).max() for k in a) < 1e-5


def test_attention_heat_map_image(scene, config):
    gen = jobs.start_generate(config, "a person walks forward", jobs.Sampling(seed=2, **FAST),
                              jobs.Target(pin_feet=False)).wait(60)
    job = jobs.start_attention(config, action=gen.output).wait(60)
    assert job.state == "done", job.message
    img = bpy.data.images[heatmap.IMAGE_NAME]
    assert job.output == img
    assert json.loads(img["salad_words"]) == ["a", "person", "walks", "forward"]
    w, h = img.size
    px = np.empty(w * h * 4, dtype=np.float32)
    img.pixels.foreach_get(px)
    px = px.reshape(h, w, 4)
    assert h > 4 * 7 * 8 and px[..., :3].std() > 0.05  # four panels with real content
    again = jobs.start_attention(config, prompt="a person jumps", sampling=jobs.Sampling(seed=2, **FAST)
                                 ).wait(60)
    assert again.state == "done" and [i.name for i in bpy.data.images].count(heatmap.IMAGE_NAME) == 1
    assert json.loads(img["salad_words"]) == ["a", "person", "jumps"]


def test_check_reports_versions_and_device(config):
    job = jobs.start_check(config).wait(60)
    assert job.state == "done", job.message
    assert job.output["model"]["device"] == "cpu" and job.output["hello"]["protocol"] == 1
    assert "Worker OK" in job.message and "torch" in job.message and "random-tiny" in job.message


# ------------------------------------------------------------------------------------------ failures


def test_empty_prompt_wrong_rig_missing_python_change_nothing(scene, config, walk, build_mixamo_rig):
    rig, _ = build_mixamo_rig(walk, swap_sides=True)  # mirrored: its Left* bones are on its right
    plain = bpy.data.objects.new("Plain", bpy.data.armatures.new("Plain"))
    scene.collection.objects.link(plain)
    bpy.context.view_layer.objects.active = plain
    bpy.ops.object.mode_set(mode="EDIT")
    b = plain.data.edit_bones.new("Bone")
    b.head, b.tail = (0, 0, 0), (0, 0, 1)
    bpy.ops.object.mode_set(mode="OBJECT")
    before = snapshot()
    spawned = jobs.POOL.client.pid if jobs.POOL.client is not None else None

    with pytest.raises(jobs.JobError, match="Type a prompt"):
        jobs.start_generate(config, "   ", jobs.Sampling(**FAST), jobs.Target())
    with pytest.raises(jobs.JobError, match="left/right mismatch"):
        jobs.start_generate(config, PROMPT, jobs.Sampling(**FAST),
                            jobs.Target(kind="armature", armature=rig.name))
    with pytest.raises(jobs.JobError, match="matches no rig preset.*custom bone map"):
        jobs.start_generate(config, PROMPT, jobs.Sampling(**FAST),
                            jobs.Target(kind="armature", armature="Plain"))
    with pytest.raises(jobs.JobError, match="Select an armature"):
        jobs.start_generate(config, PROMPT, jobs.Sampling(**FAST), jobs.Target(kind="armature"))
    with pytest.raises(jobs.JobError, match="Preferences > Add-ons > SALAD Motion"):
        jobs.start_generate(jobs.WorkerConfig(python="/nonexistent/bin/python", model=config.model), PROMPT,
                            jobs.Sampling(**FAST), jobs.Target())
    with pytest.raises(jobs.JobError, match="No Python interpreter"):
        jobs.start_generate(jobs.WorkerConfig(python="", model=config.model), PROMPT, jobs.Sampling(**FAST),
                            jobs.Target())
    with pytest.raises(jobs.JobError, match="model folder .* does not exist"):
        jobs.start_generate(jobs.WorkerConfig(python=sys.executable, model="/nonexistent/model"), PROMPT,
                            jobs.Sampling(**FAST), jobs.Target())
    with pytest.raises(jobs.JobError, match="Select an armature that plays a SALAD action"):
        jobs.start_edit(config, rig, new_prompt="a person runs")
    assert snapshot() == before
    assert (jobs.POOL.client.pid if jobs.POOL.client is not None else None) == spawned  # nothing spawned


def test_worker_rejects_input_scene_unchanged(scene, config):
    before = snapshot()
    job = jobs.start_generate(config, PROMPT, jobs.Sampling(seconds=30.0, steps=10), jobs.Target()).wait(60)
    assert job.state == "failed"
    assert "out of range" in job.message and "196" in job.message
    assert snapshot() == before


def test_crashing_worker_interpreter(scene, config, tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named torch' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    pool = jobs.WorkerPool()
    before = snapshot()
    try:
        job = jobs.start_generate(jobs.WorkerConfig(python=str(fake), model=config.model), PROMPT,
                                  jobs.Sampling(**FAST), jobs.Target(), pool=pool).wait(30)
    finally:
        pool.close()
    assert job.state == "failed"
    assert "worker stopped (exited with code 1: ModuleNotFoundError: No module named torch)" in job.message
    assert job.message.count("code 1") == 1 and job.message.count("model worker") == 1  # said once
    assert "No module named torch" in job.message and "Worker Python" in job.message
    assert snapshot() == before


def test_apply_failure_removes_the_new_body(scene, config, monkeypatch):
    def boom(*a, **k):
        raise ValueError("simulated failure while writing keys")

    monkeypatch.setattr(actions, "apply_motion", boom)
    before = snapshot()
    job = jobs.start_generate(config, PROMPT, jobs.Sampling(**FAST), jobs.Target()).wait(60)
    assert job.state == "failed" and "simulated failure" in job.message
    assert snapshot() == before


def test_target_deleted_while_generating(scene, config, walk, build_mixamo_rig):
    rig, _ = build_mixamo_rig(walk)
    job = jobs.start_generate(config, PROMPT, jobs.Sampling(**FAST),
                              jobs.Target(kind="armature", armature=rig.name))
    bpy.data.objects.remove(rig)  # the user deletes it while the worker samples
    before = snapshot()
    job.wait(60)
    assert job.state == "failed" and "was deleted (or undone) while the motion was generated" in job.message
    assert snapshot() == before


def test_cancel_mid_sampling_then_worker_still_serves(scene, slow_pool, slow_config):
    before = snapshot()
    job = jobs.start_generate(slow_config, PROMPT, jobs.Sampling(**FAST), jobs.Target(), pool=slow_pool)
    wait_for_step(job, 2)
    job.cancel()
    assert job.state == "cancelled" and "nothing was changed" in job.message
    assert job.poll() is True and job.state == "cancelled"
    nxt = jobs.start_generate(slow_config, "a person jumps", jobs.Sampling(seconds=2.0, steps=2),
                              jobs.Target(), pool=slow_pool)
    assert snapshot() == before  # the cancelled job's result never lands
    nxt.wait(60)
    assert nxt.state == "done", nxt.message
    assert [a.name for a in bpy.data.actions] == ["SALAD: a person jumps"]


def test_worker_killed_mid_job_is_sent_again_then_fails_after_three_kills(scene, slow_pool, slow_config):
    """A worker killed mid-job (out of memory, by hand): the job is sent again on a new worker, at most twice,
    and finishes; killed a third time it fails saying why, with the scene unchanged. Before: the first kill
    failed the job."""
    from salad_blender import motion_job

    job = jobs.start_generate(slow_config, PROMPT, jobs.Sampling(**FAST), jobs.Target(), pool=slow_pool)
    wait_for_step(job, 1)
    first = slow_pool.client.pid
    os.kill(first, signal.SIGKILL)
    job.wait(60)
    assert job.state == "done" and job.requeues == 1, job.message
    assert slow_pool.client.pid != first

    before = snapshot()
    job = jobs.start_generate(slow_config, PROMPT, jobs.Sampling(**FAST), jobs.Target(), pool=slow_pool)
    pids = []
    for tries in range(1 + motion_job.MAX_REQUEUES):
        wait_for_step(job, 1)
        assert slow_pool.client.pid not in pids
        pids.append(slow_pool.client.pid)
        os.kill(pids[-1], signal.SIGKILL)
        while job.requeues == tries and not job.poll():  # until it is sent again (or fails)
            time.sleep(0.01)
    assert job.state == "failed" and job.requeues == motion_job.MAX_REQUEUES
    assert "worker stopped" in job.message and "signal 9" in job.message and "tried 3 times" in job.message
    assert snapshot() == before
    again = jobs.start_generate(slow_config, "a person jumps", jobs.Sampling(seconds=2.0, steps=2),
                                jobs.Target(), pool=slow_pool).wait(60)
    assert again.state == "done", again.message
    assert slow_pool.client.pid not in pids


def test_moved_names_still_import_with_a_warning():
    """Callers of names that left jobs.py / operators.py in the split keep working (and are told where to go)."""
    from salad_blender import facing, operators, real_motion, runner

    with pytest.warns(DeprecationWarning, match="real_motion.resample_positions"):
        assert jobs.resample_positions is real_motion.resample_positions
    with pytest.warns(DeprecationWarning, match="facing.model_heading"):
        assert jobs.facing_heading is facing.model_heading
    with pytest.warns(DeprecationWarning, match="salad_blender.runner"):
        assert operators.draw_progress is runner.draw_progress
    with pytest.raises(AttributeError):
        jobs.no_such_name  # noqa: B018
