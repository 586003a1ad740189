"""The live re-weight preview in Blender with the tiny model's worker (headless: the test drives the session's
clock, timers do not fire): the slider schedules, previews replace each other, the user's Action stays,
Apply keeps the shown preview as a new Action, Discard brings the source back."""

import os
import subprocess
import sys
import time

import pytest
from needs import require_module

bpy = require_module("bpy")

from salad_blender import actions, jobs, preview_actions, settings  # noqa: E402
from salad_blender.live_preview import DEBOUNCE  # noqa: E402

HANG = 240  # seconds: fails only a stuck test


@pytest.fixture
def config(scene, tiny_model_dir):
    import addon_utils

    bpy.context.preferences.use_preferences_save = False
    addon_utils.enable("salad_blender", default_set=True)
    yield jobs.WorkerConfig(python=sys.executable, model=str(tiny_model_dir), device="cpu", threads=1)
    if preview_actions.SESSION is not None:
        preview_actions.SESSION.discard()
        preview_actions.SESSION = None
    addon_utils.disable("salad_blender", default_set=True)


@pytest.fixture
def fast_rig(config):
    s = settings.settings(bpy.context)
    s.fast, s.seconds, s.seed = True, 2.0, 4
    job = jobs.start_generate(config, "a person walks forward", settings.sampling_from(s), jobs.Target(pin_feet=False))
    assert job.wait(HANG) and job.state == "done", job.message
    arm = bpy.data.objects["SALAD Body"]
    return arm, job.output


def drive(session, t):
    """Tick with a clock of our own until the session is idle; returns the clock."""
    deadline = time.monotonic() + HANG
    while session.tick(t) is not None:
        assert time.monotonic() < deadline, f"preview stuck: {session.job and session.job.status}"
        t += 0.1
        time.sleep(0.01)
    return t


def test_previews_replace_each_other_and_apply_keeps_the_shown_one(config, fast_rig):
    arm, source = fast_rig
    source_meta = actions.read_metadata(source)
    session = preview_actions.start_session(config, arm)
    session.changed("walks", 2.0, now=0.0)
    assert session.tick(DEBOUNCE / 2) is not None and session.job is None  # debounced: nothing started yet
    t = drive(session, DEBOUNCE)
    first = session.preview
    assert first is not None and first != source and preview_actions.is_preview(first)
    assert arm.animation_data.action == first and not first.use_fake_user
    first_name = first.name
    session.changed("walks", 3.0, now=t)
    t = drive(session, t + DEBOUNCE)
    second = session.preview
    assert first_name not in bpy.data.actions  # one preview Action, replaced by the next
    assert arm.animation_data.action == second and actions.read_metadata(second)["salad_edits"][-1]["scale"] == 3.0
    assert source.name in bpy.data.actions and actions.read_metadata(source) == source_meta  # the user's, untouched
    kept = session.apply()
    assert kept == second and not preview_actions.is_preview(kept) and kept.use_fake_user
    assert arm.animation_data.action == kept and kept["salad_parent"] == source.name


def test_discard_plays_the_source_again_and_removes_the_preview(config, fast_rig):
    arm, source = fast_rig
    session = preview_actions.start_session(config, arm)
    session.changed("walks", 0.5, now=0.0)
    drive(session, DEBOUNCE)
    name = session.preview.name
    session.discard()
    assert name not in bpy.data.actions and arm.animation_data.action == source


def test_the_store_refuses_to_delete_an_action_that_is_not_a_preview(config, fast_rig):
    arm, source = fast_rig
    with pytest.raises(ValueError, match="not a SALAD preview"):
        preview_actions.BlenderPreviewStore(arm.name).discard(source)
    assert source.name in bpy.data.actions


def test_the_slider_schedules_a_preview_only_with_fast_on(config, fast_rig):
    arm, _ = fast_rig
    bpy.context.view_layer.objects.active = arm
    s = settings.settings(bpy.context)
    s.fast = False
    s.reweight_scale = 2.5
    assert preview_actions.SESSION is None
    assert preview_actions.preview_blocker(bpy.context) == "Live preview needs Fast on"
    s.fast = True
    s.reweight_scale = 1.5  # the update callback: a session with a pending request, no job yet
    session = preview_actions.SESSION
    assert session is not None and session.pending is not None and session.pending[1] == 1.5
    assert session.job is None


@pytest.fixture
def prefs(config, tiny_model_dir):
    """The add-on's preferences pointed at the tiny model (the operators read the worker from them)."""
    p = bpy.context.preferences.addons["salad_blender"].preferences
    p.python_path, p.model_source, p.model_folder, p.device, p.threads = (
        sys.executable, "FOLDER", str(tiny_model_dir), "cpu", 1)
    return p


def _preview_playing(config, arm):
    """A shown preview ("walks" ×2) on ``arm``, then the slider moved again (a request pending)."""
    bpy.context.view_layer.objects.active = arm
    session = preview_actions.start_session(config, arm)
    session.changed("walks", 2.0, now=0.0)
    drive(session, DEBOUNCE)
    assert arm.animation_data.action == session.preview
    s = settings.settings(bpy.context)
    s.reweight_word = "walks"
    s.reweight_scale = 0.5  # the slider's update callback: a new preview request waits in the session
    assert preview_actions.SESSION is session and session.pending is not None
    return session.preview.name


@pytest.mark.parametrize(("op", "edit"), [("reweight", {"mode": "reweight", "scale": 0.5}),
                                          ("mirror", {"mode": "mirror", "which": "all"})])
def test_a_normal_edit_pressed_while_a_preview_plays_edits_the_source(prefs, config, fast_rig, op, edit):
    """Re-weight / Mirror while a preview plays: a new Action made from the user's source (its parent, its edit
    chain plus this one edit), the preview session ended and its Action gone, the source untouched."""
    arm, source = fast_rig
    source_meta = actions.read_metadata(source)
    preview_name = _preview_playing(config, arm)
    assert getattr(bpy.ops.salad, op)(blocking=True) == {"FINISHED"}
    result = arm.animation_data.action
    assert result not in (source,) and result.name != preview_name
    assert result["salad_parent"] == source.name
    edits = actions.read_metadata(result)["salad_edits"]
    assert len(edits) == len(source_meta["salad_edits"]) + 1
    assert {k: edits[-1][k] for k in edit} == edit
    assert preview_actions.SESSION is None and preview_name not in bpy.data.actions
    assert actions.read_metadata(source) == source_meta and not preview_actions.is_preview(result)


def test_an_edit_of_a_preview_left_playing_without_its_session_starts_from_its_source(config, fast_rig):
    """A preview still playing after its session is gone (another file was opened and this one reopened):
    the edit starts from the preview's parent, found by name."""
    arm, source = fast_rig
    _preview_playing(config, arm)
    preview = arm.animation_data.action
    preview_actions.SESSION = None  # as _drop_on_load leaves it
    assert preview_actions.edit_source(arm) == source
    preview["salad_parent"] = "an action that is gone"
    assert preview_actions.edit_source(arm) is None  # the playing action (the preview) is what there is


def test_a_preview_reopened_with_its_file_is_previewed_from_its_source(config, fast_rig, tmp_path):
    """The file was saved while a preview played and opened again (the session is gone, the preview plays):
    moving the slider previews the source's re-weight, not a re-weight of the preview (before: 'walks' ×3
    was made from the ×2 preview, its parent the preview), and the new preview replaces the reopened one."""
    arm, source = fast_rig
    source_edits = actions.read_metadata(source)["salad_edits"]
    stale = _preview_playing(config, arm)
    arm_name, source_name = arm.name, source.name
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "saved with a preview.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "saved with a preview.blend"))
    assert preview_actions.SESSION is None  # _drop_on_load
    arm, source = bpy.data.objects[arm_name], bpy.data.actions[source_name]
    assert arm.animation_data.action.name == stale
    session = preview_actions.start_session(config, arm)
    assert session.source == source
    session.changed("walks", 3.0, now=0.0)
    drive(session, DEBOUNCE)
    result = arm.animation_data.action
    assert result == session.preview and result.name != stale and result["salad_parent"] == source.name
    edits = actions.read_metadata(result)["salad_edits"]
    assert len(edits) == len(source_edits) + 1 and edits[-1]["scale"] == 3.0
    assert stale not in bpy.data.actions  # replaced, as any earlier preview
    session.discard()
    assert arm.animation_data.action == source


@pytest.mark.parametrize("op", ["preview_apply", "preview_discard"])
def test_a_preview_reopened_with_its_file_can_be_kept_or_dropped(prefs, config, fast_rig, tmp_path, op):
    """Reopened with a preview playing, Apply / Discard were greyed out (no session): the preview, without a fake
    user, was lost once another Action played and the file was saved. Now Apply keeps it as a normal Action and
    Discard plays the source again and removes it."""
    arm, source = fast_rig
    stale = _preview_playing(config, arm)
    arm_name, source_name = arm.name, source.name
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "saved with a preview.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "saved with a preview.blend"))
    arm = bpy.data.objects[arm_name]
    bpy.context.view_layer.objects.active = arm
    assert preview_actions.SESSION is None and getattr(bpy.ops.salad, op).poll()
    assert getattr(bpy.ops.salad, op)() == {"FINISHED"}
    assert preview_actions.SESSION is None
    if op == "preview_apply":
        kept = bpy.data.actions[stale]
        assert arm.animation_data.action == kept and kept.use_fake_user and not preview_actions.is_preview(kept)
    else:
        assert arm.animation_data.action == bpy.data.actions[source_name] and stale not in bpy.data.actions
    assert not getattr(bpy.ops.salad, op).poll()


def test_file_reopen_tests_in_their_own_process():
    """The tests that save and reopen the file run in a process of their own (tests/salad_blender/conftest.py
    says why): all three must pass there."""
    env = {**os.environ, "SALAD_REOPEN_PROCESS": "1"}
    # os._exit: pytest's own exit code, without the interpreter teardown in which bpy 4.2's module crashes after a
    # file was opened with the add-on enabled (seen: SIGSEGV with all three passed; Blender itself exits otherwise)
    run = ("import os, sys, pytest; rc = pytest.main(sys.argv[1:]); sys.stdout.flush(); sys.stderr.flush(); "
           "os._exit(int(rc))")
    r = subprocess.run([sys.executable, "-c", run, "-q", "-p", "no:cacheprovider", __file__,
                        "-k", "reopened_with_its_file"], env=env, capture_output=True, text=True, timeout=3 * HANG)
    assert r.returncode == 0 and "3 passed" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]


def test_a_new_session_leaves_the_action_the_user_chose_playing(config, fast_rig):
    """A preview played, then the user picked another SALAD action for the rig (the action list, or a new
    generation) and moved the slider: the old session ends, but the rig keeps playing what the user chose
    (before: the old session's source was put back over it, and stayed there if the new request failed)."""
    arm, source = fast_rig
    _preview_playing(config, arm)
    chosen = source.copy()  # another SALAD action made with Fast on
    chosen.name = "the user's choice"
    arm.animation_data.action = chosen
    session = preview_actions.start_session(config, arm)
    assert session.source == chosen and arm.animation_data.action == chosen
    session.discard()
    assert arm.animation_data.action == chosen


def test_discard_of_a_session_whose_preview_no_longer_plays_keeps_the_playing_action(config, fast_rig):
    """Discard Preview while the rig plays an action the user picked after the preview: the preview is removed,
    the picked action stays (the source is put back only over the preview)."""
    arm, source = fast_rig
    preview_name = _preview_playing(config, arm)
    chosen = source.copy()
    arm.animation_data.action = chosen
    preview_actions.SESSION.discard()
    assert preview_name not in bpy.data.actions and arm.animation_data.action == chosen
def test_why_the_slider_does_not_preview_is_wrapped_not_cut(config, fast_rig):
    """ui5: 'Live preview works on motions generated with Fast on' was one label, cut with '…' in the default
    sidebar (about 36 characters beside an icon); it now wraps."""
    from fake_ui import FakeLayout

    from salad_blender import panels, ui_state

    arm, source = fast_rig
    bpy.context.view_layer.objects.active = arm
    del source["salad_guided_steps"]  # as if generated without Fast
    why = preview_actions.preview_blocker(bpy.context)
    assert why == "Live preview works on motions generated with Fast on"
    calls = []
    panels._draw_live_preview(FakeLayout(calls), bpy.context)
    lines = [c[1] for c in calls if c[0] == "label"]
    width = panels.text_width(bpy.context) - 4
    assert " ".join(lines) == why and all(len(line) <= width for line in lines) and len(lines) == 2
    assert ui_state.fit_lines(why, width, 3) == lines
