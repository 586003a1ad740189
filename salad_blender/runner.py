"""The jobs of this Blender session and the timer that polls them; the progress bar they draw.

Why its own module: the operators start jobs here and both the panels and the preferences draw their
progress, so all of them import this one (and it imports none of them).
"""

from __future__ import annotations

import sys

import bpy

from . import jobs, setup_env, ui_state
from .motion_job import POLL_INTERVAL, MotionJob


class Runner:
    """At most one motion job (generate / edit / attention), one check, one environment set-up and one
    official-model download."""

    SLOTS = ("motion", "check", "setup", "download")

    def __init__(self) -> None:
        self.motion: MotionJob | None = None
        self.check: MotionJob | None = None
        self.setup: setup_env.SetupJob | None = None
        self.download: setup_env.SetupJob | None = None
        self.serials = dict.fromkeys(self.SLOTS, 0)  # jobs started in each slot: a Cancel button names its own
        self.status_shown: tuple[str, int] | None = None  # what the status bar was last asked to show

    def busy(self, slot: str = "motion") -> bool:
        job = getattr(self, slot)
        return job is not None and not job.finished

    def start(self, slot: str, job, timer: bool = True) -> None:  # noqa: ANN001 - MotionJob or SetupJob
        old = getattr(self, slot)
        if old is not None and not old.finished:
            old.cancel()
        setattr(self, slot, job)
        self.serials[slot] += 1
        if timer and isinstance(job, MotionJob):
            job.hold = _mode_hold
        if timer and not bpy.app.timers.is_registered(_tick):
            bpy.app.timers.register(_tick, first_interval=POLL_INTERVAL, persistent=True)

    def tick(self) -> float | None:
        """Poll every running job once; None (stop the timer) when nothing runs any more."""
        running = False
        for slot in self.SLOTS:
            job = getattr(self, slot)
            if job is None or job.finished:
                continue
            with _window_context():
                if job.poll():
                    self.finished(slot, job, notify=True)
                else:
                    running = True
        shown = status_progress(self)
        redraw(status_bar=shown != self.status_shown)
        self.status_shown = shown
        return POLL_INTERVAL if running else None

    def finished(self, slot: str, job, notify: bool = False) -> None:  # noqa: ANN001
        """Tell the user (console, panel, and with ``notify`` the status bar and Info log); make the change undoable.

        ``notify`` is for jobs that finish in the background: an operator that waited for its job
        reports the outcome itself.
        """
        stream = sys.stderr if job.state == "failed" else sys.stdout
        print(f"SALAD: {job.message}", file=stream)
        details = getattr(job, "details", "")
        if details:
            print(details, file=sys.stderr)
        if notify:
            report("WARNING" if getattr(job, "warning", "") else job_report_level(job.state), f"SALAD: {job.message}")
        if slot == "motion" and job.state == "done":
            try:
                bpy.ops.ed.undo_push(message=f"SALAD {job.label}")
            except RuntimeError:
                pass

    def cancel_all(self) -> None:
        for slot in self.SLOTS:
            job = getattr(self, slot)
            if job is not None and not job.finished:
                job.cancel()


RUNNER = Runner()


STATUS_SLOTS = ("motion", "check", "setup")  # the jobs the status bar shows, first running one wins


def status_progress(runner: Runner) -> tuple[str, int] | None:
    """What the status bar shows: (slot, whole percent) of the first running job, None when none runs.

    The status bar is redrawn only when this changes: it is not one of the window's areas (see :func:`redraw`).
    """
    for slot in STATUS_SLOTS:
        job = getattr(runner, slot)
        if job is not None and not job.finished:
            return slot, percent(job.progress)
    return None


def percent(factor: float) -> int:
    """The whole percent a progress bar shows for ``factor`` (0..1)."""
    return round(float(factor) * 100)


def job_report_level(state: str) -> str:
    """The report type of a finished job: failures are errors, cancels warnings, the rest info."""
    return {"failed": "ERROR", "cancelled": "WARNING"}.get(state, "INFO")


def report(level: str, message: str) -> bool:
    """Put a message in the status bar and the Info log from outside an operator (the timer).

    Only an operator can report, so this invokes the internal ``salad.report`` operator with a window
    in context (it reports from a modal step, which shows the status-bar banner); without a window
    it reports directly (the Info log), and an ERROR report then makes the call raise after it was
    logged, which is expected here. Returns False when there was no way to report.
    """
    try:
        with _window_context():
            bpy.ops.salad.report("INVOKE_DEFAULT", level=level, message=message)
    except RuntimeError as exc:
        return level == "ERROR" and message in str(exc)
    except (AttributeError, KeyError):
        return False
    return True


def _mode_hold() -> str:
    return ui_state.apply_hold(getattr(bpy.context, "mode", "OBJECT") or "OBJECT")


def _tick() -> float | None:
    try:
        return RUNNER.tick()
    except Exception:  # noqa: BLE001 - a raising timer is unregistered silently; keep polling visible
        import traceback

        traceback.print_exc()
        return POLL_INTERVAL


class _window_context:
    """Run the apply step with a window in context when there is one (timers have a bare context)."""

    def __enter__(self) -> None:
        wm = getattr(bpy.context, "window_manager", None)
        win = wm.windows[0] if wm is not None and len(wm.windows) and bpy.context.window is None else None
        self._cm = bpy.context.temp_override(window=win) if win is not None else None
        if self._cm is not None:
            self._cm.__enter__()

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        if self._cm is not None:
            self._cm.__exit__(*exc)


def redraw(status_bar: bool = False) -> None:
    """Ask the areas that show SALAD state to redraw (progress, messages); with ``status_bar`` the status bar too.

    Why the status bar apart: it is a window's global area, not in ``screen.areas`` (seen in Blender 4.3: tagging
    every area there never redrew it, so it showed 0% while the panel showed 97%). Python has no handle on it;
    it redraws on the message bus's ``Window.view_layer``, which only tags regions for redraw.
    """
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    if status_bar:
        bpy.msgbus.publish_rna(key=(bpy.types.Window, "view_layer"))
    for win in wm.windows:
        for area in win.screen.areas:
            if area.type in ("VIEW_3D", "PREFERENCES", "STATUSBAR", "IMAGE_EDITOR"):
                area.tag_redraw()


def draw_progress(layout: bpy.types.UILayout, factor: float, text: str = "", cancel: str = "",
                  width: int = 40) -> None:
    """The status ``text`` on its own line(s), then a progress bar with the percentage and a Cancel button.

    Why its own line: a bar squeezes its text and Blender cuts it in the middle ("Loading the mode…ext
    encoder"); here it wraps at ``width`` characters and a cut ends in "…". ``cancel``: the runner
    slot the X button cancels ("" = none). Blender before 4.0 has no bar: the percentage as text.
    """
    col = layout.column(align=True)
    for line in ui_state.fit_lines(text, width, 2) if text else []:
        col.label(text=line)
    row = col.row(align=True)
    if hasattr(row, "progress"):
        row.progress(factor=float(factor), type="BAR", text=f"{percent(factor)}%")
    else:
        row.label(text=f"{percent(factor)}%")
    if cancel:
        cancel_button(row, cancel)


def cancel_button(layout: bpy.types.UILayout, slot: str) -> None:
    """The X that cancels the job running in ``slot`` now, and no other: a click on a button drawn before that job
    ended (the panel redraws 10 times a second) must not cancel the next one."""
    props = layout.operator("salad.cancel", text="", icon="X")
    props.which, props.job = slot, RUNNER.serials[slot]


@bpy.app.handlers.persistent
def _cancel_on_load(*_args) -> None:  # noqa: ANN002
    """A motion job must not land in another file's objects that happen to share a name."""
    job = RUNNER.motion
    if job is not None and not job.finished:
        job.cancel()
        print(f"SALAD: {job.label} cancelled because another file was opened")


def register() -> None:
    bpy.app.handlers.load_pre.append(_cancel_on_load)


def unregister() -> None:
    """Cancel what runs, stop the timer and end the worker."""
    if _cancel_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_cancel_on_load)
    RUNNER.cancel_all()
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    jobs.shutdown()
