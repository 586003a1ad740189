"""Shot operations of the worker as a real subprocess: progress over all windows, cancel, results, errors."""

import numpy as np
import pytest
from test_worker import STEP_DELAY, RawWorker, error_of

from salad_model.serving import protocol as P

SEGMENTS = [{"prompt": "a person walks forward", "seconds": 3}, {"prompt": "a person waves", "seconds": 2.4, "seed": 4}]


@pytest.fixture(scope="module")
def worker(tiny_model_dir):
    w = RawWorker(**{"SALAD_WORKER_DEBUG_STEP_DELAY": str(STEP_DELAY / 10)})
    w.result("load", model=str(tiny_model_dir), device="cpu")
    assert {"compose", "continue", "inbetween", "regenerate_parts"} <= set(w.result("hello")["ops"])
    yield w
    assert w.close() == 0 and not w.bad_lines


def test_compose_reports_every_step_of_every_window(worker):
    rid = worker.next_id()
    worker.send({"id": rid, "op": "compose", "segments": SEGMENTS, "seed": 1, "steps": 3})
    final = worker.finish(rid)
    assert final["event"] == "result", final
    steps = [(ev["step"], ev["steps"]) for _, ev in worker.by_id[rid] if ev["event"] == "progress"]
    assert steps == [(i, 6) for i in range(1, 7)]  # two windows × three steps, one running total
    d = P.from_wire(final["data"])
    assert d["joints"].shape == (108, 22, 3) and d["contacts"].shape == (108, 4)
    segs = d["meta"]["shot"]["segments"]
    assert [s["prompt"] for s in segs] == ["a person walks forward", "a person waves"] and segs[1]["seed"] == 4
    again = worker.result("compose", segments=SEGMENTS, seed=1, steps=3)
    assert np.array_equal(d["joints"], again["joints"])


def test_compose_trim_last(worker):
    """``trim_last`` reaches the director, on when the field is absent (the default, recorded in meta.shot.options);
    ``trim_last: false`` gives the old untrimmed shot: the frames before the last segment the same, its own not."""
    base = worker.result("compose", segments=SEGMENTS, seed=1, steps=3)
    m = worker.result("compose", segments=SEGMENTS, seed=1, steps=3, trim_last=True)
    assert m["meta"]["shot"]["options"]["trim_last"] is True and base["meta"]["shot"]["options"]["trim_last"] is True
    assert np.array_equal(m["joints"], base["joints"])
    off = worker.result("compose", segments=SEGMENTS, seed=1, steps=3, trim_last=False)
    assert off["meta"]["shot"]["options"]["trim_last"] is False
    start = m["meta"]["shot"]["segments"][1]["start"]
    assert m["joints"].shape == off["joints"].shape and start == 60
    assert np.abs(m["joints"][:start] - off["joints"][:start]).max() <= 1e-5
    assert np.abs(m["joints"][start:] - off["joints"][start:]).max() > 1e-3


def test_compose_cancel(worker):
    rid = worker.next_id()
    worker.send({"id": rid, "op": "compose", "segments": SEGMENTS, "steps": 100})
    worker.until(rid, lambda ev: ev["event"] == "progress" and ev["step"] >= 2)
    worker.send({"id": worker.next_id(), "op": "cancel", "target": rid})
    final = worker.finish(rid)
    assert final["code"] == "cancelled" and final["step"] < 200


def test_continue_inbetween_and_parts(worker):
    src = worker.result("generate", prompt="a person walks", frames=60, seed=2, steps=2)["joints"]
    arr = P.encode_array(np.asarray(src, np.float32))
    c = worker.result("continue", joints=arr, prompt="a person runs", seconds=2, steps=2)
    assert c["joints"].shape == (60 + 40, 22, 3) and c["meta"]["shot"]["kind"] == "continue"
    b = worker.result("inbetween", joints_a=arr, joints_b=arr, prompt="a person turns", seconds=2, steps=2)
    assert b["joints"].shape == (60 + 40 + 60, 22, 3) and b["meta"]["shot"]["seams"] == [60, 100]
    err = error_of(worker, "continue", joints=P.encode_array(np.asarray(src[:16], np.float32)), prompt="run",
                   seconds=2)
    assert err["code"] == "invalid_input" and "at least the 1.0 s conditioning window" in err["message"]
    p = worker.result("regenerate_parts", joints=arr, prompt="a person waves", parts=["arms"], steps=2)
    assert p["meta"]["shot"]["parts"] == ["left_arm", "right_arm"] and p["joints"].shape == (60, 22, 3)
    legs = [worker.result("regenerate_parts", joints=arr, prompt="a person kicks", parts="legs", steps=2, **kw)
            for kw in ({}, {"keep_path": True})]
    assert [m["meta"]["shot"]["parts"] for m in legs] == [["root", "left_leg", "right_leg"], ["left_leg", "right_leg"]]
    rid = worker.next_id()
    worker.send({"id": rid, "op": "regenerate_parts", "source_prompt": "a person walks", "frames": 48, "seed": 1,
                 "prompt": "a person waves", "parts": "upper", "steps": 2})
    assert worker.finish(rid)["event"] == "result"
    assert [ev["step"] for _, ev in worker.by_id[rid] if ev["event"] == "progress"] == [1, 2, 3, 4]


@pytest.mark.parametrize("op,fields,pattern", [
    ("compose", {"segments": [{"prompt": "", "seconds": 3}]}, "segment 1 has an empty prompt"),
    ("compose", {"segments": [{"prompt": "walk", "seconds": 0.5}]}, "it must be within 2–300 s"),
    ("compose", {"segments": [{"prompt": "walk", "seconds": 200}, {"prompt": "run", "seconds": 200}]},
     "the limit is 300 s"),
    ("compose", {"segments": "walk:3"}, "'segments' must be a list"),
    ("compose", {"segments": [{"prompt": "walk", "secs": 3}]}, "segment 1 must be an object"),
    ("continue", {"prompt": "walk", "seconds": 2}, "continue needs 'joints'"),
    ("regenerate_parts", {"source_prompt": "walk", "prompt": "wave", "parts": []}, "no body part selected"),
    ("regenerate_parts", {"prompt": "wave", "parts": "arms"}, "needs the source as 'joints' or as 'source_prompt'"),
    ("regenerate_parts", {"source_prompt": "walk", "prompt": "wave", "parts": 5}, "parts must be a name"),
    ("compose", {"segments": [{"prompt": "walk", "seconds": 3, "seed": 2**70}]}, "seed must be an integer within"),
    ("continue", {"joints": P.encode_array(np.zeros((60, 22, 3), np.int32)), "prompt": "run", "seconds": 2},
     "'joints' must be a float array"),
    ("compose", {"segments": [], "resample": 11}, "'resample' must be within"),
    ("compose", {"segments": [{"prompt": "walk", "seconds": 3}], "trim_last": "yes"}, "'trim_last' must be true or"),
    ("continue", {"prompt": "walk", "seconds": 2, "trim_last": True}, "unknown field(s): 'trim_last'"),
])
def test_bad_shot_requests(worker, op, fields, pattern):
    err = error_of(worker, op, **fields)
    assert err["code"] == "invalid_input" and pattern in err["message"], err
