"""The client's reader threads: the worker's stdout (events, decoded off the main thread) and stderr (its log).

Why apart from :mod:`client`: what these threads must survive is its own concern — a corrupt event, a line nested
past the parser, a stderr flood or a progress bar without newlines must neither end a thread (jobs would wait
forever) nor block the worker (a full pipe) nor fill memory.
"""

from __future__ import annotations

import collections
import json
import queue
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from .protocol import from_wire

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
