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
