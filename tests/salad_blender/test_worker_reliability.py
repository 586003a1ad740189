"""The client against a scripted worker that misbehaves: stops reading, goes silent, sends badly typed events,
crashes. Nothing may block the caller, raise out of ``poll()`` or lose a job without saying why.

The scripted worker (``FAKE_WORKER``) is a few lines of Python that answer what each request asks for; the
timings of :mod:`salad_blender.worker_watch` are shortened here (the hangs below last an hour).
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time

import numpy as np
import pytest
from proc_utils import pid_gone

from salad_blender import motion_job, protocol, worker_watch
from salad_blender.client import WorkerClient
from salad_blender.worker_pool import WorkerConfig, WorkerPool

HANG = 60.0  # a hang guard only (the scripted worker answers in milliseconds or never)
ENV = {"OMP_WAIT_POLICY": "PASSIVE"}

FAKE_WORKER = r"""
import hashlib, json, os, sys, threading, time
lock, seen, held = threading.Lock(), [], set()
time.sleep(float(os.environ.get("FAKE_STARTUP", "0")))  # start-up (imports, model) before it reads a line
def send(ev):
    with lock:
        sys.stdout.write(json.dumps(ev) + "\n"); sys.stdout.flush()
def later(rid, op, seconds):
    time.sleep(seconds)
    send({"id": rid, "event": "result", "op": op, "data": {"ok": True}})
for line in sys.stdin:
    req = json.loads(line)
    rid, op = req["id"], req["op"]
    seen.append(op)
    if op in ("hello", "version"):
        send({"id": rid, "event": "result", "op": op, "data": {"protocol": 1}})
    elif op == "echo":  # what arrived: the line's hash and every op so far
        data = {"sha": hashlib.sha256(line.encode()).hexdigest(), "seen": seen}
        send({"id": rid, "event": "result", "op": op, "data": data})
    elif op == "hang":  # stops reading stdin and writing stdout (a deadlock, a stopped process)
        send({"id": rid, "event": "started", "op": op})
        time.sleep(3600)
    elif op == "quiet":  # works without a word for a while; its reader still answers hello
        threading.Thread(target=later, args=(rid, op, req["seconds"]), daemon=True).start()
    elif op == "send":  # sends the event it is given
        send({"id": rid, **req["event"]})
    elif op == "hold":  # runs until cancelled (first sending the event it is given, if any)
        if "event" in req:
            send({"id": rid, **req["event"]})
        held.add(rid)
    elif op == "cancel":
        target = req["target"]
        send({"id": rid, "event": "result", "op": op, "data": {"target": target}})
        if target in held:
            held.discard(target)
            send({"id": target, "event": "error", "code": "cancelled", "message": "cancelled"})
    elif op in ("crash", "video"):  # exits at once the first FAKE_CRASHES times (counted in the file FAKE_STATE)
        with open(os.environ["FAKE_STATE"], "a+") as f:
            f.seek(0)
            n = len(f.read())
            f.write("x")
        if n < int(os.environ["FAKE_CRASHES"]):
            print("fake worker: crashing", file=sys.stderr, flush=True)
            os._exit(3)
        send({"id": rid, "event": "result", "op": op, "data": {"crashes": n}})
    else:  # load, edit_real, ...
        send({"id": rid, "event": "result", "op": op, "data": {"sha": hashlib.sha256(line.encode()).hexdigest()}})
"""


@pytest.fixture
def fake(tmp_path):
    (tmp_path / "fake_worker.py").write_text(FAKE_WORKER, encoding="utf-8")
    return tmp_path


@pytest.fixture
def client(fake):
    c = WorkerClient(module="fake_worker", cwd=fake, env=ENV)
    c.start().wait(HANG)
    yield c
    c.close()


@pytest.fixture
def fake_python(fake):
    """A 'Worker Python' that runs the scripted worker (whatever the pool asks it to run)."""
    script = fake / "python"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{fake / "fake_worker.py"}"\n', encoding="utf-8")
    script.chmod(0o755)
    return str(script)


def until(pred, what: str) -> None:
    deadline = time.monotonic() + HANG
    while not pred():
        assert time.monotonic() < deadline, f"not {what} after {HANG} s"
        time.sleep(0.01)


# ------------------------------------------------------------------------ submit never blocks; a deaf worker


def test_a_big_request_to_a_worker_that_stopped_reading_neither_blocks_nor_waits_for_ever(client, monkeypatch):
    """Before: ``submit`` wrote the line on the caller's thread; a worker not reading its stdin (a full 64 KiB pipe)
    blocked Blender's main thread in ``write`` for as long as the worker hung, here an hour."""
    monkeypatch.setattr(worker_watch, "WRITE_STALL", 1.0)
    hung = client.submit({"op": "hang"})
    until(lambda: hung.poll() or hung.state == "running", "started")
    pid = client.pid
    big = {"op": "echo", "pad": "x" * 900_000}  # ~1 MiB: an Edit with Text of a long real motion
    out = []
    sender = threading.Thread(target=lambda: out.append(client.submit(big)), daemon=True)
    sender.start()
    sender.join(HANG)
    assert not sender.is_alive(), "submit blocked on the worker's full stdin pipe"
    job = out[0]
    assert not job.done
    until(lambda: job.poll() is not None and job.done, "given up")  # polling sees the request unread
    for j in (job, hung):
        assert j.error.code == protocol.WORKER_STOPPED
        assert "did not read a request" in j.error.message, j.error.message
    assert "stuck" in client.close_reason and not client.running
    until(lambda: pid_gone(pid), "killed")


def test_start_up_time_is_not_counted_as_time_a_request_went_unread(fake, monkeypatch):
    """Before: the unread clock of a request sent right after start ran from the send, so a worker that took
    longer than WRITE_STALL to start (it reads nothing meanwhile) was called stuck as soon as it said hello."""
    monkeypatch.setattr(worker_watch, "WRITE_STALL", 2.0)
    c = WorkerClient(module="fake_worker", cwd=fake, env={**ENV, "FAKE_STARTUP": "4"})
    try:
        c.start()
        job = c.submit({"op": "echo", "pad": "x" * 900_000})  # more than the pipe holds: unread until it starts
        until(lambda: job.poll() is not None and job.done, "answered")
        assert job.error is None and c.close_reason is None, job.error
    finally:
        c.close()


def test_a_silent_worker_is_pinged_then_given_up(client, monkeypatch):
    """Silence while a request runs: a hello probe, and no answer to it either: the worker is stuck."""
    monkeypatch.setattr(worker_watch, "SILENCE", 0.3)
    monkeypatch.setattr(worker_watch, "PROBE_WAIT", 1.0)
    job = client.submit({"op": "hang"})
    until(lambda: job.poll() is not None and job.done, "given up")
    assert job.error.code == protocol.WORKER_STOPPED and "did not answer a ping" in job.error.message


def test_a_quiet_worker_that_answers_the_ping_is_kept(client, monkeypatch):
    """A long step sends nothing, but the worker's reader answers the probe: the request is left to finish."""
    monkeypatch.setattr(worker_watch, "SILENCE", 0.2)
    monkeypatch.setattr(worker_watch, "PROBE_WAIT", 1.0)
    job = client.submit({"op": "quiet", "seconds": 3.0})
    until(lambda: job.poll() is not None and job.done, "done")
    assert job.error is None and job.result == {"ok": True}
    echo = client.submit({"op": "echo"}).wait(HANG)
    assert "hello" in echo["seen"][1:]  # it was pinged (the first hello is the client's start)


# ------------------------------------------------------------------------ encoded once


def test_a_request_is_encoded_once_and_sent_as_measured(fake_python, monkeypatch):
    """Before: check_request_size encoded the request to measure it and the client encoded it again to send it
    (twice the work for a ~1 MiB Edit with Text of a long motion)."""
    calls = []
    real = protocol.encode_array
    monkeypatch.setattr(protocol, "encode_array", lambda a: calls.append(a.shape) or real(a))
    pool = WorkerPool()
    try:
        op = {"op": "edit_real", "prompt": "a person walks", "joints": np.ones((400, 22, 3), np.float32)}
        job = motion_job.make_job("edit_real", "Edit", WorkerConfig(python=fake_python), op, lambda r: r, pool)
        job.wait(HANG)
        assert job.state == "done", job.message
        assert calls == [(400, 22, 3)]
        assert job.output["sha"] == hashlib.sha256(job._op.line).hexdigest()  # the measured line is what went
    finally:
        pool.close()


# ------------------------------------------------------------------------ badly typed events


@pytest.mark.parametrize("event", [
    {"event": "progress", "step": "3", "steps": 10, "progress": 0.3},
    {"event": "progress", "step": 3, "steps": None, "progress": 0.3},
    {"event": "progress", "step": 3, "steps": 10, "progress": [0.3]},
    {"event": "progress", "step": True, "steps": 10, "progress": 0.3},
    {"event": "result", "op": "send", "data": [1, 2]},
    {"event": "error", "code": None, "message": "x"},
], ids=["str-step", "null-total", "list-progress", "bool-step", "list-data", "null-code"])
def test_a_badly_typed_event_fails_its_job_and_keeps_the_others(client, event):
    """Before: ``int("3")`` passed but ``int(None)`` / ``float([..])`` raised out of ``poll()`` (a traceback in
    Blender's timer) and the client's event queue stopped there for every job of the worker."""
    other = client.submit({"op": "hold"})
    bad = client.submit({"op": "send", "event": event})
    until(lambda: client.poll() is not None and bad.done, "failed")
    assert bad.error.code == protocol.PROTOCOL_ERROR and "cannot read" in bad.error.message
    assert not other.done  # the worker's other job runs on
    other.cancel()
    until(lambda: client.poll() is not None and other.done, "cancelled")
    assert other.cancelled
    seen = client.submit({"op": "echo"}).wait(HANG)["seen"]
    assert seen.count("cancel") == 2  # the bad job was cancelled in the worker too (it need not go on)


def test_the_late_cancelled_answer_of_a_job_failed_here_is_not_an_unclaimed_event(client):
    """Before: a job failed with protocol_error is cancelled in the worker, whose ``cancelled`` answer then came
    out of ``client.poll()`` as an event no job claims (noise for whoever logs those)."""
    bad = client.submit({"op": "hold", "event": {"event": "progress", "step": "3", "steps": 10, "progress": 0.3}})
    unclaimed = []
    until(lambda: unclaimed.extend(client.poll()) is None and bad.done, "failed")
    assert bad.error.code == protocol.PROTOCOL_ERROR
    seen = client.submit({"op": "echo"}).wait(HANG)["seen"]  # one worker thread: the cancel's answers came first
    assert "cancel" in seen
    unclaimed.extend(client.poll())
    assert unclaimed == [] and not client._ended_early  # swallowed, and forgotten once its last word came


# ------------------------------------------------------------------------ cancel map, re-queue


def test_the_cancel_map_forgets_ended_jobs(client):
    """Before: a cancelled job's entry was dropped only when someone asked ``unanswered_cancel()``, which only a
    job waiting behind a stuck worker does: one entry more per Cancel over a whole Blender session."""
    for _ in range(5):
        job = client.submit({"op": "hold"})
        client.cancel(job)
        until(lambda j=job: j.poll() is not None and j.done, "cancelled")
    assert client._cancel_sent == {}


def crash_config(fake_python, fake, crashes: int) -> WorkerConfig:
    return WorkerConfig(python=fake_python, env=(("FAKE_STATE", str(fake / "crashes")),
                                                 ("FAKE_CRASHES", str(crashes))))


def test_a_job_whose_worker_crashed_is_sent_again(fake_python, fake):
    """Before: a crash mid-job failed it (and a worker stopped because it was stuck cancelled every job on it,
    'cancelled, nothing was changed', unasked). Now it is sent again to a new worker, at most twice."""
    pool = WorkerPool()
    try:
        statuses = []
        job = motion_job.make_job("generate", "Generate", crash_config(fake_python, fake, 2), {"op": "crash"},
                                  lambda r: r, pool)
        until(lambda: job.poll() or statuses.append(job.status), "done")
        assert job.state == "done" and job.output == {"crashes": 2} and job.requeues == 2, job.message
        assert any("exited with code 3; trying again on a new one (2 of 2)" in s for s in statuses), statuses
    finally:
        pool.close()


def test_a_video_import_whose_worker_crashed_is_sent_again(fake_python, fake, scene, monkeypatch, tmp_path):
    """The video import job wires its own re-queue (start_import_video, not make_job): a crash while the worker
    reads the video sends the import again to a new worker instead of failing it."""
    from salad_blender import inputs, video_jobs
    monkeypatch.setattr(video_jobs, "place_motion", lambda result, *a, **k: result)  # the fake reads no video
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    pool = WorkerPool()
    try:
        job = video_jobs.start_import_video(crash_config(fake_python, fake, 1), str(clip), inputs.Target(),
                                            pool=pool)
        job.wait(HANG)
        assert job.state == "done" and job.output == {"crashes": 1} and job.requeues == 1, job.message
    finally:
        pool.close()


def test_a_job_that_keeps_crashing_its_worker_fails_saying_so(fake_python, fake):
    pool = WorkerPool()
    try:
        job = motion_job.make_job("generate", "Generate", crash_config(fake_python, fake, 3), {"op": "crash"},
                                  lambda r: r, pool)
        job.wait(HANG)
        assert job.state == "failed" and "tried 3 times" in job.message and "crashing" in job.message, job.message
    finally:
        pool.close()


def test_a_worker_stopped_for_a_reason_requeues_its_jobs_and_closing_cancels_them(fake_python, fake):
    pool = WorkerPool()
    config = crash_config(fake_python, fake, 0)
    try:
        jobs = [motion_job.make_job("generate", "Generate", config, {"op": "hold"}, lambda r: r, pool)
                for _ in range(2)]
        until(lambda: all(not j.poll() and j.stage == "run" for j in jobs), "running")
        first = pool.client.pid
        pool.close(reason="it did not stop a cancelled request within 10 s")
        for j in jobs:
            j.poll()
            assert j.state == "running" and "did not stop a cancelled request" in j.status, j.status
        until(lambda: all(not j.poll() and j.stage == "run" for j in jobs), "running again")
        assert pool.client.pid != first and all(j.requeues == 1 for j in jobs)
        pool.close()  # the user's close (unregister): cancelled, not sent again
        for j in jobs:
            j.poll()
            assert j.state == "cancelled"
    finally:
        pool.close()


def test_closing_a_crashed_worker_ends_its_writer_thread(fake):
    """The writer thread idles on its queue; closing the client of a worker that is gone already must still end
    it and close stdin (else one thread and one pipe were left behind per crash, and close() waited 1 s)."""
    c = WorkerClient(module="fake_worker", cwd=fake, env={**ENV, "FAKE_STATE": str(fake / "crashes"),
                                                          "FAKE_CRASHES": "1"})
    c.start().wait(HANG)
    stdin, writer = c._proc.stdin, c._writer
    job = c.submit({"op": "crash"})
    until(lambda: job.poll() is not None and job.done, "failed")
    assert job.error.code == protocol.WORKER_EXITED
    c.close()
    assert writer.join(0) and stdin.closed


def test_idle_time_before_a_request_is_not_silence(monkeypatch):
    """Nothing polls the client while no job runs, so the watch is not checked while idle: the idle reset inside
    ``check`` never ran then, and the first request after 15 idle seconds was pinged at once (and a stuck one
    was said to have "sent nothing for" its idle time too). Silence now counts from the first busy check."""
    clock = [1000.0]
    monkeypatch.setattr(worker_watch.time, "monotonic", lambda: clock[0])
    watch = worker_watch.WorkerWatch()
    assert watch.check(True, 0.0) == ("", "")  # a first job, answered
    watch.heard_now()
    assert watch.check(False, 0.0) == ("", "")  # it ended; then an hour without a poll
    clock[0] += 3600.0
    assert watch.check(True, 0.0) == ("", "")  # the next job's first poll: no probe for the idle hour
    clock[0] += worker_watch.SILENCE + 1.0
    assert watch.check(True, 0.0) == ("probe", "")  # its own silence still is one
    clock[0] += worker_watch.PROBE_WAIT + 1.0
    silent = worker_watch.SILENCE + worker_watch.PROBE_WAIT + 2.0  # since that job's first poll, not the hour
    assert watch.check(True, 0.0) == ("stuck", f"it sent nothing for {silent:.0f} s and did not answer a ping")
