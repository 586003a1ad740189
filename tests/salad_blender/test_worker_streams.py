"""salad_blender.worker_streams in-process: the stdin writer thread on a pipe the test opens and shuts, the event
decoder's verdict on every malformed line, and the two reader threads on in-memory streams.

test_worker_reliability.py and test_audit5.py run the same code against scripted worker processes; here each
rule is pinned exactly (messages word for word, the writer's clock on a hand-driven clock, no waiting on time:
the threads are waited for by events, with a hang guard only).
"""

from __future__ import annotations

import collections
import io
import json
import queue
import subprocess
import threading
import time

import numpy as np
import pytest
from fake_clock import hand_clock

from salad_blender import protocol, worker_streams
from salad_blender.worker_streams import MAX_STDERR_LINE, RequestWriter, _decode_event, _read_events, _read_stderr

HANG = 30.0  # a hang guard only: every wait below ends on an event



class Pipe:
    """A worker's stdin: records writes, flushes and the close; a write can be held (a worker not reading)."""

    def __init__(self, held: bool = False, fail: type[Exception] | None = None) -> None:
        self.log: list = []
        self.gate = threading.Event()
        if not held:
            self.gate.set()
        self.writing = threading.Event()  # a write has begun
        self.closed = threading.Event()
        self.fail = fail

    def write(self, line: bytes) -> None:
        self.writing.set()
        assert self.gate.wait(HANG)
        if self.fail is not None:
            raise self.fail("Broken pipe")
        self.log.append(line)

    def flush(self) -> None:
        self.log.append("flush")

    def close(self) -> None:
        self.log.append("close")
        self.closed.set()


def until(pred, what: str) -> None:
    deadline = time.monotonic() + HANG
    while not pred():
        assert time.monotonic() < deadline, f"not {what} after {HANG} s"
        time.sleep(0.001)


@pytest.fixture
def clock(monkeypatch):
    return hand_clock(monkeypatch, worker_streams)


# ------------------------------------------------------------------------ RequestWriter


def test_lines_are_written_in_order_each_flushed_and_stdin_closed_after_them():
    pipe = Pipe()
    w = RequestWriter(pipe)
    for k in range(3):
        w.send(b"line %d\n" % k)
    until(lambda: len(pipe.log) == 6, "written")  # close() drops lines not yet written: let them go first
    w.close()
    assert w.join(HANG)
    # each line flushed at once (the worker reads it while the next waits), EOF only after the last one
    assert pipe.log == [b"line 0\n", "flush", b"line 1\n", "flush", b"line 2\n", "flush", "close"]
    assert not w.broken
    w.send(b"late\n")  # after close: dropped, not written, no error
    assert pipe.log[-1] == "close" and w.stalled() == 0.0


def test_send_never_blocks_and_stalled_counts_from_the_oldest_unwritten_line(clock):
    pipe = Pipe(held=True)  # the worker stopped reading: the first write never returns
    w = RequestWriter(pipe)
    assert w.stalled() == 0.0  # nothing queued
    w.send(b"first\n")
    assert pipe.writing.wait(HANG)
    clock.now += 3.0
    w.send(b"second\n")  # returns: the line waits in the queue
    clock.now += 4.0
    assert w.stalled() == 7.0  # the line in flight was handed over 7 s ago
    assert w.stalled(not_before=clock.now - 2.5) == 2.5  # a worker starting up: counted from then
    assert w.stalled(not_before=clock.now - 9.0) == 7.0  # an earlier start changes nothing
    pipe.gate.set()
    w.close()
    assert w.join(HANG)
    assert pipe.log[:2] == [b"first\n", "flush"] and b"second\n" not in pipe.log  # dropped by close
    assert pipe.log[-1] == "close" and w.stalled() == 0.0


def test_a_queued_line_not_yet_picked_up_counts_from_when_it_was_sent(clock):
    pipe = Pipe()
    w = RequestWriter(pipe)
    with w._cond:  # the writer thread cannot take the line while the test holds its lock
        w.send(b"one\n")
        clock.now += 6.0
        w.send(b"two\n")
        clock.now += 1.0
        assert w.stalled() == 7.0  # the oldest queued line, not the newest
        assert w.stalled(not_before=clock.now - 5.0) == 5.0
    w.close()
    assert w.join(HANG)


def test_a_line_in_flight_at_close_is_written_before_eof():
    pipe = Pipe(held=True)
    w = RequestWriter(pipe)
    w.send(b"in flight\n")
    assert pipe.writing.wait(HANG)
    w.send(b"queued\n")
    w.close()  # returns at once although the write is blocked
    assert not pipe.closed.is_set()
    pipe.gate.set()
    assert w.join(HANG)
    assert pipe.log == [b"in flight\n", "flush", "close"]


@pytest.mark.parametrize("error", [OSError, ValueError], ids=["broken-pipe", "closed-file"])
def test_a_failed_write_marks_the_writer_broken_drops_the_rest_and_ends(clock, error):
    pipe = Pipe(held=True, fail=error)
    w = RequestWriter(pipe)
    w.send(b"a\n")
    assert pipe.writing.wait(HANG)
    w.send(b"b\n")
    pipe.gate.set()
    assert w.join(HANG)  # the thread ended by itself, no close() needed
    assert w.broken and pipe.log == ["close"]  # nothing written, stdin closed
    assert w.stalled() == 0.0  # no line waits: the gone worker is reported by its exit, not as stuck
    w.send(b"c\n")
    assert w.stalled() == 0.0 and not w._lines


def test_closing_an_idle_writer_ends_its_thread_and_closes_stdin():
    pipe = Pipe()
    w = RequestWriter(pipe, name="salad-worker-7-in")
    assert w._thread.name == "salad-worker-7-in" and w._thread.daemon
    assert not w.join(0.05)  # idle: waiting for lines
    w.close()
    assert w.join(HANG) and pipe.log == ["close"]


def test_a_stdin_that_fails_to_close_still_ends_the_thread():
    class Unclosable(Pipe):
        def close(self):
            super().close()
            raise OSError("already gone")

    pipe = Unclosable()
    w = RequestWriter(pipe)
    w.close()
    assert w.join(HANG) and pipe.closed.is_set()


# ------------------------------------------------------------------------ decoding events


def _error(line: bytes) -> dict:
    event = _decode_event(line)
    assert event["event"] == "error", event
    return event


def test_an_unreadable_line_is_a_bad_json_error_naming_it():
    event = _error(b'{"id": "r1", oops}\n')
    assert event["id"] is None and event["code"] == "bad_json"
    assert event["message"] == ("the worker sent an unreadable line (Expecting property name enclosed in double "
                                "quotes: line 1 column 14 (char 13)): b'{\"id\": \"r1\", oops}\\n'")
    long = b"x" * 500
    assert _error(long)["message"].endswith(": " + repr(long[:200]))  # the line's first 200 bytes only
    deep = _error(b"[" * 100_000)  # past the parser's recursion limit
    assert deep["code"] == "bad_json" and deep["id"] is None and "recursion" in deep["message"]


@pytest.mark.parametrize("line, why", [
    (b"[1, 2]", "not an object"),
    (b'"text"', "not an object"),
    (b'{"id": [1], "event": "result"}', "its id is neither a string nor an integer"),
    (b'{"id": 1.5, "event": "result"}', "its id is neither a string nor an integer"),
    (b'{"id": {"a": 1}, "event": "result"}', "its id is neither a string nor an integer"),
])
def test_a_line_that_is_no_event_is_a_bad_json_error(line, why):
    event = _error(line)
    assert (event["id"], event["code"]) == (None, "bad_json")
    assert event["message"] == f"the worker sent an unreadable line ({why}): {line!r}"


@pytest.mark.parametrize("rid", ["r3", 7, None])
def test_ids_the_client_can_route_are_kept(rid):
    event = _decode_event(json.dumps({"id": rid, "event": "started"}).encode())
    assert event == {"id": rid, "event": "started"}


@pytest.mark.parametrize("field, value, kind", [
    ("event", 3, "a string"),
    ("step", "3", "an integer"), ("step", 3.0, "an integer"), ("step", True, "an integer"),
    ("steps", None, "an integer"),
    ("progress", "0.5", "a finite number"), ("progress", False, "a finite number"),
    ("progress", [0.5], "a finite number"),
    ("stage", 1, "a string"), ("detail", None, "a string"), ("code", 4, "a string"), ("message", [], "a string"),
])
def test_a_field_of_the_wrong_type_is_a_protocol_error_of_its_own_job(field, value, kind):
    event = {"id": "r9", "event": "progress", field: value}
    got = _decode_event(json.dumps(event).encode())
    name = value if field == "event" else "progress"
    assert got == {"id": "r9", "event": "error", "code": protocol.PROTOCOL_ERROR,
                   "message": f"the model worker sent a {name} event the add-on cannot read ({field!r} is "
                              f"{json.dumps(value)}, not {kind}); install matching versions of the add-on and "
                              "salad_model"}


def test_non_finite_progress_is_refused_and_numbers_of_both_kinds_pass():
    # json reads NaN and Infinity (Python's json.dumps writes them): not a progress the bar can show
    for text in (b"NaN", b"Infinity", b"-Infinity"):
        got = _decode_event(b'{"id": 1, "event": "progress", "progress": ' + text + b"}")
        assert got["code"] == protocol.PROTOCOL_ERROR and "'progress' is" in got["message"], text
    for progress in (0, 0.5, 1):
        event = {"id": 1, "event": "progress", "step": 2, "steps": 4, "progress": progress, "stage": "x",
                 "detail": "", "code": "", "message": ""}
        assert _decode_event(json.dumps(event).encode()) == event


def test_a_result_must_carry_an_object_and_long_values_are_cut_in_the_message():
    got = _decode_event(json.dumps({"id": "r1", "event": "result", "data": list(range(30))}).encode())
    assert got["code"] == protocol.PROTOCOL_ERROR
    assert f"('data' is {json.dumps(list(range(30)))[:40]}, not an object)" in got["message"]
    assert _decode_event(b'{"id": "r1", "event": "result"}') == {"id": "r1", "event": "result"}  # no data: {}
    assert _decode_event(b'{"id": "r1", "event": "progress", "data": [1]}')["data"] == [1]  # only a result's
    long_stage = "s" * 100
    got = _decode_event(json.dumps({"id": 1, "event": "e" * 60, "stage": 5, "detail": long_stage}).encode())
    assert got["message"].startswith(f"the model worker sent a {'e' * 40} event the add-on cannot read ('stage' is 5,")
    got = _decode_event(json.dumps({"id": 1, "event": "progress", "stage": ["y" * 80]}).encode())
    assert f"('stage' is {json.dumps(['y' * 80])[:40]}, not a string)" in got["message"]


def test_arrays_in_the_data_are_decoded_and_a_corrupt_one_fails_its_own_job():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    line = json.dumps({"id": "r2", "event": "result", "data": {"joints": protocol.encode_array(a)}}).encode()
    got = _decode_event(line)
    assert got["event"] == "result" and np.array_equal(got["data"]["joints"], a)
    corrupt = {"dtype": "float32", "shape": [2, 3], "data": 12}  # not base64 text: a TypeError in the decoder
    for rid, want in (("r2", "r2"), (5, 5), (True, None), (None, None)):
        got = _decode_event(json.dumps({"id": rid, "event": "result", "data": {"joints": corrupt}}).encode())
        assert got["id"] == want and got["event"] == "error" and got["code"] == "bad_json", rid
        assert got["message"].startswith("the worker's result could not be read (TypeError: "), got["message"]
        assert set(got) == {"id", "event", "code", "message"}


# ------------------------------------------------------------------------ the reader threads


class Proc:
    def __init__(self, code=0, lingers=False):
        self.code, self.lingers, self.waited = code, lingers, []

    def wait(self, timeout=None):
        self.waited.append(timeout)
        if self.lingers:
            raise subprocess.TimeoutExpired("worker", timeout)
        return self.code


def _read_all(stream, proc):
    events, arrived, counter = queue.SimpleQueue(), threading.Condition(), [0]
    _read_events(stream, events, arrived, counter, proc)
    out = []
    while not events.empty():
        out.append(events.get())
    return out, counter[0]


def test_the_event_reader_queues_each_event_skips_blank_lines_and_ends_with_the_exit():
    lines = b'{"id": 1, "event": "started"}\n\n   \n{"id": 1, "event": "result", "data": {}}\nnot json\n'
    out, count = _read_all(io.BytesIO(lines), Proc(code=3))
    assert out[:2] == [{"id": 1, "event": "started"}, {"id": 1, "event": "result", "data": {}}]
    assert out[2]["code"] == "bad_json"
    assert out[3] == ("exit", 3) and len(out) == 4
    assert count == 4  # every queued item is counted (what Job.wait waits on)


def test_the_event_reader_reports_a_lingering_process_and_a_failing_stream():
    proc = Proc(lingers=True)
    out, _ = _read_all(io.BytesIO(b""), proc)
    assert out == [("exit", None)] and proc.waited == [10]

    class Broken(io.BytesIO):
        def __iter__(self):
            yield b'{"id": 2, "event": "started"}\n'
            raise OSError("read failed")

    out, count = _read_all(Broken(), Proc(code=-9))
    assert out == [{"id": 2, "event": "started"}, ("exit", -9)] and count == 2


def test_the_event_reader_wakes_a_waiter_on_each_event():
    events, arrived, counter = queue.SimpleQueue(), threading.Condition(), [0]
    woke = []

    def waiter():
        with arrived:
            woke.append(arrived.wait_for(lambda: counter[0] >= 2, timeout=HANG))

    t = threading.Thread(target=waiter)
    t.start()
    _read_events(io.BytesIO(b'{"id": 1, "event": "started"}\n'), events, arrived, counter, Proc())
    t.join(HANG)
    assert woke == [True]


def _stderr(data: bytes, echo=None, maxlen=None) -> list[str]:
    lines = collections.deque(maxlen=maxlen)
    _read_stderr(io.BytesIO(data), lines, echo)
    return list(lines)


def test_stderr_lines_are_kept_decoded_and_echoed():
    echoed = []
    got = _stderr(b"one\r\ntwo\n\xff bad byte\nlast without newline", echoed.append)
    assert got == ["one", "two", "\ufffd bad byte", "last without newline"] and echoed == got
    # only the line end goes: trailing blanks and letters stay
    assert _stderr(b"table:\t \nsize MAX\r\n") == ["table:\t ", "size MAX"]


def test_a_long_stderr_line_is_read_in_bounded_pieces():
    """The rest of a runaway line is skipped piece by piece too (read whole it was 30 MB held at once)."""
    asked = []

    class Recording(io.BytesIO):
        def readline(self, limit=-1):
            asked.append(limit)
            return super().readline(limit)

    lines = collections.deque()
    _read_stderr(Recording(b"x" * (10 * 4 * MAX_STDERR_LINE) + b"\nok\n"), lines, None)
    assert list(lines)[-1] == "ok" and set(asked) == {4 * MAX_STDERR_LINE}


def test_a_runaway_stderr_line_is_cut_and_its_rest_skipped():
    limit = 4 * MAX_STDERR_LINE
    assert MAX_STDERR_LINE == 4000
    long = b"a" * (limit + 10) + b"\n"  # longer than one read: cut, its rest skipped
    got = _stderr(long + b"next\n")
    assert got == ["a" * MAX_STDERR_LINE + " …", "next"]
    huge = b"b" * (3 * limit + 5) + b"\n"  # several reads past the first
    assert _stderr(huge + b"after\n") == ["b" * MAX_STDERR_LINE + " …", "after"]
    exact = b"c" * limit + b"\n"  # the newline is the first byte of the next read: a cut line, then nothing else
    assert _stderr(exact + b"z\n") == ["c" * MAX_STDERR_LINE + " …", "z"]
    fits = b"d" * (limit - 1) + b"\n"  # read whole in one go: not cut (kept to MAX_STDERR_LINE characters)
    assert _stderr(fits + b"z\n") == ["d" * MAX_STDERR_LINE, "z"]
    unended = b"e" * (limit + 3)  # cut at the end of the stream
    assert _stderr(unended) == ["e" * MAX_STDERR_LINE + " …"]


def test_a_broken_log_hook_or_stream_does_not_stop_draining():
    def hook(text):
        raise RuntimeError("broken hook")

    assert _stderr(b"x\ny\n", hook) == ["x", "y"]

    class Broken(io.BytesIO):
        def readline(self, limit=-1):
            if self.tell() > 0:
                raise ValueError("I/O operation on closed file")
            return super().readline(limit)

    lines = collections.deque()
    _read_stderr(Broken(b"x\ny\n"), lines, None)  # returns instead of raising
    assert list(lines) == ["x"]
