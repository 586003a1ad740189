"""A worker stuck in a cancelled request is replaced by the next job (real worker, tiny model, no Blender).

Before: Cancel ended the job in the panel at once, but the worker stayed inside the step; the next job's
``load`` queued behind it and the panel said "Loading the model" for as long as the step lasted (for ever
when hung), with nothing telling the user to stop the worker.
"""

import sys
import time

from salad_blender import motion_job
from salad_blender.inputs import JobError
from salad_blender.worker_pool import WorkerConfig, WorkerPool

HANG = 120  # seconds: fails only a stuck test (the stuck step below sleeps far longer)
STUCK_STEP = 3600  # seconds the worker sleeps after each sampling step: a hung step


def test_the_next_job_restarts_a_worker_stuck_in_a_cancelled_request(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(motion_job, "CANCEL_GRACE", 1.0, raising=False)  # shortened (the step never ends)
    config = WorkerConfig(python=sys.executable, model=str(tiny_model_dir), device="cpu", threads=1,
                          env=(("SALAD_WORKER_DEBUG_STEP_DELAY", str(STUCK_STEP)),))
    pool = WorkerPool()
    try:
        op = {"op": "generate", "prompt": "a person walks", "frames": 40, "seed": 0, "steps": 3}
        stuck = motion_job.make_job("generate", "Generate", config, op, lambda r: r, pool)
        deadline = time.monotonic() + HANG
        while stuck.step < 1:  # inside the sampling loop: the worker now sleeps in its step
            assert not stuck.poll() and time.monotonic() < deadline, stuck.status
            time.sleep(0.05)
        old_pid = pool.client.pid
        stuck.cancel()
        assert stuck.state == "cancelled"
        check = motion_job.make_job("check", "Check", config, {"op": "model_info"}, lambda r: r, pool)
        check.wait(HANG)
        assert check.state == "done", check.message
        assert check.output["name"] and pool.client.pid != old_pid  # a new worker answered
    finally:
        pool.close()


def test_a_worker_python_that_never_answers_hello_is_stopped(tmp_path, monkeypatch):
    """'Worker Python' set to a program that starts but does not speak the protocol (here: prints lines forever).
    Before: the job failed after HELLO_TIMEOUT but the process was kept running (burning CPU), and every
    following job waited the whole timeout again on it."""
    monkeypatch.setattr(motion_job, "HELLO_TIMEOUT", 1.0)  # shortened: the program never answers
    chatty = tmp_path / "python"
    chatty.write_text("#!/bin/sh\nwhile true; do echo not-json; sleep 0.01; done\n", encoding="utf-8")
    chatty.chmod(0o755)
    pool = WorkerPool()
    try:
        job = motion_job.make_job("check", "Check", WorkerConfig(python=str(chatty)), {"op": "model_info"},
                                  lambda r: r, pool)
        job.wait(HANG)
        assert job.state == "failed" and "did not answer" in job.message
        assert not pool.running  # stopped: the next job starts a new one instead of waiting on this one
    finally:
        pool.close()


def test_a_job_with_other_worker_settings_does_not_kill_a_running_one(tiny_model_dir):
    """Preferences' CPU Threads changed while a generation runs, then Check Worker. Before: the pool closed the
    busy worker for the new settings, and the generation ended as 'cancelled, nothing was changed' unasked."""
    slow = WorkerConfig(python=sys.executable, model=str(tiny_model_dir), device="cpu", threads=1,
                        env=(("SALAD_WORKER_DEBUG_STEP_DELAY", "0.5"),))
    other = WorkerConfig(python=sys.executable, model=str(tiny_model_dir), device="cpu", threads=2, env=slow.env)
    pool = WorkerPool()
    try:
        op = {"op": "generate", "prompt": "a person walks", "frames": 40, "seed": 0, "steps": 3}
        gen = motion_job.make_job("generate", "Generate", slow, op, lambda r: r, pool)
        deadline = time.monotonic() + HANG
        while gen.stage != "run":
            assert not gen.poll() and time.monotonic() < deadline, gen.status
            time.sleep(0.05)
        try:
            motion_job.make_job("check", "Check", other, {"op": "model_info"}, lambda r: r, pool)
        except JobError as exc:
            assert "busy with another job" in str(exc)
        else:
            raise AssertionError("the check was started on a new worker")
        gen.wait(HANG)
        assert gen.state == "done", gen.message
        check = motion_job.make_job("check", "Check", other, {"op": "model_info"}, lambda r: r, pool)  # now idle
        assert check.wait(HANG).state == "done", check.message
    finally:
        pool.close()
