"""Hostile input to the worker (issue #15): every line is answered, with the documented code, and the
worker keeps serving; nothing non-finite leaves it; end of input always ends it."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from proc_utils import pid_gone
from test_worker import RawWorker

from salad_model import protocol as P
from salad_model.runtime import requests as R


@pytest.fixture(scope="module")
def hw(tiny_model_dir):
    w = RawWorker()
    w.result("load", model=str(tiny_model_dir), device="cpu")
    yield w
    assert w.close() == 0
    assert not w.bad_lines
    assert pid_gone(w.proc.pid)


def answer(w: RawWorker, line: bytes) -> dict:
    """Send a raw line and return its one final event (then check the worker still answers a hello).

    A line with a readable id gets a fresh id, so that its answer can be told apart; errors about
    unreadable lines (id null) are answered at once, before the hello that follows them.
    """
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError):
        msg = None
    rid = None
    if isinstance(msg, dict) and isinstance(msg.get("id"), str):
        rid = w.next_id()
        line = line.replace(json.dumps(msg["id"]).encode(), json.dumps(rid).encode(), 1)
    nulls = len(w.by_id.get(None, []))
    w.send(line if line.endswith(b"\n") else line + b"\n")
    if rid is not None:
        final = w.finish(rid)
    hello = w.request("hello")
    assert hello["event"] == "result"  # still serving
    if rid is None:
        finals = [ev for _, ev in w.by_id.get(None, [])[nulls:]]
        assert len(finals) == 1, finals
        final = finals[0]
    return final


def code_of(w: RawWorker, line: bytes) -> str:
    ev = answer(w, line)
    assert ev["event"] == "error", ev
    assert ev["code"] in P.ERROR_CODES and ev["message"] and "Traceback" not in ev["message"]
    return ev["code"]


def test_deep_nesting_is_answered_and_the_worker_keeps_serving(hw):
    deep = b'{"id": "d", "op": "hello", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert code_of(hw, deep) == P.BAD_JSON
    deeper = b"[" * 100_000 + b"]" * 100_000
    assert code_of(hw, deeper) == P.BAD_JSON
    nested_field = {"id": "n", "op": "generate", "prompt": "a person walks", "seed": [[[[[[[]]]]]]]}
    assert code_of(hw, json.dumps(nested_field).encode()) == P.INVALID_INPUT


@pytest.mark.parametrize("target", [[1, 2], {"a": 1}, True, None, 1.5, ""])
def test_cancel_targets_that_are_no_ids(hw, target):
    assert code_of(hw, json.dumps({"id": "c", "op": "cancel", "target": target}).encode()) == P.INVALID_INPUT


@pytest.mark.parametrize("field,value", [
    ("seed", -1), ("seed", 2**70), ("seed", 2**32), ("seed", 1.7), ("seed", "7"), ("seed", True),
    ("steps", True), ("steps", 0), ("steps", 1001), ("guidance", "7"), ("guidance", -0.5),
    ("frames", 40.0), ("seconds", 0), ("seconds", -1), ("scheduler", "euler"), ("record_maps", 1),
])
def test_wrong_types_and_ranges_are_invalid_input(hw, field, value):
    req = {"id": "g", "op": "generate", "prompt": "a person walks", "frames": 40, field: value}
    if field == "seconds":
        req.pop("frames")
    assert code_of(hw, json.dumps(req).encode()) == P.INVALID_INPUT


@pytest.mark.parametrize("field", ["seed", "guidance", "steps", "frames", "seconds"])
def test_huge_numbers_are_invalid_input_not_internal(hw, field):
    line = b'{"id": "h", "op": "generate", "prompt": "walk", "' + field.encode() + b'": 1' + b"0" * 400 + b"}"
    assert code_of(hw, line) == P.INVALID_INPUT
    assert code_of(hw, b'{"id": "h", "op": "generate", "prompt": "walk", "guidance": 1e400}') == P.INVALID_INPUT


def test_frames_and_seconds_together_are_refused(hw):
    req = {"id": "fs", "op": "generate", "prompt": "a person walks", "frames": 40, "seconds": 2}
    assert code_of(hw, json.dumps(req).encode()) == P.INVALID_INPUT


@pytest.mark.parametrize("prompt", ["\u200b\u200b\u200b", "\u200d \ufeff\u2060", "\x00\x01\n", " \u3000 "])
def test_invisible_prompts_are_refused(hw, prompt):
    for op in ("generate", "prompt_tokens"):
        req = {"id": "p", "op": op, "prompt": prompt, **({"frames": 40} if op == "generate" else {})}
        assert code_of(hw, json.dumps(req).encode()) == P.INVALID_INPUT


@pytest.mark.parametrize("op, field", [("generate", "prompt"), ("prompt_tokens", "prompt"),
                                       ("edit", "edit_prompt"), ("compose", "segments")])
def test_a_lone_surrogate_in_a_prompt_is_named(hw, op, field):
    """Audit 5: JSON's "\\ud800" decodes to a lone surrogate; the tokeniser then failed ("TextEncodeInput must be
    Union[...]": invalid_input for generate, an internal error for prompt_tokens)."""
    text = "a person walks \ud800"
    req = {"id": "u", "op": op, "prompt": text, "frames": 40}
    if op == "prompt_tokens":
        req = {"id": "u", "op": op, "prompt": text}
    elif op == "edit":
        req = {"id": "u", "op": op, "source_prompt": "a person walks", "edit_prompt": text, "frames": 40}
    elif op == "compose":
        req = {"id": "u", "op": op, "segments": [{"prompt": text, "seconds": 2.0}]}
    ev = answer(hw, json.dumps(req).encode())  # json.dumps writes the surrogate as the escape \ud800
    assert ev["event"] == "error" and ev["code"] == P.INVALID_INPUT, ev
    assert "lone surrogate (U+D800) at character 16" in ev["message"]


def test_prompt_and_line_size_caps(hw):
    big = {"id": "b", "op": "prompt_tokens", "prompt": "walk " * 1000}  # 5 KB > the prompt cap
    assert code_of(hw, json.dumps(big).encode()) == P.INVALID_INPUT
    huge = {"id": "b2", "op": "generate", "prompt": "walk " * (2 * R.MAX_LINE_BYTES // 5), "frames": 40}
    nulls = len(hw.by_id.get(None, []))
    hw.send(huge)  # 2 MiB: answered with id null (the id is never parsed), then the next line is read
    assert hw.request("hello")["event"] == "result"
    assert [ev["code"] for _, ev in hw.by_id[None][nulls:]] == [P.LINE_TOO_LONG]
    assert "b2" not in hw.by_id
    ok = hw.result("prompt_tokens", prompt="a person walks")
    assert len(ok["tokens"]) == 5


def arr(a: np.ndarray, dtype: str | None = None) -> dict:
    return {"dtype": dtype or a.dtype.name, "shape": list(a.shape),
            "data": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()}


@pytest.mark.parametrize("joints", [
    "zeros", "1e30", "nan", "object", "list", "int_shape", "bool_shape", "wrong_bytes", "int64"])
def test_edit_real_with_degenerate_or_absurd_joints(hw, joints):
    base = np.zeros((40, 22, 3), np.float32)
    value = {"zeros": lambda: arr(base), "1e30": lambda: arr(np.full_like(base, 1e30)),
             "nan": lambda: arr(np.full_like(base, np.nan)),
             "object": lambda: {"dtype": "object", "shape": [40, 22, 3], "data": ""},
             "list": lambda: base.tolist(),
             "int_shape": lambda: {"dtype": "float32", "shape": [10**400], "data": ""},
             "bool_shape": lambda: {"dtype": "float32", "shape": [True, 22, 3], "data": ""},
             "wrong_bytes": lambda: {"dtype": "float32", "shape": [40, 22, 3], "data": "AAAA"},
             "int64": lambda: arr(np.ones((40, 22, 3), np.int64))}[joints]()
    req = {"id": "r", "op": "edit_real", "prompt": "a person walks", "joints": value, "steps": 2}
    line = json.dumps(req).encode() if joints != "int_shape" else json.dumps(req).replace(
        "1" + "0" * 400, "1" + "0" * 400).encode()
    assert code_of(hw, line) == P.INVALID_INPUT


def test_duplicate_in_flight_ids_are_refused(hw):
    rid = "dup"
    hw.send({"id": rid, "op": "generate", "prompt": "a person walks", "frames": 40, "steps": 200})
    hw.send({"id": rid, "op": "generate", "prompt": "a person runs", "frames": 40, "steps": 2})
    events = hw.until(rid, lambda ev: ev["event"] == "error" and ev["code"] == P.BAD_REQUEST)
    hw.send({"id": "cx", "op": "cancel", "target": rid})
    hw.until(rid, lambda ev: ev["event"] == "error" and ev["code"] == P.CANCELLED)
    assert any("already used" in ev["message"] for _, ev in events if ev["event"] == "error")
    # once finished, the id may be used again
    again = hw.result("prompt_tokens", prompt="walk")
    assert again["tokens"]


def test_valid_request_after_garbage_still_succeeds(hw):
    for line in (b"{", b"null", b"[]", b'{"id": true, "op": "hello"}', b'{"id": "x", "op": 5}',
                 b'{"id": "y", "op": "fly"}', b"\xff\xfe", b'{"id": ' + b"9" * 5000 + b', "op": "hello"}'):
        code_of(hw, line)
    m = hw.result("generate", prompt="a person walks", frames=40, steps=2, seed=R.SEED_MAX)
    assert np.isfinite(m["joints"]).all() and m["meta"]["seed"] == R.SEED_MAX


def test_non_finite_model_output_is_a_model_error(tmp_path):
    """A model whose decoder yields NaN: the worker refuses to send the result (model_error)."""
    import torch

    from salad_model.runtime.checkpoints import random_bundle, save_model

    bundle = random_bundle("tiny", seed=0)
    with torch.no_grad():
        for p in bundle.vae.parameters():  # corrupt weights (not checked at load): the decoder yields NaN
            p.fill_(float("nan"))
    save_model(bundle, tmp_path / "nan")
    w = RawWorker()
    try:
        w.result("load", model=str(tmp_path / "nan"), device="cpu")
        ev = w.request("generate", prompt="a person walks", frames=40, steps=2)
        assert ev["event"] == "error" and ev["code"] == P.MODEL_ERROR and "NaN" in ev["message"], ev
    finally:
        assert w.close() == 0


def test_end_of_input_ends_the_worker_after_hostile_lines():
    w = RawWorker()
    w.send(b"[" * 5000 + b"\n")
    w.send(json.dumps({"id": 1, "op": "cancel", "target": {"x": 1}}).encode() + b"\n")
    w.send(b"x" * (R.MAX_LINE_BYTES + 10))  # unterminated, over the cap, then EOF
    assert w.close() == 0
    assert pid_gone(w.proc.pid)
