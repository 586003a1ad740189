"""The job state machine: one chain of worker requests and an apply step, polled by whoever owns the main thread.

Why plain objects: headless Blender runs no timers or modal operators, so the UI (a 0.1 s
``bpy.app.timers`` callback), ``tools/batch.py`` and the tests all drive the same object by calling
:meth:`MotionJob.poll`. A job is ``hello`` (only when the worker was just started), ``load`` (answered
at once when that model is already loaded), then the op, then *apply* on the polling thread — the only
step that touches Blender data (it is a callable given by :mod:`jobs`). No bpy here.
"""

from __future__ import annotations

import math
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from . import model_limits, rigs
from .client import Job as WorkerJob
from .client import WorkerClient, WorkerError
from .inputs import PREFS_HINT, JobError, ResultWarning, check_model
from .protocol import MAX_LINE_BYTES, WORKER_EXITED, WORKER_STOPPED, EncodedRequest, encode_request
from .worker_pool import POOL, WorkerConfig, WorkerPool

HELLO_TIMEOUT = 60.0  # seconds a fresh worker gets to answer hello (interpreter start-up only)
CANCEL_GRACE = 10.0  # seconds a cancelled request may keep the worker busy before a new job restarts it
POLL_INTERVAL = 0.1
MAX_REQUEUES = 2  # times a job is sent again to a new worker after its worker crashed or was stopped

# Progress ranges of the stages (the op dominates; loading a model the first time is slow, then free).
_RANGES = {"hello": (0.0, 0.03), "load": (0.03, 0.2), "run": (0.2, 0.97), "apply": (0.97, 1.0)}
# What the status line calls a worker progress stage of an op that has more than one (the video import's
# clean-up counts its own steps after the frames read: without its name the count seemed to start over).
STAGE_NAMES = {"clean-up": "Cleaning up the motion (motion prior)"}


class MotionJob:
    """One chain of worker requests + an apply step on the polling thread.

    ``state``: running → done | failed | cancelled. ``status`` is a one-line description for the
    panel and status bar, ``message`` the final word (what happened, what to do), ``details`` the
    worker's log tail after a crash. ``output`` is what the apply step returned (an Action, an
    Image, the check report).
    """

    def __init__(self, kind: str, label: str, client: WorkerClient, hello: WorkerJob, *, load: dict | None,
                 op: dict | None, apply: Callable[[dict], Any], describe: str = "") -> None:
        self.kind = kind
        self.label = label
        self.state = "running"
        self.stage = "hello"
        self.progress = 0.0
        self.step = self.steps = 0  # sampling step of the op, once it runs
        self.status = "Starting the model worker"
        self.message = ""
        self.details = ""
        self.warning = ""  # the worker's prompt_warning message: the prompt is far from the model's training
        self.output: Any = None
        self.result: dict | None = None
        self.started = time.monotonic()
        self.finished_at: float | None = None
        self._client = client
        self._load, self._op, self._apply = load, op, apply
        self._describe = describe or label
        self._current: WorkerJob = hello  # done already when the worker was running
        self._deadline = time.monotonic() + HELLO_TIMEOUT
        # Asked before the apply step: a reason to wait ("" = apply now), e.g. the user is in Edit Mode.
        self.hold: Callable[[], str] | None = None
        # A new worker and its hello (make_job sets it), for a worker still busy with a cancelled request.
        self.restart: Callable[[], tuple[WorkerClient, WorkerJob]] | None = None
        # The pool's worker (a new one if this one is gone) and its hello, to send the job again after its
        # worker crashed or was stopped (make_job sets it); ``requeues`` counts the times.
        self.requeue: Callable[[], tuple[WorkerClient, WorkerJob]] | None = None
        self.requeues = 0
        # The share (lo, hi) of the run's bar each worker progress stage fills, for ops with several stages
        # (each counts from 0 again); a stage not listed fills the whole bar.
        self.spans: dict[str, tuple[float, float]] = {}

    def __repr__(self) -> str:
        return f"MotionJob({self.kind!r}, {self.label!r}, state={self.state!r}, progress={self.progress:.2f})"

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started

    # -- driving ----------------------------------------------------------------------------------

    def poll(self) -> bool:
        """Advance as far as the worker's answers allow (never blocks); True once finished."""
        if self.finished:
            return True
        try:
            self._advance()
        except Exception as exc:  # noqa: BLE001 - a job must end in a state, never leak an exception
            traceback.print_exc()
            self._fail(f"{self.label} failed unexpectedly: {type(exc).__name__}: {exc}")
        return self.finished

    def _advance(self) -> None:
        while not self.finished:
            job = self._current
            events = job.poll()
            lo, hi = _RANGES[self.stage]
            worker_stage = getattr(job, "stage", "")
            if self.stage == "run" and worker_stage in self.spans:
                a, b = self.spans[worker_stage]
                lo, hi = lo + (hi - lo) * a, lo + (hi - lo) * b
            self.progress = lo + (hi - lo) * float(job.progress)
            if self.stage == "load":
                detail = next((e.get("detail") for e in reversed(events) if e.get("detail")), None)
                if detail:
                    self.status = f"Loading the model: {detail}"
            elif self.stage == "run" and job.steps:
                self.step, self.steps = job.step, job.steps
                self.status = f"{STAGE_NAMES.get(worker_stage, self._describe)}: step {job.step}/{job.steps}"
            if not job.done:
                if (self.stage == "load" or (self.stage == "run" and job.state == "queued")) and self._stuck():
                    self._restart_worker()
                    continue
                if self.stage == "hello" and time.monotonic() > self._deadline:
                    tail = self._client.stderr_tail(40)
                    close = getattr(self._client, "close", None)
                    if close is not None:  # it does not speak the protocol: it was kept, and each job waited again
                        close(0.5, reason=f"it did not answer hello within {HELLO_TIMEOUT:g} s")
                    self._fail(f"The model worker did not answer within {HELLO_TIMEOUT:g} s and was stopped. Click "
                               f"'Check' in {PREFS_HINT} to see what it prints.", tail)
                return
            if job.error is not None:
                self._worker_failed(job.error)
                return
            if not self._next(job.result or {}):
                return

    def _stuck(self) -> bool:
        """The worker has not answered a cancel for CANCEL_GRACE s: it is stuck in a step and would never load
        (or start an op that needs no load, e.g. a video import, queued behind it)."""
        age = getattr(self._client, "unanswered_cancel", None)
        return self.restart is not None and age is not None and age() > CANCEL_GRACE

    def _restart_worker(self) -> None:
        """Replace a worker stuck in a cancelled request (this job waited behind it with no word of why)."""
        try:
            self._client, self._current = self.restart()
        except JobError as exc:
            self._fail(str(exc))
            return
        self.restart = None  # once per job
        self._begin_again("Restarting the model worker (it did not stop a cancelled request)")

    def _begin_again(self, status: str) -> None:
        """From hello again, on the worker ``_client`` (whose hello is ``_current``)."""
        self.stage, self.status, self.step, self.steps = "hello", status, 0, 0
        self._deadline = time.monotonic() + HELLO_TIMEOUT

    def _requeue(self, err: WorkerError) -> bool:
        """Send the job again on a new worker after its worker crashed or was stopped (True: done, or failed)."""
        if (err.code not in (WORKER_EXITED, WORKER_STOPPED) or self.stage not in ("load", "run")
                or self.requeue is None or self.requeues >= MAX_REQUEUES):
            return False  # a crash at start-up is the interpreter's: said at once, not tried again
        try:
            self._client, self._current = self.requeue()
        except JobError as exc:
            self._fail(f"{_worker_gone(err)} and could not be started again: {exc}")
            return True
        self.requeues += 1
        self._begin_again(f"{_worker_gone(err)}; trying again on a new one ({self.requeues} of {MAX_REQUEUES})")
        return True

    def _next(self, result: dict) -> bool:
        """Go to the next stage; False while a finished result is held back (see ``hold``)."""
        if self.stage == "load" and self._load is not None:  # the model's clip limits, for the next job's checks
            model_limits.remember(self._load.get("model"), result)
        if self.stage == "hello" and self._load is not None:
            self.stage, self.status = "load", "Loading the model"
            self._current = self._client.submit(self._load)
        elif self.stage in ("hello", "load") and self._op is not None:
            self.stage, self.status = "run", f"{self._describe}"
            self._current = self._client.submit(self._op)
        else:
            self.result = result
            wait = self.hold() if self.hold is not None else ""
            if wait:
                self.status = wait
                return False
            self.stage, self.status, self.progress = "apply", "Applying", _RANGES["apply"][0]
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ResultWarning)
                    self.output = self._apply(result)
            except (JobError, rigs.RigError, ValueError, KeyError) as exc:
                self._fail(f"{self.label}: {exc}")
                return True
            self.state, self.progress = "done", 1.0
            said = [str((result.get("prompt_warning") or {}).get("message") or "")]
            for w in caught:
                if issubclass(w.category, ResultWarning) and str(w.message) not in said:
                    said.append(str(w.message))
                elif not issubclass(w.category, ResultWarning):
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            self.warning = " ".join(m for m in said if m)
            done = self.message or f"{self.label}: done in {self.elapsed:.1f} s"
            self.status = self.message = f"{done}. Warning: {self.warning}" if self.warning else done
            self.finished_at = time.monotonic()
        return True

    def cancel(self) -> None:
        """Stop now: the worker is asked to stop (between steps) and any late result is ignored."""
        if self.finished:
            return
        if not self._current.done:
            self._current.cancel()
        self.state = "cancelled"
        self.status = self.message = f"{self.label}: cancelled, nothing was changed."
        self.finished_at = time.monotonic()

    def wait(self, timeout: float | None = None, interval: float = 0.02) -> MotionJob:
        """Poll until finished (headless callers: tests, batch); TimeoutError leaves the job running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.label} not finished after {timeout} s ({self.status})")
            time.sleep(interval)
        return self

    # -- failures ---------------------------------------------------------------------------------

    def _fail(self, message: str, details: str = "") -> None:
        self.state = "failed"
        self.status = self.message = message
        self.details = details
        self.finished_at = time.monotonic()

    def _worker_failed(self, err: WorkerError) -> None:
        if err.code == "cancelled":
            self.state = "cancelled"
            self.status = self.message = f"{self.label}: cancelled, nothing was changed."
            self.finished_at = time.monotonic()
            return
        if self._requeue(err):
            return
        tail = ""
        if err.code == "worker_exited":
            tail = err.event.get("stderr") or self._late_stderr()
        message, details = describe_worker_error(err, self.stage, tail)
        if self.requeues:
            message = f"{message} (It was tried {self.requeues + 1} times, each time on a new worker.)"
        self._fail(message, details)

    def _late_stderr(self, wait: float = 1.0) -> str:
        """The worker's stderr when the exit was reported before it was read.

        A worker that dies at once (wrong interpreter, missing torch) can be reported by the client
        before its reader thread has drained stderr, and that last line is what tells the user why.
        """
        deadline = time.monotonic() + wait
        tail = self._client.stderr_tail(40)
        while not tail and time.monotonic() < deadline:
            time.sleep(0.02)
            tail = self._client.stderr_tail(40)
        return tail


def _worker_gone(err: WorkerError) -> str:
    """What happened to the worker, in a few words (the status line while the job is sent again)."""
    if err.code == WORKER_STOPPED:
        return f"The model worker was stopped ({err.event.get('reason') or err.message})"
    rc = err.event.get("returncode")
    how = f"was killed by signal {-rc}" if isinstance(rc, int) and rc < 0 else f"exited with code {rc}"
    return f"The model worker {how}"


_FROM_OUTSIDE = (9, 15)  # SIGKILL, SIGTERM: the out-of-memory killer or a person, whatever the worker was doing


def describe_worker_error(err: WorkerError, stage: str, tail: str = "") -> tuple[str, str]:
    """(message for people, details) for a failed worker request."""
    code, text = err.code, err.message.rstrip(".")
    if code == WORKER_STOPPED:
        return f"{_worker_gone(err)}; nothing was changed and the next job starts a new one.", ""
    if code == "worker_exited":
        rc = err.event.get("returncode")
        tail = tail or err.event.get("stderr", "")
        if isinstance(rc, int) and rc < 0 and (stage != "hello" or -rc in _FROM_OUTSIDE):  # killed (out of memory,
            # by hand): not the interpreter's fault (a crash signal while starting up still points at the Worker Python)
            return (f"The model worker stopped (was killed by signal {-rc}); nothing was changed and the next job "
                    "starts a new one. If it happens again the computer may be short of memory: try a shorter "
                    "clip.", tail)
        last = next((ln.strip() for ln in reversed(tail.splitlines()) if ln.strip()), "")
        if last and last not in text:
            text = f"{text}: {last}"
        hint = ("Check 'Worker Python' in " + PREFS_HINT + " (the 'Check' button shows the worker's log); "
                "it needs an environment with salad_model and torch installed")
        lead = "the model worker "  # the client's wording ("the model worker exited with code 1: ...")
        text = text[len(lead):] if text.startswith(lead) else text
        if rc is not None and f"code {rc}" not in text and f"signal {-rc}" not in text:
            text = f"{text}; exit code {rc}"  # said once: the client's message usually has it already
        return f"The model worker stopped ({text}). {hint}.", tail
    if code == "protocol_mismatch":
        return f"{text}.", ""
    if code in ("model_error", "no_model") or stage == "load":
        return f"Cannot load the model: {text}. Pick another model in {PREFS_HINT}.", ""
    if code == "invalid_input":
        return f"{text}.", ""
    if code in ("out_of_memory", "line_too_long"):
        return f"{text}.", ""
    return (f"The model worker failed ({code}): {text}. See the system console for the worker's log.",
            err.event.get("stderr", ""))


FRAME_BYTES = 4 * math.ceil(22 * 3 * 4 / 3)  # one float32 SMPL-22 frame of joints in a request (base64)
FRAMES_PER_REQUEST = (MAX_LINE_BYTES - 8192) // FRAME_BYTES  # joint frames one request holds (8 KiB: the rest)


def check_request_size(label: str, op: dict | None) -> EncodedRequest | None:
    """Refuse now a request the worker cannot read (one JSON line of at most ``MAX_LINE_BYTES``); else return it
    encoded (id included), which the client sends as is: a ~1 MiB request is encoded once, not twice.

    Why: such a line was skipped by the worker with an answer no job could claim, so the job waited forever
    (an Edit with Text of a 3-minute mocap clip hung at 'Inverting and editing'). The motion's joints are
    what makes a request long: the message says how many frames fit.
    """
    if op is None:
        return None
    try:
        encoded = encode_request(op)
        size = len(encoded.line)
    except ValueError:  # NaN / inf: JSON cannot carry them (a raise here was a traceback in Blender's UI)
        bad = [k for k, v in op.items() if isinstance(v, float) and not math.isfinite(v)]
        raise JobError(f"{label}: {', '.join(repr(k) for k in bad) or 'a value'} is not a finite number; nothing "
                       "was sent.") from None
    except TypeError as exc:  # a value of a type JSON cannot carry: a bug of ours; the console gets the traceback
        traceback.print_exc()
        raise JobError(f"{label} failed unexpectedly: the request cannot be sent to the model worker ({exc}); nothing "
                       "was changed.") from None
    if size <= MAX_LINE_BYTES:
        return encoded
    frames = sum(len(v) for v in op.values() if isinstance(v, np.ndarray) and v.ndim == 3)
    per_frame = FRAME_BYTES
    most = max(0, (MAX_LINE_BYTES - (size - frames * per_frame)) // per_frame)
    raise JobError(f"{label}: the motion to send is too long ({frames} frames, {frames / 20:.0f} s at the model's "
                   f"20 fps); one request to the model worker holds at most {most} frames ({most / 20:.0f} s). "
                   "Choose a shorter frame range.")


def make_job(kind: str, label: str, config: WorkerConfig, op: dict | None, apply: Callable[[dict], Any],
             pool: WorkerPool | None, describe: str = "") -> MotionJob:
    """A running job on the pool's worker (started if needed): ``load`` the config's model, then ``op``."""
    op = check_request_size(label, op)
    model = check_model(config.model)
    pool = pool or POOL
    client = pool.get(config)
    load = {"op": "load", "model": model, "device": config.device}
    if config.threads > 0:
        load["threads"] = int(config.threads)
    job = MotionJob(kind, label, client, pool.hello, load=load, op=op, apply=apply, describe=describe)
    job.restart = restarter(pool, config)
    job.requeue = requeuer(pool, config)
    return job


def restarter(pool: WorkerPool, config: WorkerConfig) -> Callable[[], tuple[WorkerClient, WorkerJob]] | None:
    """``MotionJob.restart`` for a job on ``pool``: a new worker and its hello (None: a pool that cannot close)."""
    if not hasattr(pool, "close"):
        return None

    def restart() -> tuple[WorkerClient, WorkerJob]:
        pool.close(reason=f"it did not stop a cancelled request within {CANCEL_GRACE:g} s")
        return pool.get(config), pool.hello

    return restart


def requeuer(pool: WorkerPool, config: WorkerConfig) -> Callable[[], tuple[WorkerClient, WorkerJob]] | None:
    """``MotionJob.requeue`` for a job on ``pool``: its worker (started again if it is gone) and its hello."""
    if not hasattr(pool, "close"):
        return None

    def requeue() -> tuple[WorkerClient, WorkerJob]:
        return pool.get(config), pool.hello

    return requeue


def check_summary(report: dict) -> str:
    """One line for the preferences' Check: interpreter, package versions, model, device."""
    h, m = report.get("hello") or {}, report.get("model") or {}
    te = m.get("text_encoder") or {}
    return (f"Worker OK: Python {h.get('python')}, salad_model {h.get('salad_model')}, torch {h.get('torch')}"
            f" | model '{m.get('name')}' on {m.get('device')} ({m.get('threads')} threads), "
            f"text encoder {te.get('name')}, {m.get('min_frames')}-{m.get('max_frames')} frames "
            f"at {m.get('fps')} fps")
