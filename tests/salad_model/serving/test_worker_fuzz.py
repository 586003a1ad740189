"""Property-based fuzz test of the worker protocol (issue #15), with hypothesis, on a real worker process.

Random and mutated JSON lines, deep nesting, huge numbers, wrong types and interleaved cancels: every
line is answered exactly once with a documented event (errors with a documented code, never
``internal``), and a valid
request afterwards still succeeds. Bounded examples and no deadline: run time is modest and load-proof.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_worker import RawWorker
from testdata import DATA

from salad_model.serving import protocol as P
from salad_model.serving.worker import IMMEDIATE_OPS, MODEL_OPS

IDS = st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 3))
HOSTILE_VALUES = [None, True, False, -1, 0, 1.7, 2**64, 10**400, -(10**400), float("nan"), float("inf"), "7", "",
                  "\u200b\u200b", " ", [1], [], {"a": 1}, {}, [[[[["a"]]]]], "x" * 3000, 1e308]
HOSTILE = st.one_of(
    st.sampled_from(HOSTILE_VALUES), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4),
                    max_leaves=12)
FORBIDDEN_OPS = ("shutdown", "load", "unload")  # would end the worker or drop its model (not hostile input)
# every op the worker serves (its own table, so new ops are fuzzed too), plus unknown ones
OPS = [op for op in IMMEDIATE_OPS + MODEL_OPS if op not in FORBIDDEN_OPS] + ["fly", ""]
JOINTS = P.encode_array(np.load(DATA / "video" / "walk_turn_left_front.npz")["joints"][:40].astype(np.float32))
BASE = {
    "generate": {"prompt": "a person walks", "frames": 40, "steps": 2, "seed": 1},
    "edit": {"source_prompt": "a person walks", "frames": 40, "steps": 2, "word": "walks", "scale": 2.0},
    "attention": {"prompt": "a person walks", "frames": 40, "steps": 2},
    "prompt_tokens": {"prompt": "a person walks"},
    "cancel": {"target": "a"},
    "compose": {"segments": [{"prompt": "a person walks", "seconds": 2}], "steps": 2},
    "continue": {"joints": JOINTS, "prompt": "a person runs", "seconds": 2, "steps": 2},
    "inbetween": {"joints_a": JOINTS, "joints_b": JOINTS, "prompt": "a person turns", "seconds": 2, "steps": 2},
    "regenerate_parts": {"joints": JOINTS, "prompt": "a person waves", "parts": ["arms"], "steps": 2},
    "video": {"path": str(DATA / "video" / "README.md")},  # a quick refusal (reading a real clip takes seconds)
}


@st.composite
def request_line(draw) -> bytes:
    op = draw(st.sampled_from(OPS))
    msg = {"id": draw(IDS), "op": op, **BASE.get(op, {})}
    how = draw(st.sampled_from(["cancel", "field", "valid", "drop", "extra", "bytes", "nest", "huge", "json",
                                "cancel", "field"]))
    if how == "field" and len(msg) > 2:
        key = draw(st.sampled_from(sorted(msg)))
        msg[key] = draw(HOSTILE)
    elif how == "drop":
        msg.pop(draw(st.sampled_from(sorted(msg))))
    elif how == "extra":
        msg[draw(st.text(max_size=6))] = draw(JSON)
    elif how == "cancel":
        target = draw(st.sampled_from([*HOSTILE_VALUES, "a", "b", 0, 1, "json"]))
        msg = {"id": draw(IDS), "op": "cancel", "target": draw(JSON) if target == "json" else target}
    elif how == "json":
        msg = draw(JSON)
    if isinstance(msg, dict) and msg.get("op") in FORBIDDEN_OPS:
        msg["op"] = "hello"
    line = json.dumps(msg).encode()
    if how == "bytes":
        pos = draw(st.integers(0, len(line)))
        line = line[:pos] + draw(st.binary(max_size=8)) + line[pos + draw(st.integers(0, 4)):]
    elif how == "nest":
        depth = draw(st.integers(100, 20_000))
        line = line.replace(b'"a person walks"', b"[" * depth + b"]" * depth, 1) if b"walks" in line else (
            b"[" * depth + line + b"]" * depth)
    elif how == "huge":
        digits = draw(st.integers(20, 6000))
        line = line.replace(b"40", b"4" + b"0" * digits, 1) if b"40" in line else line[:-1] + (
            b', "seed": 1' + b"0" * digits + b"}")
    line = line.replace(b"\n", b" ")
    if any(op.encode() in line for op in FORBIDDEN_OPS):
        line = line.replace(b"shutdown", b"shutd0wn").replace(b"unload", b"unl0ad").replace(b"load", b"l0ad")
    return line if line.strip() else b"x"


@pytest.fixture(scope="module")
def fw(tiny_model_dir):
    w = RawWorker()
    w.result("load", model=str(tiny_model_dir), device="cpu")
    yield w
    assert w.close() == 0
    assert not w.bad_lines, w.bad_lines[:3]


def finals(w: RawWorker) -> list[dict]:
    return [ev for evs in w.by_id.values() for _, ev in evs if ev["event"] in ("result", "error")]


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(lines=st.lists(request_line(), min_size=1, max_size=6),
       cancels=st.lists(st.tuples(st.integers(0, 6), st.sampled_from([*HOSTILE_VALUES, "a", "b", 0, 1])),
                        min_size=1, max_size=3))
def test_every_line_is_answered_and_the_worker_keeps_serving(fw, lines, cancels):
    for pos, target in cancels:  # cancels interleaved with the other lines, for ids in flight or not
        lines.insert(min(pos, len(lines)), json.dumps({"id": "k", "op": "cancel", "target": target}).encode())
    before = len(finals(fw))
    for line in lines:
        fw.send(line + b"\n")
    # A model request after the batch: when it is answered, every earlier line has been (immediate ops
    # are answered as they are read, model ops in order).
    sentinel = fw.next_id()
    fw.send({"id": sentinel, "op": "prompt_tokens", "prompt": "a person walks"})
    done = fw.finish(sentinel)
    assert done["event"] == "result", done
    new = finals(fw)[before:]
    assert len(new) == len(lines) + 1, (lines, new)
    for ev in new:
        if ev["event"] == "error":
            assert ev["code"] in P.ERROR_CODES, ev
            assert ev["code"] != P.INTERNAL, ev  # hostile input is the client's fault, never a worker bug
            assert isinstance(ev["message"], str) and "Traceback" not in ev["message"]
    assert not fw.bad_lines


def test_a_valid_generation_after_the_fuzzing_still_succeeds(fw):
    m = fw.result("generate", prompt="a person walks", frames=40, steps=2, seed=3)
    assert m["joints"].shape == (40, 22, 3) and np.isfinite(m["joints"]).all()
