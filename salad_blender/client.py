"""Client for the model worker (``python -m salad_model.serving.worker``): spawn, submit, poll, cancel, close.

Pure Python + numpy, so it imports inside Blender (no torch, no ``salad_model``). The worker runs in
the model's own Python environment; requests and events are JSON lines (``docs/worker_protocol.md``).

Threads (:mod:`worker_streams`) read the worker's stdout (events, decoded there so polling stays cheap) and
stderr (kept in a bounded ring buffer for diagnostics), and write its stdin (so ``submit`` never blocks, even on
a worker that stopped reading). A worker that does not read a request, or goes silent and does not answer a
ping, is given up (:mod:`worker_watch`): killed, its jobs failed with ``worker_stopped`` saying why.

Nothing happens to jobs until the owner polls: ``job.poll()`` / ``client.poll()`` apply queued events and run
callbacks **on the polling thread** (Blender's main thread when called from a timer or modal operator, so
callbacks may touch ``bpy``). Headless callers (tests, ``tools/batch.py``) loop on ``poll()`` or block in
``job.wait()``.

The worker never outlives the client: :meth:`WorkerClient.close` closes the worker's stdin, waits
briefly, then kills its process group; a ``weakref.finalize`` does the same when the client is
garbage-collected or the interpreter exits; if this process is killed outright, the worker sees EOF on
stdin (and, on Linux, its parent-death signal) and exits by itself.

Example::

    client = WorkerClient(python="/path/to/model-env/bin/python")
    client.start().wait(30)
    client.submit({"op": "load", "model": "demo"}).wait(120)
    job = client.submit({"op": "generate", "prompt": "a person walks", "seconds": 4, "seed": 1})
    while not job.done:          # or: result = job.wait(60)
        for event in job.poll():
            ...
        time.sleep(0.05)
    joints = job.result["joints"]  # float32 [T, 22, 3]
"""

from __future__ import annotations

import collections
import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .protocol import (
    CANCELLED,
    LINE_TOO_LONG,
    MAX_LINE_BYTES,
    PROTOCOL_ERROR,
    PROTOCOL_MISMATCH,
    PROTOCOL_VERSION,
    WORKER_EXITED,
    WORKER_STOPPED,
    dumps,
)
from .worker_streams import (  # noqa: F401 - MAX_STDERR_LINE re-exported
    MAX_STDERR_LINE,
    RequestWriter,
    _read_events,
    _read_stderr,
)
from .worker_watch import WorkerWatch

WORKER_MODULE = "salad_model.serving.worker"
PARENT_PID_ENV = "SALAD_WORKER_PARENT_PID"
CLIENT_NAME = "salad_blender.client"

EventCallback = Callable[["Job", dict], None]
JobCallback = Callable[["Job"], None]


class WorkerError(Exception):
    """A request failed: ``code`` is stable (see the protocol doc), ``message`` is for people."""

    def __init__(self, code: str, message: str, event: dict | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.event = event or {}


class Job:
    """One request and everything the worker said about it; updated only by polling."""

    def __init__(self, client: WorkerClient, request: dict, on_event: EventCallback | None = None,
                 on_progress: JobCallback | None = None, on_done: JobCallback | None = None):
        self.id: Any = request["id"]
        self.op: str = request["op"]
        self.request = request
        self.state = "queued"  # queued → running → done | failed
        self.progress = 0.0
        self.step = 0
        self.steps = 0
        self.stage = ""
        self.result: dict | None = None
        self.error: WorkerError | None = None
        self.submitted = time.monotonic()
        self.finished: float | None = None
        self._client = client
        self._new: list[dict] = []
        self._on_event, self._on_progress, self._on_done = on_event, on_progress, on_done

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, op={self.op!r}, state={self.state!r}, progress={self.progress:.2f})"

    @property
    def done(self) -> bool:
        """True once a result or an error arrived (including cancelled and worker_exited)."""
        return self.state in ("done", "failed")

    @property
    def cancelled(self) -> bool:
        return self.error is not None and self.error.code == CANCELLED

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.submitted

    def poll(self) -> list[dict]:
        """Apply whatever the worker sent (never blocks); return this job's events since the last call."""
        self._client._pump()
        new, self._new = self._new, []
        return new

    def cancel(self) -> Job | None:
        """Ask the worker to stop this request (it answers with a ``cancelled`` error); no-op if done."""
        return self._client.cancel(self)

    def wait(self, timeout: float | None = None, raise_error: bool = True) -> dict | None:
        """Block until done; return the result, raise :class:`WorkerError` on failure (if asked).

        ``TimeoutError`` if it is not done within ``timeout`` seconds (the job keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            seen = self._client._arrivals()
            self._client._pump()
            if self.done:
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"{self.op} request {self.id!r} not done after {timeout} s")
            self._client._wait_arrival(seen, 0.5 if remaining is None else min(remaining, 0.5))
        if raise_error and self.error is not None:
            raise self.error
        return self.result

    # -- called by the client's pump ---------------------------------------------------------------

    def _deliver(self, event: dict) -> None:
        kind = event.get("event")
        if self.done:
            return
        if kind == "started":
            self.state = "running"
        elif kind == "progress":
            self.state = "running"
            self.step = int(event.get("step", 0))
            self.steps = int(event.get("steps", 0))
            self.stage = str(event.get("stage", ""))
            self.progress = float(event.get("progress", 0.0))
        elif kind == "result":
            self.result = event.get("data") or {}
            self.state = "done"
            self.progress = 1.0
        elif kind == "error":
            self.error = WorkerError(str(event.get("code", "internal")), str(event.get("message", "")), event)
            self.state = "failed"
        if self.done:
            self.finished = time.monotonic()
        self._new.append(event)
        if self._on_event is not None:
            self._on_event(self, event)
        if kind == "progress" and self._on_progress is not None:
            self._on_progress(self)
        if self.done and self._on_done is not None:
            self._on_done(self)


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the worker's process group (it leads its own session), or the process on Windows."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        elif sig == signal.SIGTERM:
            proc.terminate()
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _shutdown_process(proc: subprocess.Popen, grace: float = 2.0, writer: RequestWriter | None = None) -> int | None:
    """EOF on stdin (the worker cancels and exits), then SIGTERM, then SIGKILL; reap. Idempotent.

    With a ``writer`` the EOF is its to give (after the line in flight): closing stdin here waited for a
    ``write`` blocked on a worker that does not read, i.e. for ever.
    """
    was_running = proc.poll() is None
    if writer is not None:
        writer.close()  # also ends its thread when the worker is gone already (else joined in vain below)
    elif was_running:
        try:
            proc.stdin.close()
        except (OSError, ValueError):
            pass
    if was_running:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                _kill_group(proc, getattr(signal, "SIGKILL", signal.SIGTERM))
                proc.wait(timeout=5.0)
    if was_running and os.name == "posix":  # anything the worker spawned into its group goes too
        _kill_group(proc, signal.SIGKILL)  # (only now: long after the exit, the pid may be reused)
    stdin_free = writer is None or writer.join(1.0)  # the process is gone: a blocked write has failed by now
    for stream in ((proc.stdin,) if stdin_free else ()) + (proc.stdout, proc.stderr):
        try:
            if stream is not None:
                stream.close()
        except (OSError, ValueError):
            pass
    return proc.returncode


class WorkerClient:
    """One worker process and its jobs.

    ``python``: interpreter of the model's environment (default: this one). ``env`` entries override
    the inherited environment (``inherit_env=False`` starts from an empty one); ``cwd`` is the worker's
    working directory; ``args`` go to the worker (``--device cpu``, ``--threads 4``).
    """

    def __init__(self, python: str | os.PathLike | None = None, *, args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None,
                 inherit_env: bool = True, module: str = WORKER_MODULE, stderr_lines: int = 500,
                 on_stderr: Callable[[str], None] | None = None):
        self.python = os.fspath(python) if python is not None else sys.executable
        self.args = list(args)
        self.env = dict(env or {})
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.inherit_env = inherit_env
        self.module = module
        self.info: dict | None = None  # the hello answer
        self.returncode: int | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)
        self._on_stderr = on_stderr
        self._proc: subprocess.Popen | None = None
        self._threads: list[threading.Thread] = []
        self._finalizer: weakref.finalize | None = None
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._arrived = threading.Condition()
        self._counter = [0]
        self._jobs: dict[Any, Job] = {}
        self._ids = itertools.count(1)
        self._pump_lock = threading.RLock()
        self._writer: RequestWriter | None = None
        self._watch = WorkerWatch()
        self._probe: Job | None = None  # the hello sent to a silent worker
        self.close_reason: str | None = None  # why the client last stopped its worker (None: asked to close)
        self._hello_job: Job | None = None
        self._ready_at = 0.0  # when the worker answered its first hello (the unread clock starts there)
        self._unrouted: collections.deque[dict] = collections.deque(maxlen=100)
        self._closing = False
        self._cancel_sent: dict[Any, float] = {}  # request id → when its cancel was sent
        # Jobs failed here (protocol_error) and cancelled in the worker: its late answers for them are dropped.
        self._ended_early: collections.deque[Any] = collections.deque(maxlen=100)

    # -- process ------------------------------------------------------------------------------------

    @property
    def command(self) -> list[str]:
        return [self.python, "-m", self.module, *self.args]

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def busy(self) -> bool:
        """Requests are queued or running in the worker (not counting cancelled ones and the cancels)."""
        self._pump()
        return self.running and any(j.op != "cancel" and j is not self._probe and rid not in self._cancel_sent
                                    for rid, j in self._jobs.items())

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ) if self.inherit_env else {}
        env.pop("PYTHONHOME", None)  # Blender's would point another interpreter at the wrong stdlib
        env.update({"OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8",
                    PARENT_PID_ENV: str(os.getpid())})
        if os.name == "nt" and "SYSTEMROOT" in os.environ:
            env.setdefault("SYSTEMROOT", os.environ["SYSTEMROOT"])  # Python cannot start without it
        env.update(self.env)
        return env

    def start(self) -> Job:
        """Spawn the worker if it is not running and send ``hello``; returns the hello job."""
        if self.running and self._hello_job is not None:
            return self._hello_job
        if self._proc is not None:
            self.close()
        kw: dict[str, Any] = {}
        if os.name == "posix":
            kw["start_new_session"] = True  # own process group: close() kills it whole, ^C spares it
        else:
            kw["creationflags"] = (getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
                                   | getattr(subprocess, "CREATE_NO_WINDOW", 0))
        proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=self.cwd, env=self._child_env(), close_fds=True,
                                **kw)
        self._proc = proc
        self.returncode = None
        self.info = None
        self._stderr.clear()
        self.close_reason = None
        self._writer = RequestWriter(proc.stdin, name=f"salad-worker-{proc.pid}-in")
        self._watch, self._probe = WorkerWatch(), None
        self._finalizer = weakref.finalize(self, _shutdown_process, proc, 0.5, self._writer)
        self._threads = [
            threading.Thread(target=_read_events, name=f"salad-worker-{proc.pid}-out", daemon=True,
                             args=(proc.stdout, self._events, self._arrived, self._counter, proc)),
            threading.Thread(target=_read_stderr, name=f"salad-worker-{proc.pid}-err", daemon=True,
                             args=(proc.stderr, self._stderr, self._on_stderr)),
        ]
        for t in self._threads:
            t.start()
        self._hello_job = self.submit({"op": "hello", "protocol": PROTOCOL_VERSION, "client": CLIENT_NAME})
        return self._hello_job

    def close(self, timeout: float = 2.0, reason: str | None = None) -> int | None:
        """End the worker (EOF, then SIGTERM, then SIGKILL of its group) and finish all jobs.

        Without a ``reason`` (the user closed it) unfinished jobs end ``cancelled``; with one (the worker was
        stuck, or is being replaced) they end ``worker_stopped`` with the reason in their message, so whoever
        owns them can tell the user why, or send them again. ``close_reason`` keeps it.
        """
        proc = self._proc
        if proc is None:
            return self.returncode
        self._closing = True
        self.close_reason = reason
        try:
            code = _shutdown_process(proc, timeout, self._writer)
            if self._finalizer is not None:
                self._finalizer.detach()
            for t in self._threads:
                t.join(timeout=5.0)
            self._pump()  # deliver the worker's last words (cancelled errors) and the exit event
            for job in list(self._jobs.values()):
                self._forget(job)
                job._deliver(self._closed_event(job.id))
        finally:
            self._closing = False
        self._proc = None
        self._hello_job = None
        self.returncode = code
        return code

    def __enter__(self) -> WorkerClient:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def stderr_tail(self, lines: int | None = None) -> str:
        """The worker's last stderr lines (its log, warnings and tracebacks)."""
        kept = list(self._stderr)
        return "\n".join(kept if lines is None else kept[-lines:])

    # -- requests -----------------------------------------------------------------------------------

    def submit(self, request: Mapping[str, Any], on_event: EventCallback | None = None,
               on_progress: JobCallback | None = None, on_done: JobCallback | None = None) -> Job:
        """Send one request (``{"op": ..., fields}``; an ``id`` is added if missing); returns its Job.

        Starts the worker if it is not started (never, or closed). Never blocks: the line is written by a thread.
        An :class:`~salad_blender.protocol.EncodedRequest` (id included) is sent as it was encoded, not again.
        A request longer than the worker's line
        limit (``MAX_LINE_BYTES``) is not sent: its job fails at once with ``line_too_long``. If the worker
        exited on its own, the job fails at once with ``worker_exited``: :meth:`close` and :meth:`start` again
        (and load the model again), as :class:`~salad_blender.worker_pool.WorkerPool` does.
        Callbacks run inside ``poll()`` / ``wait()``, on the thread that polls.
        """
        line = getattr(request, "line", None)
        req = dict(request)
        if line is None or "id" not in req:
            line = None
        if not isinstance(req.get("op"), str):
            raise ValueError("a request needs an 'op' string")
        if "id" not in req:
            req["id"] = f"r{next(self._ids)}"
        if self._proc is None:
            self.start()
        with self._pump_lock:
            if req["id"] in self._jobs:
                raise ValueError(f"request id {req['id']!r} is already in flight")
            job = Job(self, req, on_event, on_progress, on_done)
            line = line if line is not None else dumps(req)
            if len(line) > MAX_LINE_BYTES:  # the worker skips such a line and answers with id null: the job
                job._deliver(self._too_long_event(job, len(line)))  # would wait forever; fail it here, unsent
                return job
            if not self.running:
                self._fail_exited(job)
                return job
            self._jobs[job.id] = job
            self._writer.send(line)  # a broken pipe: the worker died, its exit event fails this job with details
        return job

    def call(self, op: str, timeout: float | None = None, **fields: Any) -> dict:
        """Blocking convenience: submit ``{"op": op, **fields}`` and wait for the result."""
        return self.submit({"op": op, **fields}).wait(timeout)

    def cancel(self, job: Job | Any) -> Job | None:
        """Cancel a job (or request id); returns the cancel request's job, None if nothing to cancel."""
        target = job.id if isinstance(job, Job) else job
        live = self._jobs.get(target)
        if live is None or live.done or not self.running:
            return None
        self._cancel_sent.setdefault(target, time.monotonic())
        return self.submit({"op": "cancel", "target": target})

    def unanswered_cancel(self) -> float:
        """Seconds since the oldest unanswered cancel of a running request (0: none); a stuck worker never answers."""
        self._pump()
        now = time.monotonic()
        for rid in [r for r in self._cancel_sent if r not in self._jobs]:
            del self._cancel_sent[rid]
        return max((now - t for t in self._cancel_sent.values()), default=0.0)

    # -- events -------------------------------------------------------------------------------------

    def poll(self) -> list[dict]:
        """Apply all received events to their jobs (callbacks run here); return events no job claims.

        Never blocks. Unclaimed events: errors without a request id and the worker's exit
        (``{"event": "exit", "code": "worker_exited", "returncode": ..., "stderr": ...}``).
        """
        with self._pump_lock:
            self._pump()
            out = list(self._unrouted)
            self._unrouted.clear()
            return out

    def _pump(self) -> None:
        """Apply received events (what Job.poll/wait use: unclaimed events stay for client.poll)."""
        with self._pump_lock:
            while True:
                try:
                    item = self._events.get_nowait()
                except queue.Empty:
                    break
                self._dispatch(item)  # one at a time: a callback that polls again keeps the order
            self._check_alive()

    def _dispatch(self, item: Any) -> None:
        if isinstance(item, tuple) and item[0] == "exit":
            self._on_exit(item[1])
            return
        self._watch.heard_now()
        job = self._jobs.get(item.get("id"))
        if job is None:
            if item.get("id") is not None and item.get("id") in self._ended_early:
                if item.get("event") in ("result", "error"):  # its last word: nothing more will come for it
                    self._ended_early.remove(item["id"])
                return
            self._unrouted.append(item)
            return
        if item.get("event") == "result" and job.op in ("hello", "version"):
            item = self._check_hello(item)
        if job is self._hello_job:
            self._ready_at = time.monotonic()
        if item.get("event") in ("result", "error"):
            self._forget(job)
        job._deliver(item)
        if item.get("code") == PROTOCOL_ERROR and job.op not in ("cancel", "hello", "version") and self.running:
            self._ended_early.append(job.id)
            self.submit({"op": "cancel", "target": job.id})  # failed here: the worker need not go on with it

    def _forget(self, job: Job) -> None:
        """A job ended: no longer routed, no longer in the cancel map (it grew by one per cancel over a session)."""
        self._jobs.pop(job.id, None)
        self._cancel_sent.pop(job.id, None)
        if job is self._probe:
            self._probe = None

    def _check_alive(self) -> None:
        """Give up a worker that does not read its requests, or is silent and does not answer a ping."""
        if self._closing or self._proc is None or not self.running:
            return
        if self._hello_job is None or not self._hello_job.done:  # starting up: the hello timeout's business
            return
        in_flight = any(j is not self._probe for j in self._jobs.values())
        action, why = self._watch.check(in_flight, self._writer.stalled(self._ready_at))
        if action == "probe":
            self._probe = self.submit({"op": "hello", "protocol": PROTOCOL_VERSION, "client": CLIENT_NAME})
        elif action == "stuck":
            _kill_group(self._proc, getattr(signal, "SIGKILL", signal.SIGTERM))  # EOF would not reach it
            self.close(1.0, reason=f"it was stuck: {why}")

    def _check_hello(self, event: dict) -> dict:
        data = event.get("data") or {}
        if data.get("protocol") != PROTOCOL_VERSION:
            return {"id": event.get("id"), "event": "error", "code": PROTOCOL_MISMATCH, "data": data,
                    "message": f"the worker speaks protocol {data.get('protocol')!r}, this add-on "
                               f"{PROTOCOL_VERSION}: install matching versions of the add-on and salad_model"}
        self.info = data
        return event

    def _exit_event(self, returncode: int | None, job_id: Any = None) -> dict:
        tail = self.stderr_tail(40)
        how = (f"was killed by signal {-returncode}" if returncode is not None and returncode < 0
               else f"exited with code {returncode}")
        message = f"the model worker {how}"
        last = [ln for ln in tail.splitlines() if ln.strip()]
        if last:
            message += f": {last[-1].strip()}"
        return {"id": job_id, "event": "error", "code": WORKER_EXITED, "message": message,
                "returncode": returncode, "stderr": tail}

    def _on_exit(self, returncode: int | None) -> None:
        if returncode is None and self._proc is not None:
            returncode = self._proc.poll()
        self.returncode = returncode
        self._ended_early.clear()  # a gone worker sends nothing late
        for t in self._threads:  # stderr may still hold the traceback that explains the exit
            if t.name.endswith("-err"):
                t.join(timeout=5.0)  # at EOF this returns at once; 1 s was too short on a loaded machine
        for job in list(self._jobs.values()):
            self._forget(job)
            job._deliver(self._closed_event(job.id) if self._closing else self._exit_event(returncode, job.id))
        self._unrouted.append({**self._exit_event(returncode), "event": "exit"})

    @staticmethod
    def _too_long_event(job: Job, size: int) -> dict:
        return {"id": job.id, "event": "error", "code": LINE_TOO_LONG, "op": job.op,
                "message": f"the {job.op} request is {size / 2**20:.1f} MiB; the worker reads at most "
                           f"{MAX_LINE_BYTES / 2**20:g} MiB per request, so it was not sent"}

    def _closed_event(self, job_id: Any) -> dict:
        if self.close_reason:
            return {"id": job_id, "event": "error", "code": WORKER_STOPPED, "reason": self.close_reason,
                    "message": f"the model worker was stopped before the request finished: {self.close_reason}"}
        return {"id": job_id, "event": "error", "code": CANCELLED,
                "message": "the worker was closed before the request finished"}

    def _fail_exited(self, job: Job) -> None:
        code = self.returncode if self._proc is None else self._proc.poll()
        job._deliver(self._exit_event(code, job.id))

    def _arrivals(self) -> int:
        with self._arrived:
            return self._counter[0]

    def _wait_arrival(self, seen: int, timeout: float) -> None:
        with self._arrived:
            self._arrived.wait_for(lambda: self._counter[0] != seen, timeout=timeout)
