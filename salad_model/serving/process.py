"""Process helpers of the worker (standard library only): CPU cores, installed versions, the log, private
stdio, and the watch that ends the worker when its client dies."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import IO, Any

from ..cpu import default_threads, physical_cores  # noqa: F401 - re-exported (the worker's default threads)

PARENT_PID_ENV = "SALAD_WORKER_PARENT_PID"


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


def _log(message: str) -> None:
    try:
        sys.stderr.write(f"[salad worker {os.getpid()}] {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _hard_exit(reason: str) -> None:
    _log(f"exiting now: {reason}")
    os._exit(0)


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
