"""When the client calls its worker stuck: a request it has not read, or silence it does not break when asked.

Why: a worker that hangs (a deadlock, a stopped process, a C call that never returns) answered nothing, and the
add-on's jobs waited on it for ever with a moving clock and no word. Two signs, checked on every poll:

- a request line the worker has not read after :data:`WRITE_STALL` seconds (its stdin pipe is full: its reader
  thread, which answers ``hello`` and ``cancel`` at once, is not running);
- :data:`SILENCE` seconds without an event while requests are in flight: a ``hello`` probe is sent (the worker's
  reader thread answers it at once, even during a long step); no answer within :data:`PROBE_WAIT` seconds.
"""

from __future__ import annotations

import time

WRITE_STALL = 10.0  # seconds a request line may wait unread in the worker's stdin pipe
SILENCE = 15.0  # seconds without an event, requests in flight, before a hello probe
PROBE_WAIT = 15.0  # seconds the probe may go unanswered


class WorkerWatch:
    """Timing of one worker: when it was last heard, and the probe in flight."""

    def __init__(self) -> None:
        self.heard = time.monotonic()
        self.probe_sent: float | None = None
        self.idle = True  # no request in flight at the last check

    def heard_now(self) -> None:
        """An event arrived (any event: the worker is alive and writing); a probe in flight is answered too."""
        self.heard = time.monotonic()
        self.probe_sent = None

    def check(self, in_flight: bool, write_stall: float) -> tuple[str, str]:
        """("", ""), ("probe", "") to send a probe, or ("stuck", why) to give the worker up."""
        now = time.monotonic()
        if write_stall > WRITE_STALL:
            return "stuck", f"it did not read a request for {write_stall:.0f} s"
        if not in_flight:
            self.idle = True
            return "", ""
        if self.idle:  # idle silence is no sign: it counts from the first check with a request in flight
            self.idle = False  # (nothing polls while idle: a reset there left the clock at the last job's end)
            self.heard, self.probe_sent = now, None
        if self.probe_sent is not None:
            if now - self.probe_sent > PROBE_WAIT:
                return "stuck", f"it sent nothing for {now - self.heard:.0f} s and did not answer a ping"
            return "", ""
        if now - self.heard > SILENCE:
            self.probe_sent = now
            return "probe", ""
        return "", ""
