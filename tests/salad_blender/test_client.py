"""salad_blender.client against the real worker: jobs, polling, faults, cancel, no orphans.

The client must run inside Blender, so it may import neither torch nor salad_model (checked in a
fresh interpreter). The shared worker sleeps 100 ms after each denoising step
(``SALAD_WORKER_DEBUG_STEP_DELAY``) so that a cancel's cost can be counted in steps.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from proc_utils import pid_gone

from salad_blender import protocol as CP
from salad_blender.client import Job, WorkerClient, WorkerError
from salad_model.serving import protocol as WP

STEP_DELAY = 0.1
TIMEOUT = 300.0  # a hang guard only: nothing here is a speed bound (speed: benchmarks/)
HANG = 120.0  # how long a process may take to go away before the test calls it stuck
ENV = {"OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pid_gone(pid):
            return True
        time.sleep(0.05)
    return pid_gone(pid)


def poll_until(job: Job, pred, timeout: float = TIMEOUT) -> list[dict]:
    """Drive job.poll() the way headless Blender / tools/batch.py do; return the events seen."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while not pred(job):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job!r} did not get there; events {seen[-5:]}")
        seen += job.poll()
        time.sleep(0.002)
    return seen


# ------------------------------------------------------------------------------------------------
# Codec: the add-on's copy and the worker's copy read each other


ARRAYS = [
    np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
    np.array([[True, False], [False, True]]),
    np.arange(-5, 5, dtype=np.int64),
    np.array(3.5, dtype=np.float64),  # 0-d
    np.zeros((0, 22, 3), np.float32),  # empty
    np.arange(12, dtype=">f4").reshape(3, 4),  # big-endian input travels as little-endian
    np.arange(40, dtype=np.float16).reshape(5, 8)[:, ::2],  # non-contiguous
    np.array([0, 255, 7], np.uint8),
]


@pytest.mark.parametrize("a", ARRAYS, ids=lambda a: f"{a.dtype.str}{list(a.shape)}")
@pytest.mark.parametrize("enc, dec", [(WP.encode_array, CP.decode_array), (CP.encode_array, WP.decode_array),
                                      (CP.encode_array, CP.decode_array)], ids=["w2c", "c2w", "c2c"])
def test_codecs_interoperate(a, enc, dec):
    wire = enc(a)
    assert set(wire) == {"dtype", "shape", "data"} and wire["shape"] == list(a.shape)
    assert wire["dtype"] == a.dtype.name
    b = dec(wire)
    assert b.dtype == a.dtype.newbyteorder("=") and b.shape == a.shape and b.flags.writeable
    np.testing.assert_array_equal(b, a)


def test_codec_wire_format_is_little_endian_base64():
    import base64

    wire = CP.encode_array(np.array([1.0, -2.0], np.float32))
    assert base64.b64decode(wire["data"]) == b"\x00\x00\x80\x3f\x00\x00\x00\xc0"
    assert WP.encode_array(np.array([1.0, -2.0], np.float32)) == wire


def test_codecs_reject_bad_arrays():
    good = CP.encode_array(np.ones(4, np.float32))
    for bad in [{**good, "shape": [5]}, {**good, "dtype": "complex64"}, {**good, "data": "@@@"},
                {**good, "shape": [-4]}]:
        with pytest.raises(ValueError):
            CP.decode_array(bad)
        with pytest.raises(ValueError):
            WP.decode_array(bad)
    with pytest.raises(ValueError):
        CP.encode_array(np.array(["text"]))


def test_nested_results_round_trip():
    data = {"joints": np.ones((2, 22, 3), np.float32), "meta": {"prompt": "walk", "edits": [{"scale": 2.0}]},
            "tokens": ["[CLS]", "walk"], "source": None}
    for back in (CP.from_wire(WP.to_wire(data)), WP.from_wire(CP.to_wire(data))):
        assert back["meta"] == data["meta"] and back["tokens"] == data["tokens"] and back["source"] is None
        np.testing.assert_array_equal(back["joints"], data["joints"])


def test_client_imports_neither_torch_nor_salad_model():
    code = ("import sys, salad_blender.client\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'salad_model')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------
# A running worker


@pytest.fixture(scope="module")
def client(tiny_model_dir):
    c = WorkerClient(env={**ENV, "SALAD_WORKER_DEBUG_STEP_DELAY": str(STEP_DELAY)})
    hello = c.start().wait(TIMEOUT)
    assert hello["protocol"] == CP.PROTOCOL_VERSION and c.info == hello and hello["pid"] == c.pid
    info = c.call("load", model=str(tiny_model_dir), device="cpu", timeout=TIMEOUT)
    assert info["name"] == "random-tiny"
    yield c
    pid = c.pid
    c.close()
    assert pid is None or pid_gone(pid)


def test_generate_driven_by_poll_with_callbacks(client):
    progressed, finished, seen_events = [], [], []
    job = client.submit({"op": "generate", "prompt": "a person walks", "frames": 40, "seed": 2, "steps": 3},
                        on_event=lambda j, ev: seen_events.append(ev["event"]),
                        on_progress=lambda j: progressed.append(j.progress),
                        on_done=finished.append)
    assert not job.done and job.result is None
    events = poll_until(job, lambda j: j.done)
    assert [ev["event"] for ev in events] == ["started", "progress", "progress", "progress", "result"]
    assert seen_events == [ev["event"] for ev in events]  # callbacks saw the same, in order
    assert progressed == pytest.approx([1 / 3, 2 / 3, 1.0], abs=1e-5)
    assert finished == [job] and job.state == "done" and job.error is None and job.progress == 1.0
    assert job.poll() == []  # events are handed out once
    r = job.result
    assert r["joints"].shape == (40, 22, 3) and r["joints"].dtype == np.float32
    assert r["features"].shape == (40, 263) and r["contacts"].dtype == bool
    assert r["meta"]["seed"] == 2 and r["meta"]["steps"] == 3 and r["meta"]["frames"] == 40
    assert job.wait(0) is r


def test_errors_become_worker_errors_and_the_worker_stays(client):
    pid = client.pid
    job = client.submit({"op": "generate", "prompt": "", "frames": 40})
    with pytest.raises(WorkerError) as info:
        job.wait(TIMEOUT)
    assert info.value.code == "invalid_input" and "empty" in info.value.message
    assert job.done and job.state == "failed" and job.error is info.value and not job.cancelled
    assert job.wait(TIMEOUT, raise_error=False) is None
    for req, code in [({"op": "frobnicate"}, "unknown_op"),
                      ({"op": "generate", "prompt": "walk", "frames": 44, "steps": "many"}, "invalid_input"),
                      ({"op": "load", "model": "/nonexistent/model"}, "model_error")]:
        with pytest.raises(WorkerError) as info:
            client.submit(req).wait(TIMEOUT)
        assert info.value.code == code, info.value
    assert client.running and client.pid == pid
    tokens = client.call("prompt_tokens", prompt="a person walks", timeout=TIMEOUT)
    assert tokens["tokens"][1:-1] == ["a", "person", "walks"]


def test_request_ids(client):
    job = client.submit({"id": "mine", "op": "generate", "prompt": "a person walks", "frames": 40, "steps": 50})
    with pytest.raises(ValueError, match="in flight"):
        client.submit({"id": "mine", "op": "model_info"})
    with pytest.raises(ValueError, match="op"):
        client.submit({"prompt": "no op"})
    job.cancel()
    assert job.wait(TIMEOUT, raise_error=False) is None and job.cancelled
    assert client.cancel(job) is None  # already done: nothing to send


def test_cancel_costs_at_most_one_step(client):
    job = client.submit({"op": "generate", "prompt": "a person walks", "frames": 40, "steps": 200})
    early = poll_until(job, lambda j: j.step >= 2)
    ack = job.cancel()
    late = poll_until(job, lambda j: j.done)
    # the worker's step count when it read the cancel decides, not arrival times (latency: benchmarks/)
    steps = [ev["step"] for ev in early + late if ev["event"] == "progress"]
    assert job.cancelled and job.error.code == "cancelled" and job.result is None
    seen = job.error.event["cancel_seen_step"]
    assert max(steps) <= seen and job.error.event["step"] - seen <= 1
    assert job.error.event["step"] < 200
    assert ack.wait(TIMEOUT) == {"target": job.id, "state": "running"}


def test_close_mid_generation_leaves_no_process(client):
    """Runs last on the shared client: close() ends the worker cleanly (EOF → cancel → exit 0)."""
    pid = client.pid
    job = client.submit({"op": "generate", "prompt": "a person walks", "frames": 40, "steps": 500})
    poll_until(job, lambda j: j.step >= 1)
    assert client.close() == 0  # exited by itself on EOF: not killed by a signal
    assert job.done and job.cancelled
    assert not client.running and pid_gone(pid)
    assert client.close() == 0  # idempotent


# ------------------------------------------------------------------------------------------------
# Crashes, restarts, configuration, cleanup


def test_crash_is_reported(tmp_path, tiny_model_dir):
    c = WorkerClient(env={**ENV, "SALAD_TEST_MARK": "42"}, cwd=tmp_path, stderr_lines=3)
    try:
        c.start().wait(TIMEOUT)
        pid = c.pid
        assert os.path.realpath(f"/proc/{pid}/cwd") == os.path.realpath(tmp_path)
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"SALAD_TEST_MARK=42" in environ and b"OMP_WAIT_POLICY=PASSIVE" in environ
        assert f"SALAD_WORKER_PARENT_PID={os.getpid()}".encode() in environ
        job = c.submit({"op": "load", "model": str(tiny_model_dir), "device": "cpu"})
        poll_until(job, lambda j: j.state == "running")
        os.kill(pid, signal.SIGKILL)  # a crash in the middle of a request
        with pytest.raises(WorkerError) as info:
            job.wait(TIMEOUT)
        err = info.value
        assert err.code == "worker_exited" and err.event["returncode"] == -signal.SIGKILL
        assert "signal 9" in err.message and "ready" in err.event["stderr"]  # the log travels with it
        assert len(c.stderr_tail().splitlines()) <= 3  # ring buffer
        assert not c.running and c.returncode == -signal.SIGKILL
        unclaimed = c.poll()
        assert [ev["event"] for ev in unclaimed] == ["exit"] and unclaimed[0]["code"] == "worker_exited"
        late = c.submit({"op": "model_info"})  # a dead worker fails new jobs at once
        assert late.done and late.error.code == "worker_exited"
    finally:
        c.close()
    assert pid_gone(pid)


def test_worker_that_cannot_start_reports_its_stderr():
    c = WorkerClient(module="salad_model.no_such_worker", env=ENV)
    with pytest.raises(WorkerError) as info:
        c.start().wait(TIMEOUT)
    assert info.value.code == "worker_exited" and info.value.event["returncode"] == 1
    assert "No module named" in info.value.message and "No module named" in c.stderr_tail()
    c.close()
    with pytest.raises(FileNotFoundError):
        WorkerClient(python="/nonexistent/bin/python").start()


FAKE_WORKER = textwrap.dedent("""
    import json, sys
    for line in sys.stdin:
        req = json.loads(line)
        print(json.dumps({"id": req["id"], "event": "result", "op": req["op"], "data": {"protocol": 99}}),
              flush=True)
""")


def test_protocol_mismatch_is_detected(tmp_path):
    (tmp_path / "fake_worker.py").write_text(FAKE_WORKER)
    c = WorkerClient(module="fake_worker", cwd=tmp_path, env=ENV)
    try:
        with pytest.raises(WorkerError) as info:
            c.start().wait(TIMEOUT)
        assert info.value.code == "protocol_mismatch" and "99" in info.value.message
        assert c.info is None
    finally:
        assert c.close() == 0


def test_garbage_collected_client_ends_its_worker():
    c = WorkerClient(env=ENV)
    c.start().wait(TIMEOUT)
    pid = c.pid
    del c
    gc.collect()
    assert wait_gone(pid, HANG)


KILLED_CLIENT = textwrap.dedent("""
    import os, sys, time
    from salad_blender.client import WorkerClient

    model, mode = sys.argv[1], sys.argv[2]
    c = WorkerClient(env={"OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1",
                          "SALAD_WORKER_DEBUG_STEP_DELAY": "0.05"})
    c.start().wait(60)
    if mode == "generating":
        c.call("load", model=model, device="cpu", timeout=120)
        job = c.submit({"op": "generate", "prompt": "a person walks", "frames": 40, "steps": 1000})
        while job.step < 1:
            job.poll()
            time.sleep(0.01)
    else:  # a forked child keeps the worker's stdin pipe open: no EOF, parent death must do it
        holder = os.fork()
        if holder == 0:
            time.sleep(60)
            os._exit(0)
        print("HOLDER", holder, flush=True)
    print("WORKER", c.pid, flush=True)
    time.sleep(120)
""")


@pytest.mark.parametrize("mode", ["generating", "pipe-held-open"])
def test_sigkilled_client_leaves_no_worker(mode, tiny_model_dir, tmp_path):
    script = tmp_path / "client_script.py"
    script.write_text(KILLED_CLIENT)
    proc = subprocess.Popen([sys.executable, str(script), str(tiny_model_dir), mode], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, **ENV})
    pids: dict[str, int] = {}
    try:
        while "WORKER" not in pids:
            line = proc.stdout.readline()
            assert line, f"client script ended early (code {proc.poll()})"
            name, pid = line.split()
            pids[name] = int(pid)
        assert not pid_gone(pids["WORKER"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=HANG)
        assert wait_gone(pids["WORKER"], HANG), f"worker {pids['WORKER']} outlived its killed client ({mode})"
    finally:
        for name in ("HOLDER", "WORKER"):
            if name in pids and not pid_gone(pids[name]):
                os.kill(pids[name], signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
