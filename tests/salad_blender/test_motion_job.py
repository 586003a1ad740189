"""salad_blender.motion_job without Blender or a worker: the state machine driven by scripted answers.

The real worker is exercised end to end in test_jobs.py; here a scripted client answers each request
so the order of requests, the progress ranges and every way a job ends are checked in isolation.
"""

from salad_blender import motion_job
from salad_blender.client import WorkerError
from salad_blender.inputs import JobError


class Answer:
    """A worker request that is already answered (what ``client.submit`` returns)."""

    def __init__(self, result=None, error=None):
        self.result, self.error = result, error
        self.done, self.progress, self.step, self.steps = True, 1.0, 0, 0
        self.cancelled, self.state = False, "done"  # as the client's Job: queued → running → done | failed

    def poll(self):
        return []

    def cancel(self):
        self.cancelled = True


class ScriptedClient:
    def __init__(self, answers):
        self.answers, self.sent = dict(answers), []

    def submit(self, request):
        self.sent.append(request["op"])
        return self.answers[request["op"]]

    def stderr_tail(self, lines=40):
        return "worker log"


def make(answers, apply=lambda result: result["value"] * 2):
    client = ScriptedClient(answers)
    job = motion_job.MotionJob("generate", "Generate", client, Answer({"pid": 1}), load={"op": "load"},
                               op={"op": "generate"}, apply=apply)
    return job, client


def test_hello_load_run_apply_in_order():
    job, client = make({"load": Answer({}), "generate": Answer({"value": 21})})
    assert job.poll() and job.state == "done" and job.output == 42 and job.progress == 1.0
    assert client.sent == ["load", "generate"] and job.message.startswith("Generate: done in")


def test_apply_error_fails_the_job_with_its_message():
    def apply(result):
        raise JobError("the armature was deleted")

    job, _ = make({"load": Answer({}), "generate": Answer({"value": 1})}, apply)
    assert job.poll() and job.state == "failed" and job.message == "Generate: the armature was deleted"


def test_worker_errors_become_directions():
    job, client = make({"load": Answer(error=WorkerError("model_error", "no such folder"))})
    assert job.poll() and job.state == "failed" and client.sent == ["load"]
    assert job.message == f"Cannot load the model: no such folder. Pick another model in {motion_job.PREFS_HINT}."
    job, _ = make({"load": Answer({}), "generate": Answer(error=WorkerError("cancelled", "stopped"))})
    assert job.poll() and job.state == "cancelled" and "nothing was changed" in job.message
    exited = WorkerError("worker_exited", "the worker exited", {"returncode": 1, "stderr": "ImportError: torch"})
    message, details = motion_job.describe_worker_error(exited, "run")
    assert "ImportError: torch" in message and "exit code 1" in message and details == "ImportError: torch"
    # the client's own wording (issue: "(the model worker exited with code 1; exit code 1)"): said once
    exited = WorkerError("worker_exited", "the model worker exited with code 1: ImportError: torch",
                         {"returncode": 1, "stderr": "ImportError: torch"})
    message, _ = motion_job.describe_worker_error(exited, "run")
    assert message.startswith("The model worker stopped (exited with code 1: ImportError: torch). Check ")


def test_a_killed_worker_is_not_blamed_on_the_worker_python():
    """Killed mid-job (out of memory, or by hand): no 'check Worker Python' and no stray log line in the message.

    Seen in Blender: "The model worker stopped (was killed by signal 9: [salad worker 18227] torch 2.13.0+cpu
    imported). Check 'Worker Python' … it needs an environment with salad_model and torch installed."
    """
    tail = "[salad worker 18227] torch 2.13.0+cpu imported"
    for stderr in ("", tail):
        killed = WorkerError("worker_exited", "the model worker was killed by signal 9",
                             {"returncode": -9, "stderr": stderr})
        message, details = motion_job.describe_worker_error(killed, "run")
        assert message == ("The model worker stopped (was killed by signal 9); nothing was changed and the next job "
                           "starts a new one. If it happens again the computer may be short of memory: try a "
                           "shorter clip.")
        assert details == stderr  # the log stays in Details
    crashed = WorkerError("worker_exited", "the model worker was killed by signal 11", {"returncode": -11})
    assert "Check 'Worker Python'" in motion_job.describe_worker_error(crashed, "hello")[0]  # a broken interpreter
    # audit9: a job whose worker was killed on every try (kill -9 three times in Blender 4.3) met the last kill
    # while the new worker started up, and that blamed the Worker Python, with a stray log line; a SIGKILL or
    # SIGTERM comes from outside (out of memory, by hand) at any stage, only a crash signal blames the interpreter
    for rc in (-9, -15):
        killed = WorkerError("worker_exited", f"the model worker was killed by signal {-rc}: {tail}",
                             {"returncode": rc, "stderr": tail})
        message, details = motion_job.describe_worker_error(killed, "hello")
        assert message.startswith(f"The model worker stopped (was killed by signal {-rc}); nothing was changed")
        assert "Worker Python" not in message and tail not in message and details == tail


def test_cancel_before_an_answer():
    pending = Answer()
    pending.done = False
    job, _ = make({"load": pending})
    assert not job.poll() and job.stage == "load"
    job.cancel()
    assert job.finished and job.state == "cancelled" and pending.cancelled
    assert job.poll()  # a finished job stays finished


class Running(Answer):
    """A request still running: its worker stage, step and progress as the client's Job keeps them."""

    def __init__(self):
        super().__init__()
        self.done, self.stage, self.state = False, "", "running"

    def at(self, stage, step, steps):
        self.stage, self.step, self.steps, self.progress = stage, step, steps, step / steps
        return self


def test_a_second_worker_stage_is_named_and_fills_its_own_share_of_the_bar():
    """Audit 5: the video import's clean-up counted its steps from 0 again under 'Reading the video' (the bar
    jumped back); with spans each stage fills its share and the status names the clean-up."""
    video = Running()
    client = ScriptedClient({"load": Answer({}), "video": video})
    job = motion_job.MotionJob("video", "Import from video", client, Answer({"pid": 1}), load={"op": "load"},
                               op={"op": "video"}, apply=lambda r: r, describe="Reading the video")
    job.spans = {"reading video": (0.0, 0.5), "clean-up": (0.5, 1.0)}
    lo, hi = motion_job._RANGES["run"]
    job.poll()
    video.at("reading video", 60, 60)
    job.poll()
    read_done = job.progress
    assert abs(read_done - (lo + 0.5 * (hi - lo))) < 1e-9 and job.status == "Reading the video: step 60/60"
    video.at("clean-up", 3, 12)
    job.poll()
    assert job.progress > read_done  # never backwards
    assert abs(job.progress - (lo + (0.5 + 0.5 * 3 / 12) * (hi - lo))) < 1e-9
    assert job.status == "Cleaning up the motion (motion prior): step 3/12"


# ------------------------------------------------------------------------ sent again after the worker went away


def gone(code="worker_exited", returncode=3, reason=None):
    event = {"returncode": returncode} if code == "worker_exited" else {"reason": reason}
    message = ("the model worker exited with code 3: fake crash" if code == "worker_exited"
               else f"the model worker was stopped before the request finished: {reason}")
    return WorkerError(code, message, {**event, "stderr": "fake crash"})


class Pool:
    """What ``requeuer`` / ``restarter`` need of a WorkerPool: new scripted workers, each with its hello."""

    def __init__(self, answers):
        self.answers, self.clients, self.closed, self.configs = answers, [], [], []
        self.hello = Answer({"pid": 2})

    def get(self, config):
        self.configs.append(config)
        self.clients.append(ScriptedClient(self.answers))
        return self.clients[-1]

    def close(self, reason=None):
        self.closed.append(reason)


def requeued(err, stage="run", requeues=0):
    """A job whose worker went away in ``stage``: (job, its first client, the pool its requeue draws on)."""
    fail = Answer(error=err)
    answers = {"load": Answer({}) if stage == "run" else fail, "generate": fail}
    job, client = make(answers)
    pool = Pool({"load": Answer({}), "generate": Answer({"value": 5})})
    job.requeue = motion_job.requeuer(pool, "config")
    job.requeues = requeues
    return job, client, pool


def test_a_job_whose_worker_crashed_starts_again_from_hello_on_the_pools_worker(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(motion_job.time, "monotonic", lambda: clock[0])
    job, first, pool = requeued(gone())
    job.stage, job._deadline = "run", 0.0
    job.step = job.steps = 7
    assert job._requeue(gone()) and job.requeues == 1
    assert (job.stage, job.step, job.steps, job._deadline) == ("hello", 0, 0, 100.0 + motion_job.HELLO_TIMEOUT)
    assert job.status == "The model worker exited with code 3; trying again on a new one (1 of 2)"
    assert job._client is pool.clients[0] and job._current is pool.hello and pool.closed == []  # not closed again
    assert job.state == "running"


def test_a_requeued_job_finishes_on_the_new_worker():
    job, first, pool = requeued(gone())
    assert not job.poll() and job.stage == "hello" and job.status.endswith("(1 of 2)")  # a poll ends at a failure
    assert job.poll() and job.state == "done" and job.output == 10, job.message
    assert first.sent == ["load", "generate"] and pool.clients[0].sent == ["load", "generate"]
    assert job.requeues == 1 and job.message.startswith("Generate: done in")


def test_a_crash_while_loading_is_sent_again_too():
    job, first, pool = requeued(gone(), stage="load")
    assert not job.poll() and job.poll() and job.state == "done" and first.sent == ["load"] and job.requeues == 1


def test_a_worker_stopped_for_a_reason_says_why_while_the_job_goes_again():
    job, _, pool = requeued(gone("worker_stopped", reason="it was stuck: it did not read a request for 11 s"))
    job.stage = "run"
    job._worker_failed(gone("worker_stopped", reason="it was stuck: it did not read a request for 11 s"))
    assert job.status == ("The model worker was stopped (it was stuck: it did not read a request for 11 s); "
                          "trying again on a new one (1 of 2)")
    bare = WorkerError("worker_stopped", "the model worker was stopped before the request finished: ?", {})
    assert motion_job._worker_gone(bare) == ("The model worker was stopped (the model worker was stopped before the "
                                             "request finished: ?)")
    assert motion_job._worker_gone(gone(returncode=-9)) == "The model worker was killed by signal 9"
    assert motion_job._worker_gone(gone(returncode=0)) == "The model worker exited with code 0"
    assert motion_job._worker_gone(WorkerError("worker_exited", "x", {})) == "The model worker exited with code None"


def test_the_third_crash_fails_the_job_saying_how_often_it_was_tried():
    job, _, pool = requeued(gone(), requeues=motion_job.MAX_REQUEUES)
    assert motion_job.MAX_REQUEUES == 2
    assert job.poll() and job.state == "failed" and pool.clients == []
    assert job.message.endswith("(It was tried 3 times, each time on a new worker.)"), job.message
    assert job.message.startswith("The model worker stopped (exited with code 3: fake crash). Check ")
    job, _, pool = requeued(gone(), requeues=1)  # the second crash still goes again: (2 of 2)
    job.stage = "load"
    job._worker_failed(gone())
    assert job.state == "running" and job.requeues == 2 and job.status.endswith("(2 of 2)")
    stopped, _, _ = requeued(gone("worker_stopped", reason="it was stuck"), requeues=2)
    assert stopped.poll() and stopped.message == ("The model worker was stopped (it was stuck); nothing was changed "
                                                  "and the next job starts a new one. (It was tried 3 times, each "
                                                  "time on a new worker.)")


def test_what_is_not_sent_again():
    # a crash at start-up (the interpreter's fault), a model error, no requeue hook: failed at once, tried once
    for err, stage in ((gone(), "hello"), (WorkerError("model_error", "bad file"), "run"),
                       (WorkerError("internal", "boom"), "run")):
        job, _, pool = requeued(err)
        job.stage = stage
        assert not job._requeue(err) and pool.clients == [] and job.requeues == 0, (err.code, stage)
    job, _, _ = requeued(gone())
    job.requeue = None
    assert job.poll() and job.state == "failed" and "tried" not in job.message
    job, _, pool = requeued(WorkerError("cancelled", "stopped"))
    assert job.poll() and job.state == "cancelled" and pool.clients == []
    assert job.message == "Generate: cancelled, nothing was changed."


def test_a_worker_that_cannot_be_started_again_fails_the_job_with_both_reasons():
    job, _, _ = requeued(gone())

    def requeue():
        raise JobError("Cannot start the model worker with 'python9': No such file")

    job.requeue = requeue
    assert job.poll() and job.state == "failed" and job.requeues == 0
    assert job.message == ("The model worker exited with code 3 and could not be started again: Cannot start the "
                           "model worker with 'python9': No such file")


def test_the_pool_hooks():
    class NoClose:
        hello = None

        def get(self, config):
            return None

    assert motion_job.requeuer(NoClose(), "c") is None and motion_job.restarter(NoClose(), "c") is None
    pool = Pool({})
    client, hello = motion_job.requeuer(pool, "c")()
    assert client is pool.clients[0] and hello is pool.hello and pool.closed == []  # the worker is gone already
    client, hello = motion_job.restarter(pool, "c")()  # a stuck worker: closed with the reason, then a new one
    assert client is pool.clients[1] and hello is pool.hello
    assert pool.closed == ["it did not stop a cancelled request within 10 s"] and pool.configs == ["c", "c"]


def test_make_job_wires_both_hooks_to_its_pool():
    pool = Pool({})
    job = motion_job.make_job("generate", "Generate", motion_job.WorkerConfig(python="py", model="demo"),
                              {"op": "generate"}, lambda r: r, pool)
    job.requeue()
    job.restart()
    assert len(pool.clients) == 3 and pool.closed == ["it did not stop a cancelled request within 10 s"]


def test_a_job_that_is_not_sent_again_keeps_the_workers_log_in_its_details():
    # the crash's own stderr, else the client's tail (read late: the exit can be reported before stderr is read)
    job, _, _ = requeued(gone(), requeues=2)
    assert job.poll() and job.details == "fake crash"
    bare = WorkerError("worker_exited", "the model worker exited with code 3", {"returncode": 3})
    job, _, _ = requeued(bare, requeues=2)
    assert job.poll() and job.details == "worker log"
    assert job.message.startswith("The model worker stopped (exited with code 3: worker log). Check 'Worker Python'")
    internal = WorkerError("internal", "boom", {"stderr": "Traceback: boom"})
    job, _, _ = requeued(internal)
    assert job.poll() and job.details == "Traceback: boom" and job.message.startswith("The model worker failed")
    # the stage it failed in decides the wording: a failure while loading is the model's
    job, _, _ = requeued(internal, stage="load")
    assert job.poll() and job.message == f"Cannot load the model: boom. Pick another model in {motion_job.PREFS_HINT}."


def test_a_cancelled_answer_ends_the_job_at_that_time(monkeypatch):
    monkeypatch.setattr(motion_job.time, "monotonic", lambda: 7.0)
    job, _, pool = requeued(WorkerError("cancelled", "stopped"))
    assert job.poll() and job.finished_at == 7.0 and job.elapsed == 0.0
