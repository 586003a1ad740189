"""Add-on bugs found by the session-8 audit (fifth pass), each pinned by a test that failed before its fix.

Headless bpy; no worker process (a scripted pool stands in where a job is started).
"""

import sys

import numpy as np
import pytest
from needs import require_module

bpy = require_module("bpy")

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, armature, jobs, metadata, preview_actions  # noqa: E402


class _Answered:
    """A worker request that is already answered (what a client's submit returns)."""

    done, progress, step, steps, stage, error = True, 1.0, 0, 0, "", None

    def __init__(self, result=None):
        self.result = result or {}

    def poll(self):
        return []


class _Pool:
    """Stands in for the worker pool: hands out a client whose requests are answered at once."""

    def __init__(self):
        self.hello = _Answered({"protocol": 1})
        self.client = self

    def get(self, config):
        return self

    def submit(self, request):
        return _Answered()


@pytest.fixture
def salad_rig(scene):
    obj = armature.create_smpl22_armature("Body", synthetic_walk(60), with_mesh=False)
    act = actions.apply_motion(obj, synthetic_walk(60), prompt="a person walks", bone_map="smpl22", start_frame=1,
                               seed=3, steps=10, guidance=2.5)
    bpy.context.view_layer.objects.active = obj
    return obj, act


@pytest.mark.parametrize("value", ["no", "False", "0", 0, False, "off"])
def test_a_preview_mark_that_says_no_protects_the_action(salad_rig, value):
    """``salad_preview = "no"`` (hand-edited) counted as a preview, the only kind of Action the add-on deletes."""
    _, act = salad_rig
    act[metadata.PREVIEW_KEY] = value
    assert not preview_actions.is_preview(act)
    with pytest.raises(ValueError, match="not a SALAD preview"):
        preview_actions.BlenderPreviewStore("Body").discard(act)
    assert act.name in bpy.data.actions


@pytest.mark.parametrize("value", [True, 1, "yes", "True"])
def test_a_preview_mark_that_says_yes_is_a_preview(salad_rig, value):
    _, act = salad_rig
    act[metadata.PREVIEW_KEY] = value
    assert preview_actions.is_preview(act)


def test_an_unreadable_preview_mark_is_not_a_preview_and_is_named_as_broken(salad_rig):
    _, act = salad_rig
    act[metadata.PREVIEW_KEY] = "maybe"
    assert not preview_actions.is_preview(act)
    assert metadata.PREVIEW_KEY in metadata.metadata_problem(act)


@pytest.mark.parametrize("key", ["salad_pin_feet", "salad_in_place"])
def test_yes_no_metadata_reads_as_what_it_says(salad_rig, key):
    """``salad_pin_feet = "no"`` read as True (``bool("no")``): an edit of that action pinned the feet anyway."""
    _, act = salad_rig
    act[key] = "no"
    assert metadata.read_metadata(act)[key] is False
    act[key] = "yes"
    assert metadata.read_metadata(act)[key] is True
    act[key] = "perhaps"
    with pytest.raises(metadata.MetadataError, match=key):
        metadata.read_metadata(act)


def test_an_edit_of_an_action_marked_no_pin_feet_does_not_pin(salad_rig):
    obj, act = salad_rig
    act["salad_pin_feet"] = "no"
    config = jobs.WorkerConfig(python=sys.executable, model="demo", device="cpu", threads=1)
    job = jobs.start_edit(config, obj, mirror="all", pool=_Pool())
    walk = synthetic_walk(60).astype(np.float32)
    new = job._apply({"joints": walk, "contacts": np.ones((60, 4), bool), "meta": {"seed": 3, "edits": []}})
    assert new is not act and new["salad_pin_feet"] is False


# ------------------------------------------------------------------------ a request longer than the worker reads


def test_a_request_too_long_for_the_worker_fails_at_once_and_the_next_one_works():
    """The worker skips a line over MAX_LINE_BYTES and answers with id null; the client's job for it waited
    forever (state 'queued'), so an add-on job hung at its status line. Now the client does not send it."""
    from salad_blender.client import WorkerClient, WorkerError
    from salad_blender.protocol import LINE_TOO_LONG

    client = WorkerClient()
    try:
        client.start().wait(60)
        job = client.submit({"op": "edit_real", "prompt": "a person walks", "mirror": "all",
                             "joints": np.zeros((4000, 22, 3), np.float32)})
        assert job.done and job.error is not None and job.error.code == LINE_TOO_LONG  # at once, unsent
        assert "MiB" in job.error.message and "edit_real" in job.error.message
        with pytest.raises(WorkerError):
            job.wait(1)
        assert client.call("hello", timeout=60)["protocol"] == 1  # the worker heard nothing odd
        assert client.poll() == []  # and said nothing no job could claim
    finally:
        client.close()


def test_the_add_on_refuses_a_motion_too_long_to_send_before_the_worker_starts():
    from salad_blender import motion_job
    from salad_blender.protocol import MAX_LINE_BYTES

    used = []

    class Pool(_Pool):
        def get(self, config):
            used.append(config)
            return self

    def op(frames):
        return {"op": "edit_real", "prompt": "a person walks", "mirror": "all", "mirror_method": "geometric",
                "joints": np.zeros((frames, 22, 3), np.float32)}

    config = jobs.WorkerConfig(python=sys.executable, model="demo", device="cpu", threads=1)
    with pytest.raises(jobs.JobError) as exc:
        jobs.make_job("edit_real", "Mirror (real motion)", config, op(4000), lambda r: r, Pool())
    assert not used  # nothing spawned, nothing sent
    message = str(exc.value)
    assert "4000 frames" in message and "shorter frame range" in message
    most = int(message.split("holds at most ")[1].split(" frames")[0])
    assert 2800 < most < 3000  # 1 MiB of base64 float32 joints: 352 bytes a frame
    with pytest.raises(jobs.JobError):  # one frame more does not fit
        motion_job.check_request_size("Mirror (real motion)", op(most + 1))
    job = jobs.make_job("edit_real", "Mirror (real motion)", config, op(most), lambda r: r, Pool())
    assert used
    assert len(job._op.line) <= MAX_LINE_BYTES  # what it says fits does fit: the very line the client sends


# ------------------------------------------------------------------------ a worker that sends garbage

FAKE_WORKER = r"""
import json, sys
def send(ev):
    sys.stdout.write(json.dumps(ev) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    rid, op = req["id"], req["op"]
    if op == "hello":
        send({"id": rid, "event": "result", "op": op, "data": {"protocol": 1}})
    elif op == "generate":  # a result whose array does not decode (data is a number, not base64)
        bad = {"dtype": "float32", "shape": [2], "data": 5}
        send({"id": rid, "event": "result", "op": op, "data": {"joints": bad}})
    elif op == "attention":  # an event with an id no dict can hold, then nested too deep for the parser
        send({"id": [rid], "event": "result", "op": op, "data": {}})
        sys.stdout.write("[" * 100000 + "\n"); sys.stdout.flush()
        send({"id": rid, "event": "result", "op": op, "data": {"ok": True}})
    else:
        send({"id": rid, "event": "result", "op": op, "data": {"ok": True}})
"""


def test_a_corrupt_event_fails_its_job_and_the_client_keeps_reading(tmp_path):
    """An event whose array data is not base64 text raised TypeError in the client's reader thread, which ended
    without queueing the worker's exit: that job and every later one waited forever. Now the event's own job fails
    (bad_json, with the reason) and the events after it are read."""
    from salad_blender.client import WorkerClient, WorkerError

    (tmp_path / "fake_salad_worker.py").write_text(FAKE_WORKER)
    client = WorkerClient(module="fake_salad_worker", env={"PYTHONPATH": str(tmp_path)})
    try:
        client.start().wait(60)
        job = client.submit({"op": "generate", "prompt": "a person walks"})
        with pytest.raises(WorkerError) as exc:
            job.wait(60)
        assert exc.value.code == "bad_json" and "TypeError" in exc.value.message
        assert client.call("load", timeout=60) == {"ok": True}  # the reader thread lives on
        assert client.call("attention", timeout=60) == {"ok": True}  # an unhashable id and a too-deep line skipped
        assert [ev["code"] for ev in client.poll()] == ["bad_json", "bad_json"]
    finally:
        client.close()


# ------------------------------------------------------------------------ a chatty worker

CHATTY_WORKER = r"""
import json, sys
for line in sys.stdin:
    req = json.loads(line)
    err = sys.stderr.buffer
    for k in range(2000):  # 2,000 log lines: far past the pipe's buffer
        err.write(b"warning %d from a chatty library\n" % k)
    for k in range(600_000):  # a progress bar redrawn with carriage returns, never a newline: 30 MB
        err.write(b"\r[" + b"#" * 40 + b"] 99% ")
    err.write(b"\nlast words\n")
    err.flush()
    sys.stdout.write(json.dumps({"id": req["id"], "event": "result", "op": req["op"], "data": {"protocol": 1}}) + "\n")
    sys.stdout.flush()
"""


def test_a_stderr_flood_neither_blocks_the_worker_nor_fills_the_client_memory(tmp_path):
    """The client drains stderr in a thread (a full pipe would block the worker mid-step) into a bounded ring.
    Before: a progress bar without newlines was read whole as one line — 30 MB held at once for a 4,000-character
    tail entry; now a long line is read in pieces and the rest of it dropped."""
    import time
    import tracemalloc

    from salad_blender.client import MAX_STDERR_LINE, WorkerClient

    (tmp_path / "chatty_salad_worker.py").write_text(CHATTY_WORKER)
    client = WorkerClient(module="chatty_salad_worker", env={"PYTHONPATH": str(tmp_path)}, stderr_lines=100)
    tracemalloc.start()
    try:
        assert client.start().wait(120)["protocol"] == 1
        assert client.call("hello", timeout=120)["protocol"] == 1  # answered: the worker was never blocked
        deadline = time.monotonic() + 60  # a hang guard only
        while client.stderr_tail(1) != "last words" and time.monotonic() < deadline:
            time.sleep(0.05)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        client.close()
    assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MiB traced while reading stderr"  # 30 MB when read whole
    tail = client.stderr_tail().split("\n")  # (the bar's carriage returns are inside one entry)
    assert tail[-1] == "last words" and len(tail) == 100
    bar = tail[-2]
    assert bar.startswith("\r[####") and bar.endswith(" …") and len(bar) == MAX_STDERR_LINE + 2


# ------------------------------------------------------------------------ non-finite numbers in hand-edited metadata


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_guidance_in_the_metadata_is_named_not_a_traceback(salad_rig, value):
    """``salad_guidance = nan`` (hand-edited): the Mirror operator showed a Python traceback (JSON cannot carry NaN;
    json.dumps raised inside the operator). Now the property is named as broken and the edit refused up front."""
    obj, act = salad_rig
    act["salad_guidance"] = value
    assert "salad_guidance" in metadata.metadata_problem(act)
    config = jobs.WorkerConfig(python=sys.executable, model="demo", device="cpu", threads=1)
    with pytest.raises(jobs.JobError, match="salad_guidance"):
        jobs.start_edit(config, obj, mirror="all", pool=_Pool())


def test_a_request_with_a_non_finite_number_is_refused_before_the_worker():
    used = []

    class Pool(_Pool):
        def get(self, config):
            used.append(config)
            return self

    config = jobs.WorkerConfig(python=sys.executable, model="demo", device="cpu", threads=1)
    with pytest.raises(jobs.JobError, match="'guidance' is not a finite number"):
        jobs.make_job("edit", "Mirror", config, {"op": "edit", "guidance": float("nan")}, lambda r: r, Pool())
    assert not used


def test_a_request_value_json_cannot_carry_is_a_job_error_not_a_traceback():
    config = jobs.WorkerConfig(python=sys.executable, model="demo", device="cpu", threads=1)
    with pytest.raises(jobs.JobError, match="cannot be sent to the model worker"):
        jobs.make_job("edit", "Mirror", config, {"op": "edit", "word": object()}, lambda r: r, _Pool())
