"""Cancelling the running SALAD job: Esc (ui5: a Window key map item of the add-on key configuration) and the menu."""

from needs import require_module

bpy = require_module("bpy")

from blender_state import snapshot  # noqa: E402
from test_operators import addon  # noqa: E402, F401 - the fixture

from salad_blender import runner  # noqa: E402


def esc_items():
    km = bpy.context.window_manager.keyconfigs.addon.keymaps.get("Window")
    return [] if km is None else [i for i in km.keymap_items if i.type == "ESC" and i.value == "PRESS"]


def test_esc_cancels_a_running_generation_and_leaves_the_scene(addon, monkeypatch):  # noqa: F811 - the fixture
    """Before: Esc did nothing while the model sampled (only the × buttons cancelled), unlike Blender's renders and
    bakes. The key map item calls salad.cancel_running, whose poll lets Esc through when nothing runs."""
    from salad_blender import keymaps

    monkeypatch.setattr(keymaps, "_playback", {"last": float("-inf"), "interval": 0.0})  # no playback just before
    assert [i.idname for i in esc_items()] == ["salad.cancel_running"]
    assert not bpy.ops.salad.cancel_running.poll()  # nothing runs: Esc goes on to Blender's own uses
    before = snapshot()
    assert bpy.ops.salad.generate() == {"FINISHED"}  # in the background (headless Blender runs no timers)
    job = runner.RUNNER.motion
    assert job is not None and not job.finished
    assert bpy.ops.salad.cancel_running.poll()
    assert bpy.ops.salad.cancel_running() == {"FINISHED"}
    assert job.finished and job.state == "cancelled"
    assert snapshot() == before
    assert not bpy.ops.salad.cancel_running.poll()


def test_esc_that_stops_playback_keeps_the_job(addon, monkeypatch):  # noqa: F811 - the fixture
    """Blender's Esc stops playback and passes the key on: one Esc while watching the last result stopped the
    animation and threw the running generation away (seen in Blender 4.3.2). Soon after a frame playback showed,
    Esc only stops playback; the next one cancels. A frame set while nothing plays (scrubbing) does not count."""
    from salad_blender import keymaps

    now, playing = [100.0], [False]
    monkeypatch.setattr(keymaps, "clock", lambda: now[0])
    monkeypatch.setattr(keymaps, "animation_playing", lambda: playing[0])  # headless Blender has no screen
    monkeypatch.setattr(keymaps, "_playback", {"last": float("-inf"), "interval": 0.0})
    assert bpy.ops.salad.generate() == {"FINISHED"}
    job = runner.RUNNER.motion
    bpy.context.scene.frame_set(3)  # scrubbing
    assert bpy.ops.salad.cancel_running.poll()
    playing[0] = True
    assert not bpy.ops.salad.cancel_running.poll()  # while it plays Esc is Blender's
    for frame in (4, 5, 6):  # a heavy scene playing at 2.5 fps
        now[0] += 0.4
        bpy.context.scene.frame_set(frame)
    playing[0] = False  # Blender's Esc stopped it
    now[0] += 0.7
    assert not bpy.ops.salad.cancel_running.poll() and not job.finished
    now[0] += 1.0  # the next Esc
    assert bpy.ops.salad.cancel_running.poll()
    assert bpy.ops.salad.cancel_running() == {"FINISHED"} and job.state == "cancelled"


def test_the_esc_item_goes_with_the_add_on(addon):  # noqa: F811 - the fixture
    import addon_utils

    from salad_blender import keymaps

    addon_utils.disable("salad_blender", default_set=True)
    try:
        assert esc_items() == []
        assert keymaps._frame_changed not in bpy.app.handlers.frame_change_post
    finally:
        addon_utils.enable("salad_blender", default_set=True)
    assert len(esc_items()) == 1  # enabled again: one item, not two
    assert bpy.app.handlers.frame_change_post[:].count(keymaps._frame_changed) == 1


def test_cancel_from_the_menu_cancels_the_job_that_runs(addon):  # noqa: F811 - the fixture
    """Object ▸ Animation ▸ SALAD ▸ Cancel (and F3) name no job: it was enabled while Check Worker ran but cancelled
    only a generation, so the click did nothing and said nothing."""
    assert bpy.ops.salad.check_worker() == {"FINISHED"}  # in the background
    job = runner.RUNNER.check
    assert not job.finished and not runner.RUNNER.busy("motion")
    assert bpy.ops.salad.cancel.poll()
    assert bpy.ops.salad.cancel() == {"FINISHED"}
    assert job.finished and job.state == "cancelled"
