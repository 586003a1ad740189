"""The client's stream threads: the worker's stdout (events, decoded off the main thread), stderr (its log) and
stdin (requests, written off the main thread).

Why apart from :mod:`client`: what these threads must survive is its own concern — a corrupt event, a line nested
past the parser, a stderr flood or a progress bar without newlines must neither end a thread (jobs would wait
forever) nor block the worker (a full pipe) nor fill memory; and a worker that stops reading its stdin must not
block Blender's main thread in a ``write`` of a 1 MiB request.
"""

from __future__ import annotations

import collections
import json
import math
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from .protocol import PROTOCOL_ERROR, from_wire

MAX_STDERR_LINE = 4000  # characters kept per stderr line (a runaway line must not eat memory)


def _decode_event(line: bytes) -> dict:
    """One event line → event dict (arrays decoded); an unreadable one → a ``bad_json`` error event.

    Nothing may escape: an exception here ended the reader thread before it queued the worker's exit, and every
    job then waited forever. A readable event whose data does not decode (a corrupt array) fails its own job.
    """
    try:
        event = json.loads(line)
    except (ValueError, RecursionError) as exc:
        event, exc_seen = None, exc
    else:
        exc_seen = None if isinstance(event, dict) else ValueError("not an object")
    if exc_seen is None and not isinstance(event.get("id"), (str, int, type(None))):
        exc_seen = ValueError("its id is neither a string nor an integer")
    if exc_seen is not None:
        return {"id": None, "event": "error", "code": "bad_json",
                "message": f"the worker sent an unreadable line ({exc_seen}): {line[:200]!r}"}
    wrong = _wrong_field(event)
    if wrong:
        return {"id": event.get("id"), "event": "error", "code": PROTOCOL_ERROR,
                "message": f"the model worker sent a {str(event.get('event'))[:40]} event the add-on cannot read "
                           f"({wrong}); install matching versions of the add-on and salad_model"}
    if "data" in event:
        try:
            event["data"] = from_wire(event["data"])
        except Exception as exc:  # noqa: BLE001 - TypeError, RecursionError, MemoryError ... from a corrupt array
            rid = event.get("id")
            return {"id": rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None,
                    "event": "error", "code": "bad_json",
                    "message": f"the worker's {str(event.get('event'))[:40]} could not be read "
                               f"({type(exc).__name__}: {str(exc)[:200]})"}
    return event


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# What each field of an event must be (checked before the client reads it: a "3" or a null where a number belongs
# raised out of ``poll()``, a traceback in Blender's timer). An absent field is fine (the client has defaults).
_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "event": (lambda v: isinstance(v, str), "a string"),
    "step": (_is_int, "an integer"),
    "steps": (_is_int, "an integer"),
    "progress": (_is_number, "a finite number"),
    "stage": (lambda v: isinstance(v, str), "a string"),
    "detail": (lambda v: isinstance(v, str), "a string"),
    "code": (lambda v: isinstance(v, str), "a string"),
    "message": (lambda v: isinstance(v, str), "a string"),
}


def _wrong_field(event: dict) -> str:
    """What is wrong with a (decoded) event's fields, or "" if the client can read them all."""
    for key, (ok, kind) in _FIELDS.items():
        if key in event and not ok(event[key]):
            return f"{key!r} is {str(json.dumps(event[key]))[:40]}, not {kind}"
    if event.get("event") == "result" and not isinstance(event.get("data", {}), dict):
        return f"'data' is {str(json.dumps(event['data']))[:40]}, not an object"
    return ""


def _read_events(stream, events: queue.SimpleQueue, arrived: threading.Condition, counter: list[int],
                 proc: subprocess.Popen) -> None:
    """Reader thread: decode event lines (arrays included) and queue them; queue the exit at EOF."""

    def put(item: Any) -> None:
        events.put(item)
        with arrived:
            counter[0] += 1
            arrived.notify_all()

    try:
        for line in stream:
            if line.strip():
                put(_decode_event(line))
    except (OSError, ValueError):
        pass
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # stdout closed but the process lingers: report it anyway
        code = None
    put(("exit", code))


def _read_stderr(stream, lines: collections.deque, echo: Callable[[str], None] | None) -> None:
    """Drain the worker's stderr into the ring buffer, so a chatty library can never fill the pipe and block it.

    Lines are read at most ``4 × MAX_STDERR_LINE`` bytes at a time and the rest of a longer one is dropped: a
    progress bar redrawn with carriage returns and no newline was one line held whole in memory (it grew as
    long as the bar ran).
    """
    limit = 4 * MAX_STDERR_LINE
    try:
        while raw := stream.readline(limit):
            cut = len(raw) == limit and not raw.endswith(b"\n")
            if cut:  # too long: keep its start, skip to its end
                while (more := stream.readline(limit)) and not more.endswith(b"\n"):
                    pass
            text = raw.decode("utf-8", "replace").rstrip("\r\n")[:MAX_STDERR_LINE] + (" …" if cut else "")
            lines.append(text)
            if echo is not None:
                try:
                    echo(text)
                except Exception:  # noqa: BLE001 - a broken log hook must not stop draining stderr
                    pass
    except (OSError, ValueError):
        pass


class RequestWriter:
    """Writes request lines to the worker's stdin on its own thread: :meth:`send` never blocks.

    Why: a worker that stops reading (hung, stopped) fills the pipe (64 KiB) and a ``write`` of a 1 MiB request
    then blocked Blender's main thread. :meth:`stalled` tells how long the oldest unwritten line has waited, so
    the client can call such a worker stuck. :meth:`close` gives the worker EOF after the line in flight (unsent
    lines are dropped: the worker is being ended).
    """

    def __init__(self, stream, name: str = "salad-worker-in") -> None:
        self._stream = stream
        self._lines: collections.deque[tuple[bytes, float]] = collections.deque()
        self._cond = threading.Condition()
        self._writing: float | None = None  # when the line being written was handed over
        self._closed = False
        self.broken = False  # a write failed: the worker is gone (its exit event tells why)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def send(self, line: bytes) -> None:
        """Queue one line (dropped if the writer is closed or the pipe broke)."""
        with self._cond:
            if not self._closed and not self.broken:
                self._lines.append((line, time.monotonic()))
                self._cond.notify()

    def stalled(self, not_before: float = 0.0) -> float:
        """Seconds the oldest line not yet written has waited (0: everything was written).

        ``not_before`` (a ``time.monotonic()``): count from then at the earliest; a worker starting up reads
        nothing, and that time is not a sign of a stuck one.
        """
        with self._cond:
            since = self._writing if self._writing is not None else (self._lines[0][1] if self._lines else None)
        return 0.0 if since is None else time.monotonic() - max(since, not_before)

    def close(self) -> None:
        """Drop unsent lines and close stdin once the line in flight is written (never blocks)."""
        with self._cond:
            self._closed = True
            self._lines.clear()
            self._cond.notify()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (True: it did, stdin is closed)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._lines and not self._closed:
                    self._cond.wait()
                if not self._lines:
                    break
                line, self._writing = self._lines.popleft()
            try:
                self._stream.write(line)
                self._stream.flush()
            except (OSError, ValueError):
                with self._cond:
                    self.broken, self._writing = True, None
                    self._lines.clear()
                break
            with self._cond:
                self._writing = None
        try:
            self._stream.close()
        except (OSError, ValueError):
            pass
