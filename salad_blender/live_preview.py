"""Live re-weight preview (issue #18): with fast mode on, moving the re-weight slider previews the edit.

The slider's changes are debounced (a request starts ``DEBOUNCE`` s after the last change), a new request
cancels the one still running, each finished preview replaces the previous preview Action (never the user's
own), and *Apply* keeps the shown preview as a new Action. Why plain methods given ``now``: timers do not fire
in headless Blender (tests, tools/batch.py), so the logic is a controller driven by an injected clock; the UI
only calls :meth:`ReweightPreview.changed` from the slider and :meth:`ReweightPreview.tick` from a timer.
No bpy here: starting a job and handling Actions are injected (:mod:`preview_actions` has Blender's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

DEBOUNCE = 0.3  # seconds of slider rest before a preview request starts
POLL = 0.1  # timer interval while a request waits or runs


class PreviewJob(Protocol):
    """What the controller needs of a job (salad_blender.motion_job.MotionJob has it)."""

    state: str
    message: str
    output: Any

    @property
    def finished(self) -> bool: ...

    def poll(self) -> bool: ...

    def cancel(self) -> None: ...


class PreviewStore(Protocol):
    """The Action side: mark a result as a preview, drop a preview, keep one, show the source again."""

    def mark(self, action: Any) -> None: ...

    def discard(self, action: Any) -> None: ...

    def keep(self, action: Any) -> Any: ...

    def restore(self, source: Any) -> None: ...


class ReweightPreview:
    """One live preview session on one source Action (the action the edits start from)."""

    def __init__(self, source: Any, start: Callable[[str, float], PreviewJob], store: PreviewStore,
                 debounce: float = DEBOUNCE) -> None:
        self.source = source
        self.start = start
        self.store = store
        self.debounce = debounce
        self.pending: tuple[str, float, float] | None = None  # (word, scale, due time)
        self.job: PreviewJob | None = None
        self.job_request: tuple[str, float] | None = None
        self.preview: Any = None  # the preview Action shown now
        self.shown: tuple[str, float] | None = None  # the request it answers
        self.message = ""

    @property
    def active(self) -> bool:
        """Something waits, runs or is shown (the panel offers Apply / Discard)."""
        return self.pending is not None or self.job is not None or self.preview is not None

    def changed(self, word: str, scale: float, now: float) -> float:
        """The slider moved: (re)schedule a request for ``now + debounce``; returns the delay for the timer."""
        self.pending = (word, float(scale), now + self.debounce)
        return self.debounce

    def tick(self, now: float) -> float | None:
        """Start a due request (cancelling the running one), poll the running one, show its result.

        Returns the delay until the next tick, or None when nothing waits or runs (the timer stops).
        """
        if self.pending is not None and now >= self.pending[2]:
            word, scale, _ = self.pending
            self.pending = None
            if (word, scale) == self.shown and self.job is None:
                pass  # back to the value on screen: nothing to compute
            else:
                self._cancel_job()
                try:  # refused at the start (the worker busy with other settings, the source gone): say why
                    self.job, self.job_request = self.start(word, scale), (word, scale)
                    self.message = ""
                except Exception as exc:  # noqa: BLE001 - a timer must not raise (Blender drops it, silently)
                    self.message = str(exc)
        if self.job is not None and self.job.poll():
            self._finished(self.job)
        if self.pending is not None:
            return max(min(self.pending[2] - now, POLL), 0.0)
        return POLL if self.job is not None else None

    def _finished(self, job: PreviewJob) -> None:
        self.job = None
        if job.state != "done" or job.output is None:
            if job.state == "failed":
                self.message = job.message  # the shown preview (if any) stays
            return
        old, self.preview, self.shown = self.preview, job.output, self.job_request
        self.store.mark(self.preview)
        if old is not None and old is not self.preview:
            self.store.discard(old)

    def _cancel_job(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.job = None

    def apply(self) -> Any:
        """Keep the shown preview as a new Action (later requests are dropped); None if nothing is shown."""
        self.pending = None
        self._cancel_job()
        kept, self.preview, self.shown = self.preview, None, None
        return None if kept is None else self.store.keep(kept)

    def discard(self, restore: bool = True) -> None:
        """Drop every request and the preview Action; the source plays again (unless ``restore`` is False:
        the armature plays something else the user chose, which stays)."""
        self.pending = None
        self._cancel_job()
        if restore:
            self.store.restore(self.source)
        if self.preview is not None:
            self.store.discard(self.preview)
            self.preview = self.shown = None
