"""The Blender side of the live re-weight preview, without a worker (headless bpy, hand-made Actions): what the
store marks, keeps, deletes and puts back, which Action an edit starts from while a preview plays, and what
ending a session, undo and opening another file do to it. test_live_preview_blender.py runs the same paths
with the tiny model's worker (minutes); these pin each decision in a second."""

import sys
from types import SimpleNamespace

import pytest
from needs import require_module

bpy = require_module("bpy")

from test_audit5 import salad_rig  # noqa: E402, F401 - the fixture

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import armature, jobs, metadata, preview_actions  # noqa: E402
from salad_blender.live_preview import ReweightPreview  # noqa: E402

KEY = metadata.PREVIEW_KEY


@pytest.fixture
def rig(salad_rig):  # noqa: F811 - the imported fixture
    """test_audit5's armature "Body" playing a SALAD action; no session is left behind."""
    yield salad_rig
    preview_actions.SESSION = None


def _salad_copy(act, name, preview=False, parent=None):
    """Another SALAD Action (a copy carries the metadata), optionally marked as a preview of ``parent``."""
    new = act.copy()
    new.name = name
    for k in (KEY, "salad_parent"):
        if k in new.keys():
            del new[k]
    if preview:
        new[KEY] = True
    if parent is not None:
        new["salad_parent"] = parent
    return new


class _Job:
    def __init__(self):
        self.cancelled = 0

    def cancel(self):
        self.cancelled += 1


def _session(obj, source, preview=None, job=None):
    store = preview_actions.BlenderPreviewStore(obj.name, source.name)
    s = ReweightPreview(source, lambda w, sc: None, store)
    s.preview, s.job, s.shown = preview, job, ("walks", 2.0) if preview is not None else None
    if preview is not None:
        store.preview_name = preview.name
    return s


# -- the store ----------------------------------------------------------------------------------------


def test_mark_keep_and_discard(rig):
    obj, act = rig
    store = preview_actions.BlenderPreviewStore(obj.name, act.name)
    assert (store.obj_name, store.source_name, store.preview_name) == ("Body", act.name, "")
    p = _salad_copy(act, "P1")
    p.use_fake_user = True
    store.mark(p)
    assert p[KEY] is True or p[KEY] == 1
    assert preview_actions.is_preview(p) and not p.use_fake_user and store.preview_name == "P1"
    kept = store.keep(p)
    assert kept is p and KEY not in p.keys() and p.use_fake_user and store.preview_name == ""
    assert not preview_actions.is_preview(p)
    store.keep(p)  # keeping an unmarked Action again is harmless
    with pytest.raises(ValueError) as e:
        store.discard(p)
    assert str(e.value) == "Refusing to delete the action 'P1': it is not a SALAD preview."
    assert "P1" in bpy.data.actions
    q, r = _salad_copy(act, "P2"), _salad_copy(act, "P3", preview=True)
    store.mark(q)
    store.discard(r)  # another preview: deleted, the shown one's name stays
    assert "P3" not in bpy.data.actions and store.preview_name == "P2"
    store.discard(q)
    assert "P2" not in bpy.data.actions and store.preview_name == ""
    assert not preview_actions.is_preview(None)


def test_restore_puts_the_source_back_only_over_a_preview_or_nothing(rig):
    obj, act = rig
    p, user = _salad_copy(act, "P", preview=True), _salad_copy(act, "Mine")
    store = preview_actions.BlenderPreviewStore(obj.name, act.name)
    obj.animation_data.action = p
    store.restore(None)  # found by its name, not the reference passed
    assert obj.animation_data.action == act
    obj.animation_data.action = None
    store.restore(user)
    assert obj.animation_data.action == act
    obj.animation_data.action = user  # the user chose another action since: it stays
    store.restore(act)
    assert obj.animation_data.action == user
    nameless = preview_actions.BlenderPreviewStore(obj.name)  # no name kept: the reference passed
    obj.animation_data.action = p
    nameless.restore(user)
    assert obj.animation_data.action == user
    gone = preview_actions.BlenderPreviewStore(obj.name, "no such action")
    obj.animation_data.action = p
    gone.restore(act)
    assert obj.animation_data.action == p
    preview_actions.BlenderPreviewStore("no such object", act.name).restore(act)  # no error
    obj.animation_data_clear()
    store.restore(act)
    assert obj.animation_data is None  # not created


# -- which Action an edit starts from ---------------------------------------------------------------


def test_edit_source_is_the_previews_source_never_the_preview(rig):
    obj, act = rig
    assert preview_actions.edit_source(obj) is None  # no preview plays
    p = _salad_copy(act, "P", preview=True, parent=act.name)
    obj.animation_data.action = p
    assert preview_actions.edit_source(obj) == act  # no session: its recorded parent
    other = _salad_copy(act, "Other")
    preview_actions.SESSION = _session(obj, other, preview=p)
    assert preview_actions.edit_source(obj) == other  # the session's source wins
    bpy.data.actions.remove(other)
    assert preview_actions.edit_source(obj) == act  # … unless it is gone
    preview_actions.SESSION = _session(obj, act, preview=_salad_copy(act, "Q", preview=True))
    p["salad_parent"] = "Q"  # the parent is itself a preview
    assert preview_actions.edit_source(obj) is None
    p["salad_parent"] = "nothing"
    assert preview_actions.edit_source(obj) is None
    plain = bpy.data.actions.new("Plain")  # not a SALAD action
    p["salad_parent"] = "Plain"
    assert preview_actions.edit_source(obj) is None
    del p["salad_parent"]
    assert preview_actions.edit_source(obj) is None
    assert plain.name == "Plain"


def test_left_preview_is_a_sessionless_preview_with_a_source(rig):
    obj, act = rig
    ctx = SimpleNamespace(active_object=obj)
    assert preview_actions.left_preview(ctx) is None
    p = _salad_copy(act, "P", preview=True, parent=act.name)
    obj.animation_data.action = p
    assert preview_actions.left_preview(ctx) == p
    preview_actions.SESSION = _session(obj, act, preview=p)
    assert preview_actions.left_preview(ctx) is None  # its session runs
    preview_actions.SESSION = _session(obj, act, preview=_salad_copy(act, "Q", preview=True))
    assert preview_actions.left_preview(ctx) == p  # another preview's session
    p["salad_parent"] = "gone"
    assert preview_actions.left_preview(ctx) is None  # no source: nothing to keep it as
    assert preview_actions.left_preview(SimpleNamespace()) is None


# -- sessions -----------------------------------------------------------------------------------------


def _config():
    return jobs.WorkerConfig(python=sys.executable, model="demo", device="cpu", threads=1)


def test_start_session_on_the_played_action_and_refusal(rig):
    obj, act = rig
    s = preview_actions.start_session(_config(), obj)
    assert preview_actions.SESSION is s and s.source == act and s.preview is None
    assert (s.store.obj_name, s.store.source_name) == ("Body", act.name)
    p = _salad_copy(act, "P", preview=True, parent=act.name)
    s.preview = p
    obj.animation_data.action = p
    assert preview_actions.start_session(_config(), obj) is s  # its own preview plays: the same session
    obj.animation_data.action = None
    with pytest.raises(jobs.JobError) as e:
        preview_actions.start_session(_config(), obj)
    assert str(e.value) == "Select an armature that plays a SALAD action (generate a motion first)."


def test_a_new_session_discards_the_old_one_and_adopts_a_left_preview(rig):
    obj, act = rig
    old_preview = _salad_copy(act, "Old", preview=True)
    job = _Job()
    preview_actions.SESSION = old = _session(obj, act, preview=old_preview, job=job)
    stale = _salad_copy(act, "Stale", preview=True, parent=act.name)
    obj.animation_data.action = stale
    s = preview_actions.start_session(_config(), obj)
    assert s is not old and job.cancelled == 1 and "Old" not in bpy.data.actions
    assert s.source == act and s.store.source_name == act.name  # previewed from its source
    assert s.preview == stale and s.store.preview_name == "Stale"  # the next preview replaces it
    # a preview whose source is gone is all there is: it is the source, and nothing replaces it
    preview_actions.SESSION = None
    orphan = _salad_copy(act, "Orphan", preview=True, parent="gone")
    obj.animation_data.action = orphan
    s = preview_actions.start_session(_config(), obj)
    assert s.source == orphan and s.preview is None and s.store.preview_name == ""


def test_ending_a_session_for_a_normal_edit(rig):
    obj, act = rig
    other = armature.create_smpl22_armature("Other", synthetic_walk(20), with_mesh=False)
    p = _salad_copy(act, "P", preview=True)
    preview_actions.SESSION = s = _session(obj, act, preview=p, job=_Job())
    for not_it in (None, other):
        preview_actions.end_session_for(not_it)
        assert preview_actions.SESSION is s
    obj.animation_data.action = p
    preview_actions.end_session_for(obj)  # the preview played: the source plays again
    assert preview_actions.SESSION is None and obj.animation_data.action == act and "P" not in bpy.data.actions
    assert s.job is None
    p2, mine = _salad_copy(act, "P2", preview=True), _salad_copy(act, "Mine")
    preview_actions.SESSION = _session(obj, act, preview=p2)
    obj.animation_data.action = mine  # the user plays another action: it stays
    preview_actions.end_session_for(obj)
    assert preview_actions.SESSION is None and obj.animation_data.action == mine and "P2" not in bpy.data.actions
    p3 = _salad_copy(act, "P3", preview=True)
    src = _salad_copy(act, "Src")
    preview_actions.SESSION = _session(obj, src, preview=p3)
    obj.animation_data.action = p3
    bpy.data.actions.remove(src)  # its source was deleted: nothing to put back
    preview_actions.end_session_for(obj)
    assert preview_actions.SESSION is None and obj.animation_data.action is None
    preview_actions.end_session_for(obj)  # no session: nothing happens


def test_alive_is_false_for_none_removed_and_freed_actions(rig):
    _, act = rig
    assert preview_actions._alive(act)
    assert not preview_actions._alive(None)
    gone = _salad_copy(act, "Gone")
    bpy.data.actions.remove(gone)
    assert not preview_actions._alive(gone)  # a freed ID raises ReferenceError on access


# -- undo and opening another file ----------------------------------------------------------------------


def test_undo_finds_the_actions_again_by_name_or_ends_the_session(rig):
    obj, act = rig
    p = _salad_copy(act, "P", preview=True)
    preview_actions.SESSION = s = _session(obj, act, preview=p)
    s.source, s.preview = None, None  # what an undo leaves: the references are stale
    preview_actions._refresh_on_undo()
    assert preview_actions.SESSION is s and s.source == act and s.preview == p and s.shown == ("walks", 2.0)
    del p[KEY]  # the undo step has it without its mark: no longer deletable
    preview_actions._refresh_on_undo()
    assert s.preview is None and s.store.preview_name == "" and s.shown is None and s.source == act
    s.store.preview_name = ""
    preview_actions._refresh_on_undo()
    assert s.preview is None
    job = _Job()
    s.job = job
    s.store.source_name = "undone"  # the generation itself was undone
    preview_actions._refresh_on_undo()
    assert preview_actions.SESSION is None and job.cancelled == 1
    preview_actions._refresh_on_undo()  # no session: nothing happens
    odd = ReweightPreview(act, lambda w, sc: None, SimpleNamespace(source_name="undone"))
    preview_actions.SESSION = odd  # another store (the tests' fakes): left alone
    preview_actions._refresh_on_undo()
    assert preview_actions.SESSION is odd


def test_opening_a_file_cancels_the_request_and_drops_the_session(rig):
    obj, act = rig
    job = _Job()
    preview_actions.SESSION = _session(obj, act, job=job)
    preview_actions._drop_on_load()
    assert preview_actions.SESSION is None and job.cancelled == 1
    preview_actions.SESSION = _session(obj, act)
    preview_actions._drop_on_load()
    assert preview_actions.SESSION is None
    preview_actions._drop_on_load()


def test_a_sessions_request_edits_its_source_by_name(rig, monkeypatch):
    """What the session's start function asks of jobs.start_edit: a re-weight of the source (found by name:
    an undo frees the Action it saw), keeping the scene range; a deleted source is a clear error."""
    obj, act = rig
    calls = []
    monkeypatch.setattr(jobs, "start_edit", lambda *a, **kw: calls.append((a, kw)) or "job")
    config = _config()
    s = preview_actions.start_session(config, obj)
    assert s.start("walks", 2.0) == "job"
    ((args, kw),) = calls
    assert args[0] is config and args[1] == obj
    assert kw == {"word": "walks", "scale": 2.0, "action": act, "scene_range": "keep"}
    name = act.name
    bpy.data.actions.remove(act)
    with pytest.raises(jobs.JobError) as e:
        s.start("walks", 2.0)
    assert str(e.value) == f"The action '{name}' is gone (undo or deleted); nothing was changed."


def test_ending_a_session_whose_preview_does_not_play_assigns_nothing(rig):
    """Only a playing preview is replaced by the source: a rig playing nothing keeps playing nothing, and a rig
    without animation data is no error."""
    obj, act = rig
    preview_actions.SESSION = _session(obj, act, preview=_salad_copy(act, "P", preview=True))
    obj.animation_data.action = None
    preview_actions.end_session_for(obj)
    assert preview_actions.SESSION is None and obj.animation_data.action is None and "P" not in bpy.data.actions
    preview_actions.SESSION = _session(obj, act)  # no preview yet
    preview_actions.end_session_for(obj)
    assert preview_actions.SESSION is None and obj.animation_data.action is None
    preview_actions.SESSION = _session(obj, act, preview=_salad_copy(act, "P2", preview=True))
    obj.animation_data_clear()
    preview_actions.end_session_for(obj)
    assert preview_actions.SESSION is None and obj.animation_data is None and "P2" not in bpy.data.actions
