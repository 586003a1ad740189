"""The live re-weight preview's logic (issue #18) with an injected clock and fake jobs: debounce, cancelling the
previous request, one preview replaced by the next (never the user's Action), Apply keeps the shown one."""

import pytest

from salad_blender.live_preview import DEBOUNCE, POLL, ReweightPreview


class FakeJob:
    def __init__(self, request, steps_to_finish=2, fail=False):
        self.request, self.left, self.fail = request, steps_to_finish, fail
        self.state, self.message, self.output = "running", "", None

    @property
    def finished(self):
        return self.state != "running"

    def poll(self):
        if self.state == "running":
            self.left -= 1
            if self.left <= 0:
                if self.fail:
                    self.state, self.message = "failed", "Re-weight failed: the worker stopped"
                else:
                    self.state, self.output = "done", f"action{self.request}"
        return self.finished

    def cancel(self):
        if self.state == "running":
            self.state = "cancelled"


class FakeStore:
    def __init__(self):
        self.marked, self.discarded, self.kept, self.restored = [], [], [], []

    def mark(self, a):
        self.marked.append(a)

    def discard(self, a):
        assert a != "user action", "the user's own action must never be deleted"
        self.discarded.append(a)

    def keep(self, a):
        self.kept.append(a)
        return a

    def restore(self, source):
        self.restored.append(source)


def make(fail=False, steps=()):
    """A controller on "user action" whose jobs finish after 2 polls (or ``steps[i]`` for the i-th job)."""
    started = []

    def start(word, scale):
        n = steps[len(started)] if len(started) < len(steps) else 2
        job = FakeJob((word, scale), steps_to_finish=n, fail=fail)
        started.append(job)
        return job

    store = FakeStore()
    return ReweightPreview("user action", start, store), started, store


def run(ctl, t, until, dt=0.05):
    while t < until:
        ctl.tick(t)
        t += dt
    return t


def test_slider_moves_are_debounced_into_one_request_with_the_last_value():
    ctl, started, _ = make()
    for i, scale in enumerate((1.2, 1.5, 1.9)):  # three moves 0.1 s apart
        ctl.changed("walks", scale, now=i * 0.1)
        assert ctl.tick(i * 0.1 + 0.05) is not None and not started
    assert ctl.tick(0.2 + DEBOUNCE - 0.01) is not None and not started  # not yet: 0.3 s after the last move
    ctl.tick(0.2 + DEBOUNCE)
    assert [j.request for j in started] == [("walks", 1.9)]


def test_a_new_request_cancels_the_running_one_and_only_its_result_is_shown():
    ctl, started, store = make(steps=(1000,))
    ctl.changed("walks", 1.5, now=0.0)
    ctl.tick(DEBOUNCE)
    first = started[0]
    ctl.changed("walks", 2.5, now=DEBOUNCE + 0.01)  # while the first still runs
    ctl.tick(DEBOUNCE + 0.02)
    assert first.state == "running"  # cancelled only when the next request actually starts
    t = run(ctl, DEBOUNCE + 0.02, 2 * DEBOUNCE + 0.05)
    assert first.state == "cancelled" and len(started) == 2
    run(ctl, t, t + 0.5)
    assert ctl.preview == "action('walks', 2.5)" and store.marked == ["action('walks', 2.5)"]
    assert ctl.tick(5.0) is None  # nothing waits or runs: the timer stops


def test_each_preview_replaces_the_previous_one_and_never_the_users_action():
    ctl, _, store = make()
    t = 0.0
    for scale in (0.5, 2.0, 3.0):
        ctl.changed("walks", scale, now=t)
        t = run(ctl, t, t + 1.0)
    assert ctl.preview == "action('walks', 3.0)"
    assert store.discarded == ["action('walks', 0.5)", "action('walks', 2.0)"]
    assert "user action" not in store.discarded


def test_apply_keeps_the_shown_preview_and_drops_later_requests():
    ctl, started, store = make()
    ctl.changed("walks", 2.0, now=0.0)
    t = run(ctl, 0.0, 1.0)
    ctl.changed("walks", 3.0, now=t)
    ctl.tick(t + DEBOUNCE)  # a newer request runs ...
    kept = ctl.apply()  # ... but Apply keeps what is on screen
    assert kept == "action('walks', 2.0)" and store.kept == [kept]
    assert started[-1].state == "cancelled" and ctl.preview is None and not ctl.active
    assert store.discarded == []


def test_discard_shows_the_source_again_and_deletes_only_the_preview():
    ctl, _, store = make()
    ctl.changed("walks", 2.0, now=0.0)
    run(ctl, 0.0, 1.0)
    ctl.discard()
    assert store.restored == ["user action"] and store.discarded == ["action('walks', 2.0)"]
    assert not ctl.active


def test_discard_without_restore_leaves_what_the_armature_plays_and_cancels_the_running_request():
    """A normal edit started while the armature plays another action: the session ends, nothing is reassigned."""
    ctl, started, store = make(steps=(2, 50))
    ctl.changed("walks", 2.0, now=0.0)
    t = run(ctl, 0.0, 1.0)
    ctl.changed("walks", 3.0, now=t)
    run(ctl, t, t + 0.5)
    assert started[-1].state == "running"
    ctl.discard(restore=False)
    assert store.restored == [] and store.discarded == ["action('walks', 2.0)"]
    assert started[-1].state == "cancelled" and not ctl.active


def test_a_failed_request_keeps_the_shown_preview_and_says_why():
    ctl, _, store = make()
    ctl.changed("walks", 2.0, now=0.0)
    run(ctl, 0.0, 1.0)
    ctl.start = lambda w, s: FakeJob((w, s), fail=True)
    ctl.changed("walks", 3.0, now=1.0)
    run(ctl, 1.0, 2.0)
    assert ctl.preview == "action('walks', 2.0)" and "worker stopped" in ctl.message
    assert store.discarded == []


def test_returning_to_the_shown_value_starts_nothing():
    ctl, started, _ = make()
    ctl.changed("walks", 2.0, now=0.0)
    t = run(ctl, 0.0, 1.0)
    ctl.changed("walks", 2.5, now=t)
    ctl.changed("walks", 2.0, now=t + 0.1)  # back before the debounce ran out
    run(ctl, t + 0.1, t + 1.0)
    assert len(started) == 1


def test_a_request_refused_at_its_start_says_why_and_the_timer_goes_on():
    """Before: an error from starting the request (e.g. the worker busy with other settings) escaped tick(), which
    Blender's timer reports as a console traceback before dropping the timer: the slider then did nothing, silently."""
    ctl, _, store = make()

    def refused(word, scale):
        raise ValueError("The model worker is busy with another job")

    ctl.start = refused
    ctl.changed("walks", 2.0, now=0.0)
    assert ctl.tick(1.0) is None  # nothing runs; the next slider move schedules again
    assert "busy with another job" in ctl.message and ctl.preview is None and store.discarded == []
    ctl.start = make()[0].start
    ctl.changed("walks", 2.0, now=2.0)
    run(ctl, 2.0, 3.0)
    assert ctl.preview == "action('walks', 2.0)" and ctl.message == ""


def test_the_timer_delay_follows_what_waits_or_runs():
    """A fresh session shows nothing and stops the timer; a pending request asks to be ticked when it is due
    (at most POLL later); a running job keeps the timer at POLL until its result is shown."""
    ctl, started, _ = make(steps=(3,))
    assert not ctl.active and ctl.message == "" and ctl.tick(0.0) is None and ctl.apply() is None
    assert ctl.changed("walks", 2.0, now=1.0) == DEBOUNCE
    assert ctl.tick(1.0) == pytest.approx(POLL)  # 0.3 s to wait: tick again in 0.1 s
    assert ctl.tick(1.0 + DEBOUNCE - 0.04) == pytest.approx(0.04)  # due in 0.04 s
    assert ctl.tick(1.0 + DEBOUNCE) == POLL and len(started) == 1  # started, running
    assert ctl.tick(1.5) == POLL  # still running
    assert ctl.tick(1.6) is None and ctl.preview == "action('walks', 2.0)"  # shown: the timer stops


def test_a_job_that_ends_without_a_result_or_fails_with_one_changes_nothing():
    """Only a job that is done *and* has an Action replaces the preview: a job done without one (the worker
    gave nothing back) or a failed one with a stale output leaves the shown preview; Apply with nothing shown
    keeps nothing."""
    ctl, _, store = make()
    assert ctl.apply() is None and store.kept == []
    ctl.changed("walks", 2.0, now=0.0)
    run(ctl, 0.0, 1.0)
    for state in ("done", "failed"):
        job = FakeJob(("walks", 3.0), steps_to_finish=1)
        job.poll = lambda job=job, state=state: (setattr(job, "state", state), setattr(
            job, "output", None if state == "done" else "stale"), True)[-1]
        ctl.start = lambda w, s, job=job: job
        ctl.changed("walks", 3.0 if state == "done" else 4.0, now=5.0)
        run(ctl, 5.0, 6.0)
        assert ctl.preview == "action('walks', 2.0)" and store.marked == ["action('walks', 2.0)"], state
