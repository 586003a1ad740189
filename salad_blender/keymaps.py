"""Esc cancels the running SALAD job, as it cancels Blender's own renders and bakes.

Why a key map item in the add-on key configuration (not a modal operator): a modal operator would hold
every event while the model samples (and postpone autosave); a ``Window`` key map item is only reached
after text fields, menus and modal tools (grab, rotate) had their turn at the key, and its poll lets the
key through when there is nothing to cancel. Blender's own Esc stops playback and passes the key on, so one
Esc would stop the animation you watch while waiting and throw the running job away (seen in Blender 4.3.2):
an Esc soon after a frame that playback showed only stops playback; the next Esc cancels.
"""

from __future__ import annotations

import time

import bpy

from .runner import RUNNER, redraw

PLAYBACK_GRACE = 0.5  # s: at least this long after the last frame playback showed, Esc only stops playback
clock = time.monotonic  # tests replace it
_playback = {"last": float("-inf"), "interval": 0.0}  # when playback last showed a frame, and its frame spacing


def animation_playing() -> bool:
    """Whether any window plays the animation (in a frame-change handler there may be no context screen)."""
    wm = getattr(bpy.context, "window_manager", None)
    return wm is not None and any(w.screen is not None and w.screen.is_animation_playing for w in wm.windows)


@bpy.app.handlers.persistent
def _frame_changed(*_args) -> None:  # noqa: ANN002 - (scene, depsgraph)
    if animation_playing():
        now = clock()
        gap = now - _playback["last"]
        _playback["interval"] = gap if gap < 2.0 else 0.0  # the first frame of a playback has no spacing yet
        _playback["last"] = now


def playback_just_stopped() -> bool:
    """Playback showed a frame a moment ago (a heavy scene may play at 1–2 fps: the moment scales with it)."""
    return clock() - _playback["last"] < max(PLAYBACK_GRACE, 3 * _playback["interval"])


class SALAD_OT_cancel_key(bpy.types.Operator):
    """Cancel the running SALAD generation, edit or shot; the scene stays as it was"""

    bl_idname = "salad.cancel_running"
    bl_label = "Cancel SALAD Job"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return RUNNER.busy("motion") and not animation_playing() and not playback_just_stopped()

    def execute(self, context: bpy.types.Context) -> set[str]:
        job = RUNNER.motion
        job.cancel()
        RUNNER.finished("motion", job)
        redraw()
        self.report({"WARNING"}, f"SALAD: {job.message}")
        return {"FINISHED"}


CLASSES = (SALAD_OT_cancel_key,)
_items: list[tuple[bpy.types.KeyMap, bpy.types.KeyMapItem]] = []


def register() -> None:
    """Esc in any editor of any window (headless Blender has an add-on key configuration too)."""
    if _frame_changed not in bpy.app.handlers.frame_change_post:
        bpy.app.handlers.frame_change_post.append(_frame_changed)
    kc = bpy.context.window_manager.keyconfigs.addon
    if kc is None:
        return
    km = kc.keymaps.new(name="Window", space_type="EMPTY", region_type="WINDOW")
    _items.append((km, km.keymap_items.new(SALAD_OT_cancel_key.bl_idname, "ESC", "PRESS")))


def unregister() -> None:
    if _frame_changed in bpy.app.handlers.frame_change_post:
        bpy.app.handlers.frame_change_post.remove(_frame_changed)
    for km, kmi in _items:
        try:
            km.keymap_items.remove(kmi)
        except (ReferenceError, RuntimeError):
            pass  # the key configuration was already freed (Blender quitting)
    _items.clear()
