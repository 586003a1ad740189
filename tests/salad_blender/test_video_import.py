"""Import Motion from Video (issue 14) in Blender: the add-on's job runs the worker's ``video`` op on the
rendered test clip and writes a new Action (new body, or the chosen armature: its own animation kept) with
the recipe in ``salad_*`` metadata; bad choices are refused before any worker starts.
"""

import sys

import numpy as np
import pytest
from needs import require_module
from testdata import DATA

bpy = require_module("bpy")
require_module("mediapipe")

from test_jobs_edit_real import keyed_body  # noqa: E402

from salad_blender import jobs, metadata, smpl22, video_jobs  # noqa: E402

CLIP = DATA / "video" / "walk_turn_left_front.mp4"


@pytest.fixture(scope="module")
def config():
    return jobs.WorkerConfig(python=sys.executable, model="demo", device="cpu", threads=1)


@pytest.fixture(scope="module")
def pool():
    p = jobs.WorkerPool()
    yield p
    p.close()


def test_bad_choices_are_refused_before_the_worker(tmp_path, config):
    with pytest.raises(jobs.JobError, match="Choose a video"):
        video_jobs.start_import_video(config, "", jobs.Target())
    with pytest.raises(jobs.JobError, match="does not exist"):
        video_jobs.start_import_video(config, str(tmp_path / "gone.mp4"), jobs.Target())
    txt = tmp_path / "notes.txt"
    txt.write_text("not a film")
    with pytest.raises(jobs.JobError, match="not a video file"):
        video_jobs.start_import_video(config, str(txt), jobs.Target())
    with pytest.raises(jobs.JobError, match="field of view"):
        video_jobs.start_import_video(config, str(CLIP), jobs.Target(), fov=300.0)
    with pytest.raises(jobs.JobError, match="clean-up strength"):
        video_jobs.start_import_video(config, str(CLIP), jobs.Target(), clean_up=1.5)
    gone = jobs.WorkerConfig(python=config.python, model=str(tmp_path / "moved model"), device="cpu", threads=1)
    with pytest.raises(jobs.JobError, match="model folder .* does not exist"):  # the clean-up needs it
        video_jobs.start_import_video(gone, str(CLIP), jobs.Target(), clean_up=0.6)


def test_without_clean_up_a_missing_model_folder_does_not_matter(scene, tmp_path, config, pool):
    """Reading the video needs no model: a model folder moved away refused the import even with the
    clean-up off (check_model ran for every import). The Action records no model then."""
    scene.render.fps, scene.render.fps_base = 20, 1.0
    gone = jobs.WorkerConfig(python=config.python, model=str(tmp_path / "moved model"), device="cpu", threads=1)
    job = video_jobs.start_import_video(gone, str(CLIP), jobs.Target(pin_feet=False), pool=pool).wait(900)
    assert job.state == "done", job.message
    meta = metadata.read_metadata(job.output)
    assert meta["salad_source"] == "video" and meta["salad_model"] == ""


def test_video_becomes_a_new_action_on_a_new_body(scene, config, pool):
    scene.render.fps, scene.render.fps_base = 20, 1.0
    job = video_jobs.start_import_video(config, str(CLIP), jobs.Target(pin_feet=False), pool=pool).wait(900)
    assert job.state == "done", job.message
    action = job.output
    meta = metadata.read_metadata(action)
    assert meta["salad_source"] == "video" and meta["salad_frames"] == 60
    assert meta["salad_video"]["file"] == CLIP.name and meta["salad_video"]["found_frames"] >= 72
    arm = bpy.data.objects["SALAD Body"]
    assert arm.animation_data.action == action
    with pytest.raises(jobs.JobError, match="imported from a video"):
        metadata.refuse_inversion(action.name, meta)  # no seed to regenerate: edits go through inversion
    # the body walks: the pelvis travels forward in Blender (model +Z → Blender −Y) over the clip
    scene.frame_set(1)
    p0 = np.array(arm.matrix_world @ arm.pose.bones[smpl22.JOINT_NAMES[0]].head)
    scene.frame_set(60)
    p1 = np.array(arm.matrix_world @ arm.pose.bones[smpl22.JOINT_NAMES[0]].head)
    assert np.linalg.norm((p1 - p0)[:2]) > 1.5


def test_video_on_the_chosen_armature_keeps_its_animation(config, pool):
    from salad_model.motion.bandai_rig import bvh_to_smpl22

    clip = bvh_to_smpl22((DATA / "dataset-2_raise-up-left-hand_active_020.bvh").read_text(), fps=20.0)
    obj = keyed_body(clip)
    before = obj.animation_data.action
    frame_range = tuple(before.frame_range)
    target = jobs.Target(kind="armature", armature=obj.name, rig="smpl22", pin_feet=False)
    job = video_jobs.start_import_video(config, str(CLIP), target, pool=pool).wait(900)
    assert job.state == "done", job.message
    assert job.output is not before and obj.animation_data.action == job.output
    assert bpy.data.actions.get("Mocap clip") is before and tuple(before.frame_range) == frame_range
    assert not metadata.read_metadata(before)  # the user's action was not turned into a SALAD one
    assert metadata.read_metadata(job.output)["salad_source"] == "video"


def test_clean_up_loads_the_model_and_is_recorded(config, pool):
    job = video_jobs.start_import_video(config, str(CLIP), jobs.Target(pin_feet=False), clean_up=0.6,
                                        pool=pool).wait(900)
    assert job.state == "done", job.message
    meta = metadata.read_metadata(job.output)
    assert meta["salad_source"] == "video" and meta["salad_frames"] == 60
    assert meta["salad_video"]["clean_up"]["strength"] == 0.6 and meta["salad_video"]["clean_up"]["steps"] == 20


@pytest.mark.parametrize("clean_up", [0.6, None])
def test_an_import_restarts_a_worker_stuck_in_a_cancelled_request(tiny_model_dir, monkeypatch, clean_up):
    """Like any job, the import replaces a worker stuck in a cancelled request (test_stuck_worker.py) instead of
    waiting behind it for as long as the stuck step lasts: with the clean-up its model load waited ("Loading the
    model"), without it (no load) the video op itself stayed queued."""
    import time

    from salad_blender import motion_job
    from salad_blender.worker_pool import WorkerConfig, WorkerPool

    monkeypatch.setattr(motion_job, "CANCEL_GRACE", 1.0)  # shortened (the step never ends)
    config = WorkerConfig(python=sys.executable, model=str(tiny_model_dir), device="cpu", threads=1,
                          env=(("SALAD_WORKER_DEBUG_STEP_DELAY", "3600"),))
    pool = WorkerPool()
    try:
        op = {"op": "generate", "prompt": "a person walks", "frames": 40, "seed": 0, "steps": 3}
        stuck = motion_job.make_job("generate", "Generate", config, op, lambda r: r, pool)
        deadline = time.monotonic() + 240
        while stuck.step < 1:  # inside the sampling loop: the worker now sleeps in its step
            assert not stuck.poll() and time.monotonic() < deadline, stuck.status
            time.sleep(0.05)
        old_pid = pool.client.pid
        stuck.cancel()
        job = video_jobs.start_import_video(config, str(CLIP), jobs.Target(pin_feet=False), clean_up=clean_up,
                                            pool=pool)
        while job.stage != "run" or job.step < 1:  # its load answered, frames read: by a new worker
            assert not job.poll() and time.monotonic() < deadline, job.status
            time.sleep(0.05)
        assert pool.client.pid != old_pid
        job.cancel()
    finally:
        pool.close()


def test_a_missing_model_for_the_clean_up_says_the_clean_up_needs_it(tmp_path, config):
    """The import reads a video; that it needs the model only for the clean-up (on by default) was not said: the
    refusal read like any generation's ("Pick a model folder ... or choose the demo model")."""
    gone = jobs.WorkerConfig(python=config.python, model=str(tmp_path / "moved model"), device="cpu", threads=1)
    with pytest.raises(jobs.JobError) as exc:
        video_jobs.start_import_video(gone, str(CLIP), jobs.Target(), clean_up=0.6)
    assert "does not exist" in str(exc.value) and "Model Clean-Up" in str(exc.value)
