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
import math  # noqa: E402
import queue  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import IO, Any  # noqa: E402

from salad_model.runtime import requests as R  # noqa: E402

from .. import __version__  # noqa: E402
from . import protocol as P  # noqa: E402

PARENT_PID_ENV = "SALAD_WORKER_PARENT_PID"
STEP_DELAY_ENV = "SALAD_WORKER_DEBUG_STEP_DELAY"  # tests only: seconds slept after each step
EXIT_GRACE = 5.0  # seconds the main thread gets to finish after EOF before the process is ended

IMMEDIATE_OPS = ("hello", "version", "cancel", "shutdown")
MODEL_OPS = ("load", "unload", "model_info", "prompt_tokens", "generate", "edit", "attention", "edit_real")
DEVICES = ("auto", "cpu", "cuda", "mps")

_STOP = object()


class RequestError(Exception):
    """A request the worker refuses (bad fields, no model); becomes an error event with ``code``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class _Cancel(Exception):
    """Cancel noticed outside the sampling loop (queued request, between loading stages)."""


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
    "generate": ("prompt", "record_maps", *_SAMPLING),
    "attention": ("prompt", *_SAMPLING),
    "edit": ("source_prompt", *R.EDIT_KEYS, "return_source", *_SAMPLING),
    "edit_real": ("prompt", "joints", *R.REAL_EDIT_KEYS, "overlap", "null_text_iters", "steps", "guidance"),
}


def check_fields(msg: dict) -> dict:
    """The request's parameters (without id/op), type- and range-checked; unknown fields are refused."""
    op = msg["op"]
    params = {k: v for k, v in msg.items() if k not in ("id", "op")}
    try:
        return R.check_fields(params, FIELDS[op])
    except R.InputError as exc:
        raise RequestError(P.INVALID_INPUT, f"{op}: {exc}") from None


def check_finite(data: Any, where: str = "result") -> None:
    """Refuse NaN/inf anywhere in a result before it leaves the worker (a diverged model, not user data)."""
    import numpy as np

    if isinstance(data, dict):
        for k, v in data.items():
            check_finite(v, f"{where}.{k}")
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            check_finite(v, f"{where}[{i}]")
    elif isinstance(data, np.ndarray):
        if data.dtype.kind in "fc" and not np.isfinite(data).all():
            raise RequestError(P.MODEL_ERROR, f"the model produced NaN or infinite values ({where}); the "
                                              "weights may be corrupt or the input out of the model's range")
    elif isinstance(data, float) and not math.isfinite(data):
        raise RequestError(P.MODEL_ERROR, f"the model produced a non-finite number ({where})")


# ------------------------------------------------------------------------------------------------
# Environment helpers (no torch)


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads share the FPU: more threads only contend)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = list(range(os.cpu_count() or 1))
    if sys.platform.startswith("linux"):
        cores = set()
        for c in cpus:
            topo = Path(f"/sys/devices/system/cpu/cpu{c}/topology")
            try:
                cores.add((topo.joinpath("physical_package_id").read_text().strip(),
                           topo.joinpath("core_id").read_text().strip()))
            except OSError:
                cores.add(("cpu", str(c)))
        return max(1, len(cores))
    if sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "hw.physicalcpu"], capture_output=True, text=True,
                                 timeout=2)
            return max(1, int(out.stdout.strip()))
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    return max(1, len(cpus))


def installed_version(dist: str) -> str | None:
    """A distribution's version from its metadata, without importing it (torch takes seconds)."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------------------------
# The worker


class Worker:
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
        self.threads = threads or physical_cores()
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

    # -- ops ------------------------------------------------------------------------------------

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

    def _import_torch(self, threads: int | None = None):
        if self._torch is None:
            import torch

            self._torch = torch
            _log(f"torch {torch.__version__} imported")
        if threads is not None:
            self.threads = threads
        if self._torch.get_num_threads() != self.threads:
            self._torch.set_num_threads(self.threads)
        return self._torch

    def _pipeline(self):
        if self.pipe is None:
            raise RequestError(P.NO_MODEL, "no model is loaded: send a \"load\" request first")
        return self.pipe

    def op_load(self, rid: Any, params: dict) -> dict:
        model = params.get("model", "demo")
        device = params.get("device", self.device)
        threads = params.get("threads")
        if not model.strip():
            raise RequestError(P.INVALID_INPUT, "\"model\" must be \"demo\" or a model folder")
        if device not in DEVICES and not device.startswith("cuda:"):
            raise RequestError(P.INVALID_INPUT, f"unknown device {device!r}; use auto, cpu, cuda[:N] or mps")
        if threads is not None and not 1 <= threads <= 1024:
            raise RequestError(P.INVALID_INPUT, f"threads must be within 1 … 1024, got {threads}")
        self._progress(rid, "load", 0, 3, detail="importing torch")
        torch = self._import_torch(threads)
        self._check_cancel(rid)
        from ..runtime.checkpoints import load_any
        from ..runtime.pipeline import DEMO_MODEL_DIR, SaladPipeline, pick_device

        dev = pick_device(device)
        mps = getattr(torch.backends, "mps", None)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RequestError(P.INVALID_INPUT, "CUDA is not available in the worker's Python environment")
        if dev.type == "mps" and not (mps is not None and mps.is_available()):
            raise RequestError(P.INVALID_INPUT, "Apple MPS is not available in the worker's Python env")
        path = DEMO_MODEL_DIR if model == "demo" else Path(model).expanduser()
        key = (str(path.resolve()), str(dev))
        if self.pipe is not None and key == self._model_key and not params.get("reload"):
            return {**self.model_info(), "reused": True}
        self._progress(rid, "load", 1, 3, detail="reading weights")
        bundle = load_any(path)
        self._check_cancel(rid)
        self._progress(rid, "load", 2, 3, detail="loading the text encoder")
        pipe = SaladPipeline(bundle, device=str(dev))
        self._check_cancel(rid)
        self.pipe, self._model_key = pipe, key  # replace the old model only once the new one works
        self._progress(rid, "load", 3, 3, detail="ready")
        return {**self.model_info(), "reused": False}

    def op_unload(self, rid: Any, params: dict) -> dict:
        had = self.pipe is not None
        self.pipe, self._model_key = None, None
        import gc

        gc.collect()
        if self._torch is not None and self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()
        return {"unloaded": had}

    def model_info(self) -> dict:
        pipe = self._pipeline()
        te = pipe.text_encoder
        info = pipe.info
        return {"name": pipe.name, "fps": pipe.fps, "min_frames": pipe.min_frames,
                "max_frames": pipe.max_frames, "frame_step": 4, "license": info.get("license"),
                "dataset": info.get("dataset"), "guidance": pipe.default_guidance,
                "text_encoder": {"name": te.name, "type": pipe.bundle.text_encoder.get("type"),
                                 "dim": te.dim, "max_length": te.max_length},
                "device": str(pipe.device), "threads": self.threads, "source": info.get("source"),
                "format": info.get("format"), "schedulers": list(R.SCHEDULERS),
                "edit_modes": list(R.EDIT_MODES)}

    def op_model_info(self, rid: Any, params: dict) -> dict:
        return self.model_info()

    def op_prompt_tokens(self, rid: Any, params: dict) -> dict:
        pipe = self._pipeline()
        if "prompt" not in params:
            raise RequestError(P.INVALID_INPUT, "prompt_tokens needs a \"prompt\"")
        te, prompt = pipe.text_encoder, params["prompt"]
        prompt = R.check_prompt_text(prompt)  # size capped before tokenising; invisible-only refused
        n = te.num_tokens(prompt)
        return {"prompt": prompt, "tokens": te.tokens(prompt), "num_tokens": n, "max_length": te.max_length,
                "too_long": n > te.max_length}

    @staticmethod
    def _motion(m) -> dict:
        import numpy as np

        return {"joints": np.asarray(m.joints, np.float32), "features": np.asarray(m.features, np.float32),
                "contacts": np.asarray(m.contacts, bool), "meta": m.meta}

    @staticmethod
    def _sampling(params: dict) -> dict:
        keys = ("frames", "seconds", "seed", "guidance", "steps", "scheduler")
        return {k: params[k] for k in keys if k in params}

    def op_generate(self, rid: Any, params: dict) -> dict:
        pipe = self._pipeline()
        if "prompt" not in params:
            raise RequestError(P.INVALID_INPUT, "generate needs a \"prompt\"")
        # Recording the attention maps costs ~nothing and makes the next edit of this motion skip its source pass.
        m = pipe.generate(params["prompt"], callback=self._step_callback(rid),
                          record_maps=params.get("record_maps", True), **self._sampling(params))
        return self._motion(m)

    def op_edit_real(self, rid: Any, params: dict) -> dict:
        """Invert a real motion (joints [T, 22, 3], model space, 20 fps) under ``prompt`` and edit it."""
        pipe = self._pipeline()
        for key in ("prompt", "joints"):
            if key not in params:
                raise RequestError(P.INVALID_INPUT, f"edit_real needs {key!r}")
        joints = P.decode_array(params["joints"])
        if joints.dtype.kind not in "f":
            raise RequestError(P.INVALID_INPUT, f"'joints' must be a float array, got {joints.dtype}")
        edit = {k: params[k] for k in ("edit_prompt", "mode", "word", "scale", "mirror", "mirror_method",
                                       "edit_guidance") if k in params}
        kw = {k: params[k] for k in ("overlap", "null_text_iters", "steps", "guidance") if k in params}
        m = pipe.edit_real(params["prompt"], joints=joints, callback=self._step_callback(rid), **kw, **edit)
        return self._motion(m)

    def op_attention(self, rid: Any, params: dict) -> dict:
        pipe = self._pipeline()
        if "prompt" not in params:
            raise RequestError(P.INVALID_INPUT, "attention needs a \"prompt\"")
        a = pipe.attention(params["prompt"], callback=self._step_callback(rid), **self._sampling(params))
        return {**self._motion(a.motion), "tokens": list(a.tokens), "maps": a.maps.astype("float32"),
                "parts": list(a.parts)}

    def op_edit(self, rid: Any, params: dict) -> dict:
        pipe = self._pipeline()
        if "source_prompt" not in params:
            raise RequestError(P.INVALID_INPUT, "edit needs the \"source_prompt\" of the motion to edit")
        keys = ("edit_prompt", "mode", "word", "scale", "mirror", "mirror_method", "src_proportion",
                "swap_src_proportion", "inject_temporal")
        kw = {k: params[k] for k in keys if k in params}
        want_source = bool(params.get("return_source"))
        res = pipe.edit(params["source_prompt"], callback=self._step_callback(rid), return_source=want_source,
                        **self._sampling(params), **kw)
        out, src = res if want_source else (res, None)
        data = self._motion(out)
        if want_source:
            data["source"] = None if src is None else self._motion(src)
        return data


def _is(exc: BaseException, module: str, name: str) -> bool:
    """isinstance against a salad_model class without importing its (torch-importing) module."""
    cls = getattr(sys.modules.get(module), name, None)
    return cls is not None and isinstance(exc, cls)


def _log(message: str) -> None:
    try:
        sys.stderr.write(f"[salad worker {os.getpid()}] {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _hard_exit(reason: str) -> None:
    _log(f"exiting now: {reason}")
    os._exit(0)


# ------------------------------------------------------------------------------------------------
# Process set-up


def claim_stdio() -> tuple[IO[bytes], IO[bytes]]:
    """Private handles on the real stdin/stdout; fds 0/1 become /dev/null and stderr.

    After this, stray prints and warnings (Python or C level, e.g. from torch) land in stderr and can
    never corrupt the protocol stream, and nothing else can consume request bytes.
    """
    out = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    inp = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    sys.stdout.flush()
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    return out, inp


def watch_parent() -> None:
    """End the process when the client dies, even if the stdin pipe was leaked to another process."""
    if os.name != "posix":
        return
    ppid0 = os.getppid()
    client = os.environ.get(PARENT_PID_ENV, "")
    client_pid = int(client) if client.isdigit() else None
    if client_pid is not None and not _pid_alive(client_pid):
        _hard_exit(f"client process {client_pid} is already gone")

    def gone() -> str | None:
        if os.getppid() != ppid0:
            return f"parent {ppid0} died"
        if client_pid is not None and not _pid_alive(client_pid):
            return f"client process {client_pid} died"
        return None

    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            # Linux: SIGHUP when the parent *thread* ends; the handler ignores it if the process lives on.
            def on_hup(signum: int, frame: Any) -> None:
                why = gone()
                if why:
                    _hard_exit(why)

            signal.signal(signal.SIGHUP, on_hup)
            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGHUP), 0, 0, 0)
            if os.getppid() != ppid0:  # died before prctl took effect
                _hard_exit("parent died during start-up")
        except (OSError, AttributeError, ValueError) as exc:
            _log(f"PR_SET_PDEATHSIG unavailable: {exc}")

    def loop() -> None:
        while True:
            time.sleep(0.5)
            why = gone()
            if why:
                _hard_exit(why)

    threading.Thread(target=loop, name="salad-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salad_model.worker",
                                     description="SALAD model worker: JSON lines on stdin/stdout "
                                                 "(docs/worker_protocol.md).")
    parser.add_argument("--device", default=os.environ.get("SALAD_WORKER_DEVICE", "auto"),
                        help="default device for load requests: auto (cuda → mps → cpu), cpu, cuda, mps")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: number of physical cores)")
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
