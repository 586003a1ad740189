"""The client's side of the stuck-worker watch and of protocol errors, with no process: a fake Popen, a fake stdin
writer and events put on the client's queue by hand, on a hand-driven clock.

test_worker_reliability.py runs the same paths against a scripted worker process with shortened limits and real
waits; here every decision is pinned exactly: when the probe goes out and what it is, what is counted in flight,
when a worker is killed and what its jobs then say, which late answers of a job failed here are swallowed.
"""

from __future__ import annotations

import json
import signal
import threading

import pytest
from fake_clock import hand_clock

from salad_blender import client as client_module
from salad_blender import protocol, worker_watch
from salad_blender.client import WorkerClient


class FakeProc:
    pid = 424242  # never signalled: _kill_group is replaced

    def __init__(self) -> None:
        self.returncode = None

    def poll(self):
        return self.returncode


class FakeWriter:
    def __init__(self) -> None:
        self.lines: list[dict] = []
        self.stall, self.asked = 0.0, []
        self.closed = False

    def send(self, line: bytes) -> None:
        self.lines.append(json.loads(line))

    def stalled(self, not_before: float = 0.0) -> float:
        self.asked.append(not_before)
        return self.stall

    def close(self) -> None:
        self.closed = True

    def join(self, timeout=None) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    return hand_clock(monkeypatch, client_module, worker_watch)


@pytest.fixture
def killed(monkeypatch):
    """Signals the client sends and the shutdowns it does (nothing real is signalled)."""
    log = []
    monkeypatch.setattr(client_module, "_kill_group", lambda proc, sig: log.append(("kill", sig)))

    def shutdown(proc, grace=2.0, writer=None):
        log.append(("shutdown", grace))
        writer.close()
        proc.returncode = -9
        return proc.returncode

    monkeypatch.setattr(client_module, "_shutdown_process", shutdown)
    return log


def make_client(answer_hello=True):
    """A client whose 'worker' is the test: requests land in ``c._writer.lines``, events are put by ``feed``."""
    c = WorkerClient()
    c._proc, c._writer = FakeProc(), FakeWriter()
    c._hello_job = c.submit({"op": "hello", "protocol": protocol.PROTOCOL_VERSION, "client": client_module.CLIENT_NAME})
    if answer_hello:
        feed(c, {"id": c._hello_job.id, "event": "result", "data": {"protocol": protocol.PROTOCOL_VERSION}})
    return c


def feed(c, *events):
    for e in events:
        c._events.put(e)
    return c.poll()


def ops(c):
    return [(line["op"], line.get("target")) for line in c._writer.lines]


# ------------------------------------------------------------------------ the watch


def silent_past_the_limit(clock):
    """A client with one request in flight whose worker then says nothing for just over ``SILENCE``."""
    c = make_client()
    job = c.submit({"op": "generate"})
    feed(c)  # the first poll with a request in flight starts the silence clock
    clock.now += worker_watch.SILENCE + 0.5
    feed(c)
    return c, job


def test_no_watch_before_the_worker_answered_its_hello(clock, killed):
    c = make_client(answer_hello=False)
    job = c.submit({"op": "generate"})
    c._writer.stall = 1000.0
    clock.now += 1000.0
    feed(c)
    assert not job.done and killed == [] and ops(c) == [("hello", None), ("generate", None)]  # no probe
    assert c._writer.asked == []  # not even asked: starting up is the hello timeout's business


def test_the_unread_clock_starts_when_the_hello_was_answered(clock, killed):
    clock.now = 150.0
    c = make_client()
    assert c._ready_at == 150.0
    clock.now = 160.0
    c.submit({"op": "generate"})
    feed(c)
    assert c._writer.asked[-1] == 150.0


def test_a_silent_worker_with_a_request_in_flight_gets_one_hello_probe(clock, killed):
    c, job = silent_past_the_limit(clock)
    assert ops(c)[-1] == ("hello", None)
    probe = c._writer.lines[-1]
    assert probe["protocol"] == protocol.PROTOCOL_VERSION and probe["client"] == client_module.CLIENT_NAME
    assert c._probe is not None and c._probe.id == probe["id"]
    assert c.busy  # the request counts, the probe does not
    feed(c)
    assert ops(c).count(("hello", None)) == 2  # one probe, not one per poll
    feed(c, {"id": probe["id"], "event": "result", "data": {"protocol": protocol.PROTOCOL_VERSION}})
    assert c._probe is None and not job.done and killed == []  # answered: kept


def test_the_probe_alone_is_not_a_request_in_flight(clock, killed):
    c, job = silent_past_the_limit(clock)
    feed(c, {"id": job.id, "event": "result", "data": {}})  # the job ends; the probe is still out
    assert c._probe is not None
    clock.now += 10 * worker_watch.PROBE_WAIT
    feed(c)
    assert killed == [] and c.running  # an idle worker is not given up for an unanswered probe
    assert not c.busy  # nor is it busy


def test_a_silent_worker_that_does_not_answer_the_probe_is_killed_and_its_jobs_say_why(clock, killed):
    c, job = silent_past_the_limit(clock)
    clock.now += worker_watch.PROBE_WAIT + 0.5
    feed(c)
    assert killed == [("kill", signal.SIGKILL), ("shutdown", 1.0)]
    why = "it was stuck: it sent nothing for 31 s and did not answer a ping"
    assert c.close_reason == why and c._proc is None
    assert job.error.code == protocol.WORKER_STOPPED and job.error.event["reason"] == why
    assert job.error.message == f"the model worker was stopped before the request finished: {why}"
    assert c._jobs == {}


def test_a_request_left_unread_kills_the_worker(clock, killed):
    c = make_client()
    job = c.submit({"op": "generate"})
    c._writer.stall = worker_watch.WRITE_STALL + 1.0
    feed(c)
    assert killed[0] == ("kill", signal.SIGKILL)
    assert job.error.code == protocol.WORKER_STOPPED
    assert job.error.message.endswith("it was stuck: it did not read a request for 11 s")


def test_a_client_that_is_closing_or_has_no_running_worker_checks_nothing(clock, killed):
    c = make_client()
    c.submit({"op": "generate"})
    c._writer.stall = 100.0
    c._closing = True
    feed(c)
    assert killed == []
    c._closing = False
    c._proc.returncode = 1  # exited: its exit event tells the jobs
    feed(c)
    assert killed == []


def test_closing_with_and_without_a_reason(clock, killed):
    c = make_client()
    job = c.submit({"op": "generate"})
    c.close(reason="it is being replaced")
    assert job.error.code == protocol.WORKER_STOPPED and job.error.event["reason"] == "it is being replaced"
    assert job.error.event["id"] == job.id and job.error.event["event"] == "error"
    assert c.close_reason == "it is being replaced" and c.returncode == -9 and c._hello_job is None
    assert not c._closing
    c = make_client()
    job = c.submit({"op": "generate"})
    c.close()
    assert job.cancelled and job.error.message == "the worker was closed before the request finished"
    assert "reason" not in job.error.event and c.close_reason is None and job.error.event["id"] == job.id
    assert c.close() == -9  # closed already: its code again
    assert [k for k in killed if k[0] == "shutdown"] == [("shutdown", 2.0), ("shutdown", 2.0)]  # 2 s of grace


def test_close_returns_even_if_a_reader_thread_never_ends(killed):
    """A reader kept alive (a process outside the worker's group holding its stdout) must not hang Blender's
    close: each thread is waited for 5 s at most (a hang guard below, not a timing)."""
    c = make_client()
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, daemon=True)
    stuck.start()
    c._threads = [stuck]
    closer = threading.Thread(target=c.close, daemon=True)
    closer.start()
    closer.join(60.0)
    release.set()
    assert not closer.is_alive(), "close() waited for ever on a reader thread"


# ------------------------------------------------------------------------ a job failed here (protocol_error)


BAD = {"event": "progress", "step": "3", "steps": 10, "progress": 0.3}


def bad_event(rid):
    from salad_blender.worker_streams import _decode_event

    return _decode_event(json.dumps({"id": rid, **BAD}).encode())


def test_a_job_failed_with_a_protocol_error_is_cancelled_in_the_worker_and_its_late_words_dropped(clock, killed):
    c = make_client()
    job = c.submit({"op": "generate"})
    other = c.submit({"op": "generate"})
    assert feed(c, bad_event(job.id)) == []
    assert job.error.code == protocol.PROTOCOL_ERROR and not other.done
    assert ops(c)[-1] == ("cancel", job.id) and list(c._ended_early) == [job.id]
    late = [{"id": job.id, "event": "progress", "step": 4, "steps": 10, "progress": 0.4}]
    assert feed(c, *late) == [] and list(c._ended_early) == [job.id]  # more may come
    assert feed(c, {"id": job.id, "event": "error", "code": "cancelled", "message": "cancelled"}) == []
    assert list(c._ended_early) == []  # its last word came
    stray = {"id": job.id, "event": "progress", "step": 5, "steps": 10, "progress": 0.5}
    assert feed(c, stray) == [stray]  # after the last word: unclaimed again, as any unknown id
    c2 = make_client()
    j2 = c2.submit({"op": "generate"})
    feed(c2, bad_event(j2.id))
    assert feed(c2, {"id": j2.id, "event": "result", "data": {}}) == [] and list(c2._ended_early) == []


@pytest.mark.parametrize("op", ["hello", "version", "cancel"])
def test_a_protocol_error_of_a_hello_or_a_cancel_sends_no_cancel(clock, killed, op):
    c = make_client()
    job = c.submit({"op": op, "target": "x"} if op == "cancel" else {"op": op})
    sent = len(c._writer.lines)
    feed(c, bad_event(job.id))
    assert job.error.code == protocol.PROTOCOL_ERROR and len(c._writer.lines) == sent and not c._ended_early


def test_a_protocol_error_after_the_worker_exited_sends_no_cancel(clock, killed):
    c = make_client()
    job = c.submit({"op": "generate"})
    c._proc.returncode = 1
    sent = len(c._writer.lines)
    feed(c, bad_event(job.id))
    assert job.error.code == protocol.PROTOCOL_ERROR and len(c._writer.lines) == sent and not c._ended_early


def test_unknown_ids_and_null_ids_stay_unclaimed(clock, killed):
    c = make_client()
    c._ended_early.append("gone")
    null = {"id": None, "event": "error", "code": "bad_json", "message": "x"}
    unknown = {"id": "r99", "event": "result", "data": {}}
    assert feed(c, null, unknown) == [null, unknown]


def test_the_worker_exit_forgets_the_jobs_failed_here(clock, killed):
    c = make_client()
    job = c.submit({"op": "generate"})
    feed(c, bad_event(job.id))
    assert list(c._ended_early) == [job.id]
    c._proc.returncode = 3
    unclaimed = feed(c, ("exit", 3))
    assert list(c._ended_early) == [] and unclaimed[-1]["event"] == "exit"


def test_the_cancel_map_ages_and_forgets(clock, killed):
    c = make_client()
    a, b = c.submit({"op": "hold"}), c.submit({"op": "hold"})
    assert c.unanswered_cancel() == 0.0
    c.cancel(a)
    clock.now += 4.0
    c.cancel(b)
    clock.now += 3.0
    assert c.unanswered_cancel() == 7.0  # the oldest
    assert not c.busy  # cancelled requests do not keep the worker busy (nor do the cancels)
    feed(c, {"id": a.id, "event": "error", "code": "cancelled", "message": "cancelled"})
    assert c.unanswered_cancel() == 3.0 and list(c._cancel_sent) == [b.id]
    c.cancel(b)  # asked again: the first time counts
    assert c.unanswered_cancel() == 3.0


@pytest.mark.parametrize("op", ["hello", "version"])
def test_a_hello_or_version_answer_is_checked_for_the_protocol(op, clock, killed):
    c = make_client()
    assert c.info == {"protocol": protocol.PROTOCOL_VERSION}  # the start's hello, read
    job = c.submit({"op": op})
    feed(c, {"id": job.id, "event": "result", "data": {"protocol": 99}})
    assert job.error.code == protocol.PROTOCOL_MISMATCH and "speaks protocol 99" in job.error.message
    other = c.submit({"op": "generate"})  # any other op's result is its own business
    feed(c, {"id": other.id, "event": "result", "data": {"protocol": 99}})
    assert other.error is None and other.result == {"protocol": 99}
