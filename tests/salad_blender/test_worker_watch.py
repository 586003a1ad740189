"""salad_blender.worker_watch on a hand-driven clock: when a worker is probed and when it is given up.

test_worker_reliability.py checks the same against a scripted worker with shortened limits and real waits; here
the module's own limits (10 s unread, 15 s silence, 15 s for the probe) are walked through exactly, to the edge,
without waiting: ``worker_watch.time`` is replaced by a clock the test moves.
"""

from __future__ import annotations

import pytest
from fake_clock import hand_clock

from salad_blender import worker_watch
from salad_blender.worker_watch import WorkerWatch

OK, PROBE = ("", ""), ("probe", "")



@pytest.fixture
def clock(monkeypatch):
    return hand_clock(monkeypatch, worker_watch)


def test_the_limits_are_the_documented_ones():
    assert (worker_watch.WRITE_STALL, worker_watch.SILENCE, worker_watch.PROBE_WAIT) == (10.0, 15.0, 15.0)


def test_a_request_unread_for_more_than_ten_seconds_is_stuck_at_once(clock):
    w = WorkerWatch()
    assert w.check(True, 10.0) == OK  # the limit itself is still fine
    assert w.check(True, 10.4) == ("stuck", "it did not read a request for 10 s")
    assert w.check(True, 12.6) == ("stuck", "it did not read a request for 13 s")
    # even with nothing else in flight (the unread line is a request too), and before any silence
    assert WorkerWatch().check(False, 10.5) == ("stuck", "it did not read a request for 10 s")


def test_silence_in_flight_is_probed_once_then_given_up_after_the_probe_wait(clock):
    w = WorkerWatch()
    start = clock.now
    assert w.check(True, 0.0) == OK  # the first check with a request in flight starts the silence clock
    clock.now = start + 15.0
    assert w.check(True, 0.0) == OK  # 15 s of silence: not yet
    assert w.probe_sent is None
    clock.now = start + 15.5
    assert w.check(True, 0.0) == PROBE
    assert w.probe_sent == start + 15.5
    clock.now = start + 30.5  # the probe's 15 s: still waiting, and no second probe
    assert w.check(True, 0.0) == OK
    assert w.probe_sent == start + 15.5
    clock.now = start + 30.75
    assert w.check(True, 0.0) == ("stuck", "it sent nothing for 31 s and did not answer a ping")
    assert w.check(True, 0.0)[0] == "stuck"  # and stays so


def test_any_event_answers_the_probe_and_restarts_the_silence(clock):
    w = WorkerWatch()
    assert w.check(True, 0.0) == OK
    clock.now += 16.0
    assert w.check(True, 0.0) == PROBE
    clock.now += 5.0
    w.heard_now()
    assert (w.heard, w.probe_sent) == (clock.now, None)
    clock.now += 15.0
    assert w.check(True, 0.0) == OK  # counted from the event, not from the start
    clock.now += 14.0  # long past the old probe's wait: no stale probe gives it up
    assert w.check(True, 0.0) == PROBE


def test_idle_silence_is_no_sign(clock):
    w = WorkerWatch()
    assert w.check(True, 0.0) == OK  # a job runs
    clock.now += 5.0
    assert w.check(False, 0.0) == OK  # it ends: the last poll (nothing polls while no job runs)
    clock.now += 100.0
    assert w.check(True, 0.0) == OK  # a request after 100 s idle: no probe at once
    assert (w.heard, w.probe_sent) == (clock.now, None)
    clock.now += 15.0
    assert w.check(True, 0.0) == OK  # it gets its full 15 s
    clock.now += 0.5
    assert w.check(True, 0.0) == PROBE


def test_going_idle_forgets_a_probe_in_flight(clock):
    w = WorkerWatch()
    assert w.check(True, 0.0) == OK
    clock.now += 16.0
    assert w.check(True, 0.0) == PROBE
    assert w.check(False, 0.0) == OK  # the request ended (cancelled): the probe is not waited for
    clock.now += 100.0
    assert w.check(True, 0.0) == OK  # a new request: the old probe is forgotten, the silence counts from now
    clock.now += 15.5
    assert w.check(True, 0.0) == PROBE  # a new silence, a new probe; not "stuck" for the old one
