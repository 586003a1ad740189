"""A clock the test moves by hand, for the modules that read ``time.monotonic()`` (a helper module, like
blender_state.py): waits are checked to the edge without waiting."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def hand_clock(monkeypatch, *modules, now: float = 100.0) -> Clock:  # noqa: ANN001 - pytest's monkeypatch
    """One clock in place of ``time`` in each of ``modules``."""
    clock = Clock(now)
    for module in modules:
        monkeypatch.setattr(module, "time", clock)
    return clock
