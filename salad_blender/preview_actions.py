"""Blender side of the live re-weight preview (:mod:`live_preview`): preview Actions, the session, the timer
and the Apply / Discard operators.

A preview Action carries ``salad_preview`` and no fake user; only such an Action is ever deleted here (the
user's own Actions are refused). The slider's update callback (settings.reweight_scale) calls
:func:`slider_changed`; a timer calls :func:`tick` (headless Blender runs no timers: tests call the
session's ``tick`` with their own clock).
"""

from __future__ import annotations

import time
from typing import Any

import bpy

from . import jobs, metadata, ui_state
from .live_preview import ReweightPreview

PREVIEW_KEY = metadata.PREVIEW_KEY
SESSION: ReweightPreview | None = None


class BlenderPreviewStore:
    """Preview Actions of one armature (looked up by name: the object may be renamed or deleted meanwhile).

    The names of the source and the shown preview are kept too: an undo frees the Actions Python holds
    (their references raise ReferenceError), so the session finds them again by name (:func:`_refresh_on_undo`).
    """

    def __init__(self, obj_name: str, source_name: str = "") -> None:
        self.obj_name = obj_name
        self.source_name = source_name
        self.preview_name = ""

    def mark(self, action: bpy.types.Action) -> None:
        action[PREVIEW_KEY] = True
        action.use_fake_user = False  # an orphaned preview is not saved with the file
        self.preview_name = action.name

    def discard(self, action: bpy.types.Action) -> None:
        if not is_preview(action):
            raise ValueError(f"Refusing to delete the action '{action.name}': it is not a SALAD preview.")
        if action.name == self.preview_name:
            self.preview_name = ""
        bpy.data.actions.remove(action)

    def keep(self, action: bpy.types.Action) -> bpy.types.Action:
        if PREVIEW_KEY in action.keys():
            del action[PREVIEW_KEY]
        action.use_fake_user = True  # as every SALAD edit result
        self.preview_name = ""
        return action

    def restore(self, source: bpy.types.Action) -> None:
        """The source back in place of a preview; an action the user chose since (not a preview) stays."""
        source = bpy.data.actions.get(self.source_name) if self.source_name else source
        obj = bpy.data.objects.get(self.obj_name)
        if obj is None or obj.animation_data is None or source is None:
            return
        playing = obj.animation_data.action
        if playing is None or is_preview(playing):
            obj.animation_data.action = source


def is_preview(action: Any) -> bool:
    """Only an Action whose mark reads as yes (a hand-edited ``"no"`` does not) may be deleted as a preview."""
    return action is not None and metadata.read_flag(action.get(PREVIEW_KEY, False)) is True


def start_session(config: jobs.WorkerConfig, obj: bpy.types.Object) -> ReweightPreview:
    """A preview session on the SALAD action ``obj`` plays (a preview it plays counts as its source's)."""
    global SESSION
    act = metadata.active_salad_action(obj)
    if SESSION is not None and SESSION.preview is not None and act is SESSION.preview:
        return SESSION
    if act is None:
        raise jobs.JobError("Select an armature that plays a SALAD action (generate a motion first).")
    # A preview playing without its session (the file was saved with it and opened again): preview from its
    # source, and let the next preview replace it; else the slider re-weighted the preview itself. Found
    # before the old session is discarded: that puts its source back in place of any preview the rig plays,
    # after which the stale preview's source could no longer be read from the rig (it became the source).
    stale = act if is_preview(act) else None
    act = (edit_source(obj) if stale is not None else None) or act
    if act is stale:
        stale = None  # its source is gone: the preview is all there is
    if SESSION is not None:
        SESSION.discard()
    name, source_name = obj.name, act.name

    def start(word: str, scale: float) -> jobs.MotionJob:
        target = bpy.data.objects.get(name)
        source = bpy.data.actions.get(source_name)  # by name: an undo frees the Action this session saw
        if source is None:
            raise jobs.JobError(f"The action '{source_name}' is gone (undo or deleted); nothing was changed.")
        return jobs.start_edit(config, target, word=word, scale=scale, action=source, scene_range="keep")

    SESSION = ReweightPreview(act, start, BlenderPreviewStore(name, source_name))
    if stale is not None:
        SESSION.preview, SESSION.store.preview_name = stale, stale.name
    return SESSION


def edit_source(obj: Any) -> Any:
    """The Action a normal edit (Re-weight, Mirror, Edit with New Prompt) of ``obj`` starts from while a
    preview plays: the preview's source, never the preview. None: the action ``obj`` plays (no preview
    plays, or the source is gone — then the preview is all there is)."""
    act = metadata.active_salad_action(obj)
    if not is_preview(act):
        return None
    if SESSION is not None and SESSION.preview == act and _alive(SESSION.source):
        return SESSION.source
    parent = bpy.data.actions.get(str(act.get("salad_parent", "")))  # a preview whose session is gone
    return parent if metadata.is_salad_action(parent) and not is_preview(parent) else None


def left_preview(context: bpy.types.Context) -> Any:
    """The preview the active rig plays without a session (its file was saved with it and opened again) whose
    source is still there, else None: Apply / Discard take it up (unkept, it has no fake user and was lost
    once another Action played and the file was saved)."""
    obj = _rig(context)
    act = metadata.active_salad_action(obj)
    if not is_preview(act) or (SESSION is not None and SESSION.preview == act):
        return None
    return act if edit_source(obj) is not None else None


def _session_for_operator(context: bpy.types.Context) -> ReweightPreview:
    """The running session, or one adopting :func:`left_preview` (the operators' poll allowed it)."""
    from . import preferences

    if left_preview(context) is not None:
        return start_session(preferences.worker_config(context), _rig(context))
    return SESSION


def end_session_for(obj: Any) -> None:
    """A normal edit of ``obj`` has started: its preview session ends (the waiting or running request is
    dropped, so no later preview lands over the edit's result; the preview Action is deleted and the source
    plays again if the preview was playing). Another armature's session stays."""
    global SESSION
    if SESSION is None or obj is None or SESSION.store.obj_name != obj.name:
        return
    ad = obj.animation_data
    playing_preview = ad is not None and SESSION.preview is not None and ad.action == SESSION.preview
    SESSION.discard(restore=playing_preview and _alive(SESSION.source))
    SESSION = None


def _alive(action: Any) -> bool:
    """Not deleted meanwhile (a removed ID raises ReferenceError on any access)."""
    try:
        return action is not None and action.name in bpy.data.actions
    except ReferenceError:
        return False


def _rig(context: bpy.types.Context) -> Any:
    """The armature the user means (as settings.active_rig; not imported: settings calls this module)."""
    return ui_state.armature_of(getattr(context, "active_object", None))


def preview_blocker(context: bpy.types.Context) -> str:
    """Why moving the slider does not preview ("" = it does)."""
    if not context.scene.salad.fast:
        return "Live preview needs Fast on"
    why = ui_state.edit_blocker(_rig(context))
    if why:
        return why
    act = metadata.active_salad_action(_rig(context))
    if metadata.action_meta(act).get("salad_guided_steps") is None and not is_preview(act):
        return "Live preview works on motions generated with Fast on"
    return ""


def slider_changed(context: bpy.types.Context) -> None:
    """The re-weight slider moved: schedule a preview (debounced) when fast mode allows it."""
    from . import preferences

    if preview_blocker(context):
        return
    s = context.scene.salad
    obj = _rig(context)
    try:
        session = start_session(preferences.worker_config(context), obj)
    except jobs.JobError:
        return
    prompt = metadata.current_prompt(metadata.action_meta(session.source))
    word = ui_state.resolve_word(s.reweight_word, prompt)
    session.changed(word, s.reweight_scale, time.monotonic())
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=session.debounce)


def tick() -> float | None:
    """The timer: one step of the session (None stops the timer)."""
    from .runner import _window_context, redraw

    if SESSION is None:
        return None
    with _window_context():
        delay = SESSION.tick(time.monotonic())
    redraw()
    return delay


class SALAD_OT_preview_apply(bpy.types.Operator):
    """Keep the previewed re-weight as a new Action"""

    bl_idname = "salad.preview_apply"
    bl_label = "Apply Preview"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return (SESSION is not None and SESSION.preview is not None) or left_preview(context) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        global SESSION
        kept = _session_for_operator(context).apply()
        SESSION = None
        self.report({"INFO"}, f"SALAD: kept '{kept.name}'")
        return {"FINISHED"}


class SALAD_OT_preview_discard(bpy.types.Operator):
    """Drop the preview; the original Action plays again"""

    bl_idname = "salad.preview_discard"
    bl_label = "Discard Preview"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return (SESSION is not None and SESSION.active) or left_preview(context) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        global SESSION
        _session_for_operator(context).discard()
        SESSION = None
        return {"FINISHED"}


CLASSES = (SALAD_OT_preview_apply, SALAD_OT_preview_discard)


@bpy.app.handlers.persistent
def _drop_on_load(*_args) -> None:  # noqa: ANN002
    """Another file is opened: its Actions are not this session's (the running request is cancelled)."""
    global SESSION
    if SESSION is not None and SESSION.job is not None:
        SESSION.job.cancel()
    SESSION = None


@bpy.app.handlers.persistent
def _refresh_on_undo(*_args) -> None:  # noqa: ANN002
    """Undo / redo: the Actions the session held are freed; find them again by name (or end the session).

    Without this, Apply Preview after Ctrl+Z showed a ReferenceError traceback and the next slider move failed
    in its update callback, leaving live preview dead until the add-on was reloaded.
    """
    global SESSION
    if SESSION is None or not isinstance(SESSION.store, BlenderPreviewStore):
        return
    store = SESSION.store
    source = bpy.data.actions.get(store.source_name)
    if source is None:  # the generation itself was undone: nothing to preview from
        if SESSION.job is not None:
            SESSION.job.cancel()
        SESSION = None
        return
    preview = bpy.data.actions.get(store.preview_name) if store.preview_name else None
    SESSION.source = source
    if not is_preview(preview):
        preview, store.preview_name, SESSION.shown = None, "", None
    SESSION.preview = preview


UNDO_HANDLERS = ("undo_post", "redo_post")


def register() -> None:
    bpy.app.handlers.load_pre.append(_drop_on_load)
    for h in UNDO_HANDLERS:
        getattr(bpy.app.handlers, h).append(_refresh_on_undo)


def unregister() -> None:
    global SESSION
    if _drop_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_drop_on_load)
    for h in UNDO_HANDLERS:
        if _refresh_on_undo in getattr(bpy.app.handlers, h):
            getattr(bpy.app.handlers, h).remove(_refresh_on_undo)
    if SESSION is not None and SESSION.job is not None:
        SESSION.job.cancel()
    SESSION = None
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
