"""The model worker: ``python -m salad_model.worker`` speaks JSON lines on stdin/stdout.

Blender never loads torch; the add-on spawns this process in the model's own Python environment and
talks to it through :mod:`salad_blender.client`. Protocol reference: ``docs/worker_protocol.md``.

Threads: a reader thread parses stdin and answers ``hello`` / ``cancel`` / ``shutdown`` at once (so a
cancel lands while the model runs); model requests run one at a time, in order, on the main thread.
Sampling calls a progress callback after every denoising step, which raises ``Cancelled`` once a
cancel for that request has arrived, so a cancel costs at most the step in flight.

Start-up is kept short: only the standard library is imported until a ``load`` asks for the model
(``hello`` is answered before torch or numpy are imported).

The process never outlives its client: it exits on EOF on stdin, when its parent dies (Linux
``PR_SET_PDEATHSIG``, plus a watchdog thread on every POSIX system), and on ``shutdown``.

This module holds the line reader, the op table and dispatch, and job bookkeeping (queue, cancel,
progress). The model ops are :mod:`model_ops` (mixed into :class:`Worker`); error types and result checks
:mod:`errors`; process helpers (cores, log, stdio, parent watch) :mod:`process`.
"""

from __future__ import annotations

import os

# Before anything can import torch: idle OpenMP threads must sleep, not spin (Blender shares the
# CPU), and the worker opens no network connection unless the user's environment asks for it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import queue  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import IO, Any  # noqa: E402

from salad_model.runtime import requests as R  # noqa: E402

from .. import __version__  # noqa: E402
from . import protocol as P  # noqa: E402
from .errors import RequestError, _Cancel, _is, check_finite  # noqa: E402
from .model_ops import ModelOps  # noqa: E402
from .process import (  # noqa: E402
    PARENT_PID_ENV,  # noqa: F401 (re-exported)
    _hard_exit,
    _log,
    claim_stdio,
    default_threads,
    installed_version,
    physical_cores,  # noqa: F401 (re-exported)
    watch_parent,
)
from .shot_ops import SHOT_FIELDS, SHOT_OPS, ShotOps  # noqa: E402
from .video_ops import VIDEO_FIELDS, VIDEO_OPS, VideoOps  # noqa: E402

STEP_DELAY_ENV = "SALAD_WORKER_DEBUG_STEP_DELAY"  # tests only: seconds slept after each step
EXIT_GRACE = 5.0  # seconds the main thread gets to finish after EOF before the process is ended

IMMEDIATE_OPS = ("hello", "version", "cancel", "shutdown")
MODEL_OPS = ("load", "unload", "model_info", "prompt_tokens", "generate", "edit", "attention", "edit_real") + SHOT_OPS
MODEL_OPS += VIDEO_OPS

_STOP = object()


# ------------------------------------------------------------------------------------------------
# Request fields per op (types and ranges: salad_model/runtime/requests.py, shared with CLI and API)

_SAMPLING = R.SAMPLING_KEYS
FIELDS: dict[str, tuple[str, ...]] = {
    "hello": ("protocol", "client"),
    "version": ("protocol", "client"),
    "cancel": ("target",),
    "shutdown": (),
    "load": ("model", "device", "threads", "reload"),
    "unload": (),
    "model_info": (),
    "prompt_tokens": ("prompt",),
    "generate": ("prompt", "record_maps", "fast", *_SAMPLING),
    "attention": ("prompt", *_SAMPLING),
    "edit": ("source_prompt", *R.EDIT_KEYS, "return_source", "fast", "guided_steps", *_SAMPLING),
    "edit_real": ("prompt", "joints", *R.REAL_EDIT_KEYS, "overlap", "null_text_iters", "steps", "guidance"),
}


FIELDS.update(SHOT_FIELDS)
FIELDS.update(VIDEO_FIELDS)


def check_fields(msg: dict) -> dict:
    """The request's parameters (without id/op), type- and range-checked; unknown fields are refused."""
    op = msg["op"]
    params = {k: v for k, v in msg.items() if k not in ("id", "op")}
    try:
        return R.check_fields(params, FIELDS[op])
    except R.InputError as exc:
        raise RequestError(P.INVALID_INPUT, f"{op}: {exc}") from None


# ------------------------------------------------------------------------------------------------
# The worker


class Worker(ModelOps, ShotOps, VideoOps):
    """Request loop state: output channel, request queue, cancel flags, the loaded pipeline."""

    def __init__(self, out: IO[bytes], inp: IO[bytes], device: str = "auto", threads: int | None = None,
                 step_delay: float = 0.0):
        self._out = out
        self._in = inp
        self._out_lock = threading.Lock()
        self._lock = threading.Lock()  # guards the fields below
        self._queue: queue.Queue = queue.Queue()
        self._queued: set = set()
        self._cancelled: set = set()
        self._current: Any = None
        self._step = 0
        self._cancel_seen_step: int | None = None
        self._stopping = False
        self.device = device
        self.threads = threads or default_threads()  # the CLI's and API's rule (salad_model/cpu.py)
        self.step_delay = step_delay
        self.pipe = None
        self._model_key: tuple | None = None
        self._torch = None
        self._started = time.perf_counter()

    # -- output ---------------------------------------------------------------------------------

    def emit(self, message: dict) -> None:
        """Write one event line; a closed pipe means the client is gone, so the process ends."""
        try:
            line = P.dumps(message)
        except (ValueError, TypeError) as exc:  # e.g. a lone surrogate echoed from a request: answer anyway
            _log(f"cannot encode an event: {exc}")
            line = P.dumps({"id": None, "event": "error", "code": P.INTERNAL,
                            "message": f"an answer could not be encoded ({type(exc).__name__})"})
        with self._out_lock:
            try:
                self._out.write(line)
                self._out.flush()
            except (OSError, ValueError):
                _log("stdout closed: client gone, exiting")
                os._exit(0)

    def _error(self, rid: Any, code: str, message: str, **extra: Any) -> None:
        self.emit({"id": rid, "event": "error", "code": code, "message": message, **extra})

    # -- reader thread ----------------------------------------------------------------------------

    def read_loop(self) -> None:
        """Parse stdin; answer immediate ops here, queue model ops for the main thread; EOF ends all."""
        limit = R.MAX_LINE_BYTES
        try:
            while True:
                raw = self._in.readline(limit + 1)
                if not raw:
                    break
                if len(raw) > limit and not raw.endswith(b"\n"):  # too long: skip to its end, answer, go on
                    while raw and not raw.endswith(b"\n"):
                        raw = self._in.readline(limit + 1)
                    self._error(None, P.LINE_TOO_LONG, f"request line longer than {limit} bytes; ignored")
                    continue
                if raw.strip():
                    self._safe_handle(raw)
        except (OSError, ValueError) as exc:
            _log(f"stdin read failed: {exc}")
        finally:
            self.stop("stdin closed")

    def _safe_handle(self, raw: bytes) -> None:
        """Every line gets an answer; nothing a line contains may end the reader thread."""
        try:
            self._handle_line(raw)
        except (RecursionError, MemoryError) as exc:
            self._error(None, P.BAD_REQUEST, f"request too deeply nested or too large ({type(exc).__name__})")
        except Exception as exc:  # noqa: BLE001 - a bug must not deafen the worker
            traceback.print_exc(file=sys.stderr)
            self._error(None, P.INTERNAL, f"{type(exc).__name__} while reading a request (worker log has details)")

    def _handle_line(self, raw: bytes) -> None:
        try:
            msg = P.parse_line(raw)
        except P.ProtocolError as exc:
            self._error(exc.request_id, exc.code, exc.message)
            return
        rid, op = msg["id"], msg["op"]
        if op not in FIELDS:
            known = ", ".join(IMMEDIATE_OPS + MODEL_OPS)
            self._error(rid, P.UNKNOWN_OP, f"unknown op {R.short_repr(op)}; this worker knows: {known}")
            return
        try:
            params = check_fields(msg)
        except RequestError as exc:
            self._error(rid, exc.code, exc.message, op=op)
            return
        if op in ("hello", "version"):
            if params.get("client"):
                _log(f"client: {params['client']} (protocol {params.get('protocol')})")
            self.emit({"id": rid, "event": "result", "op": op, "data": self.hello()})
        elif op == "cancel":
            self._cancel(rid, params)
        elif op == "shutdown":
            self.stop("shutdown requested", rid)
        else:
            with self._lock:
                duplicate = rid in self._queued or rid == self._current
                stopping = self._stopping
                if not stopping and not duplicate:
                    self._queued.add(rid)
                    self._queue.put((rid, op, params))
            if duplicate:
                self._error(rid, P.BAD_REQUEST, f"id {rid!r} is already used by a request in flight; "
                                                "ids must be unique among running and queued requests", op=op)
            elif stopping:
                self._error(rid, P.CANCELLED, "the worker is shutting down", op=op)

    def _cancel(self, rid: Any, params: dict) -> None:
        if "target" not in params:
            self._error(rid, P.INVALID_INPUT, "cancel needs the \"target\" id of the request to stop",
                        op="cancel")
            return
        target = params["target"]  # a string or integer (checked): hashable
        with self._lock:
            if target == self._current and target is not None:
                state = "running"
                self._cancelled.add(target)
                self._cancel_seen_step = self._step
            elif target in self._queued:
                state = "queued"
                self._cancelled.add(target)
            else:
                state = "unknown"  # finished already, or never sent: nothing to do
        self.emit({"id": rid, "event": "result", "op": "cancel", "data": {"target": target, "state": state}})

    def stop(self, reason: str, rid: Any = None) -> None:
        """Cancel everything, let the main thread wind down; it answers ``rid`` (shutdown) last."""
        with self._lock:
            already = self._stopping
            if not already:
                self._stopping = True
                self._cancelled.update(self._queued)
                if self._current is not None:
                    self._cancelled.add(self._current)
                    self._cancel_seen_step = self._step
                self._queue.put((_STOP, reason, rid))
        if already:
            if rid is not None:
                self.emit({"id": rid, "event": "result", "op": "shutdown", "data": {"bye": True}})
            return
        _log(f"stopping: {reason}")
        if rid is None:  # nobody waits for answers: don't let a long load keep the process alive
            timer = threading.Timer(EXIT_GRACE, _hard_exit,
                                    args=(f"still busy {EXIT_GRACE:g} s after {reason}",))
            timer.daemon = True
            timer.start()

    # -- main thread --------------------------------------------------------------------------------

    def run(self) -> int:
        """Execute queued model requests in order until stopped."""
        while True:
            item = self._queue.get()
            if item[0] is _STOP:
                _, _reason, shutdown_id = item
                if shutdown_id is not None:
                    self.emit({"id": shutdown_id, "event": "result", "op": "shutdown", "data": {"bye": True}})
                return 0
            rid, op, params = item
            with self._lock:
                self._queued.discard(rid)
                self._current = rid
                self._step = 0
                self._cancel_seen_step = None
            try:
                self._execute(rid, op, params)
            finally:
                with self._lock:
                    self._current = None
                    self._cancelled.discard(rid)

    def _execute(self, rid: Any, op: str, params: dict) -> None:
        t0 = time.perf_counter()
        try:
            self._check_cancel(rid)
            self.emit({"id": rid, "event": "started", "op": op})
            data = getattr(self, f"op_{op}")(rid, params)
            check_finite(data)
            data["elapsed"] = round(time.perf_counter() - t0, 6)
            wire = P.to_wire(data)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an error event
            code, message = self._classify(exc, op)
            extra: dict[str, Any] = {"op": op}
            if code == P.CANCELLED:
                with self._lock:
                    extra.update(step=self._step, cancel_seen_step=self._cancel_seen_step)
            self._error(rid, code, message, **extra)
            return
        self.emit({"id": rid, "event": "result", "op": op, "data": wire})

    def _classify(self, exc: BaseException, op: str) -> tuple[str, str]:
        """Map an exception to (stable code, message for people); unexpected ones log a traceback."""
        if isinstance(exc, RequestError):
            return exc.code, exc.message
        if isinstance(exc, P.ProtocolError):  # e.g. an array that does not decode
            return (P.INVALID_INPUT if exc.code == P.INTERNAL else exc.code), exc.message
        if isinstance(exc, R.InputError):
            return P.INVALID_INPUT, str(exc)
        if isinstance(exc, RecursionError):
            return P.INVALID_INPUT, "the request is too deeply nested"
        if isinstance(exc, _Cancel) or _is(exc, "salad_model.runtime.sampling", "Cancelled"):
            with self._lock:
                step = self._step
            return P.CANCELLED, f"cancelled after {step} step(s)" if step else "cancelled"
        if _is(exc, "salad_model.runtime.pipeline", "InputError"):
            return P.INVALID_INPUT, str(exc)
        if _is(exc, "salad_model.runtime.checkpoints", "CheckpointError"):
            return P.MODEL_ERROR, str(exc)
        if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
            return P.OUT_OF_MEMORY, (f"out of memory ({exc}); try a shorter clip, fewer requests at once "
                                     "or the CPU device")
        traceback.print_exc(file=sys.stderr)
        if op == "load":
            return P.MODEL_ERROR, f"cannot load the model: {type(exc).__name__}: {exc}"
        return P.INTERNAL, f"{type(exc).__name__}: {exc} (worker log has the traceback)"

    def _check_cancel(self, rid: Any) -> None:
        with self._lock:
            if rid in self._cancelled:
                raise _Cancel()

    def _progress(self, rid: Any, stage: str, step: int, steps: int, **extra: Any) -> None:
        self.emit({"id": rid, "event": "progress", "stage": stage, "step": step, "steps": steps,
                   "progress": round(step / steps, 6) if steps else 1.0, **extra})

    def _step_callback(self, rid: Any, stage: str = "sampling") -> Callable[[int, int], None]:
        """The pipeline's callback(i, n): raise Cancelled if asked to stop, else report progress."""
        from ..runtime.sampling import Cancelled

        lock, cancelled, delay = self._lock, self._cancelled, self.step_delay

        def callback(i: int, n: int) -> None:
            with lock:
                if rid in cancelled:
                    raise Cancelled()
                self._step = i
            self._progress(rid, stage, i, n)
            if delay:
                time.sleep(delay)

        return callback

    # -- immediate ops (the model ops are in ModelOps, salad_model/serving/model_ops.py) ----------

    def hello(self) -> dict:
        device = None if self.pipe is None else str(self.pipe.device)
        torch_version = self._torch.__version__ if self._torch is not None else installed_version("torch")
        return {"protocol": P.PROTOCOL_VERSION, "salad_model": __version__,
                "python": ".".join(map(str, sys.version_info[:3])), "torch": torch_version,
                "torch_loaded": self._torch is not None, "device": device, "device_requested": self.device,
                "threads": self.threads, "pid": os.getpid(),
                "model": None if self.pipe is None else self.pipe.name,
                "uptime": round(time.perf_counter() - self._started, 6),
                "ops": list(IMMEDIATE_OPS + MODEL_OPS), "error_codes": list(P.ERROR_CODES)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salad_model.worker",
                                     description="SALAD model worker: JSON lines on stdin/stdout "
                                                 "(docs/worker_protocol.md).")
    parser.add_argument("--device", default=os.environ.get("SALAD_WORKER_DEVICE", "auto"),
                        help="default device for load requests: auto (cuda → mps → cpu), cpu, cuda, mps")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: OMP_NUM_THREADS if set, else the physical cores)")
    args = parser.parse_args(argv)
    out, inp = claim_stdio()
    watch_parent()
    delay = float(os.environ.get(STEP_DELAY_ENV, "0") or 0)
    worker = Worker(out, inp, device=args.device, threads=args.threads, step_delay=delay)
    _log(f"ready (protocol {P.PROTOCOL_VERSION}, salad_model {__version__}, threads {worker.threads})")
    threading.Thread(target=worker.read_loop, name="salad-stdin", daemon=True).start()
    return worker.run()


if __name__ == "__main__":
    code = main()
    try:
        sys.stderr.flush()
    finally:
        os._exit(code)  # skip interpreter/torch teardown: nothing is left to flush
