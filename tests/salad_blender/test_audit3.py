"""Add-on bugs found by the session-7 audit (third pass), each pinned by a test that failed before its fix.

Runs in-process with the bpy wheel and the tiny model's worker.
"""

import pytest
from needs import require_module

bpy = require_module("bpy")

from test_live_preview_blender import config, drive, fast_rig  # noqa: E402, F401 - fixtures

from salad_blender import metadata, preview_actions  # noqa: E402
from salad_blender.live_preview import DEBOUNCE  # noqa: E402

# ------------------------------------------------------------------------ 1. live preview and undo


def _preview(cfg, arm, scale: float):  # noqa: ANN001, ANN202
    session = preview_actions.start_session(cfg, arm)
    session.changed("walks", scale, now=0.0)
    drive(session, DEBOUNCE)
    assert session.preview is not None
    return session


def test_undo_that_removes_the_preview_leaves_a_working_session(config, fast_rig):  # noqa: F811 - the fixtures
    """Ctrl+Z frees the Actions Python holds. Before: Apply Preview raised ReferenceError (a traceback for the
    user), the next slider move failed in its update callback, and the bpy module crashed at exit
    ("MEM_freeN on a pointer created with MEM_new")."""
    arm, source = fast_rig
    source_name = source.name
    bpy.ops.ed.undo_push(message="SALAD Generate")  # what the runner pushes after a result
    bpy.ops.ed.undo_push(message="Select")  # anything the user did next
    _preview(config, arm, 2.0)  # a preview is made without an undo step
    assert bpy.ops.ed.undo() == {"FINISHED"}
    assert [a.name for a in bpy.data.actions] == [source_name]  # the undo removed the preview
    session = preview_actions.SESSION
    assert session is not None and session.preview is None and session.source.name == source_name
    assert not bpy.ops.salad.preview_apply.poll()  # nothing to apply: greyed out, no traceback
    arm = bpy.data.objects["SALAD Body"]
    session.changed("walks", 0.5, now=0.0)  # the slider again: a new preview from the same source
    drive(session, DEBOUNCE)
    assert session.preview is not None and arm.animation_data.action == session.preview
    assert session.preview["salad_parent"] == source_name


def test_a_preview_kept_by_the_undo_step_can_still_be_applied(config, fast_rig):  # noqa: F811 - the fixtures
    """An undo to a step that holds the preview: the session finds it again by name and Apply keeps it."""
    arm, source = fast_rig
    session = _preview(config, arm, 2.0)
    name = session.preview.name
    bpy.ops.ed.undo_push(message="Select")  # the preview is in this step
    bpy.ops.ed.undo_push(message="Move")
    assert bpy.ops.ed.undo() == {"FINISHED"}
    assert preview_actions.SESSION is session and session.preview.name == name
    assert bpy.ops.salad.preview_apply() == {"FINISHED"}
    kept = bpy.data.actions[name]
    assert not preview_actions.is_preview(kept) and kept.use_fake_user



# ------------------------------------------------------------------------ 2. names of continued continuations


def test_each_level_of_a_continued_continuation_has_its_own_name(addon):  # noqa: F811 - the fixture
    """Continue, then Continue the result, and again. Before: the second and third levels were both
    'a person walks + a person si... + a person sits down', told apart only by Blender's '.001'."""
    from benchmarks.bench_retarget import synthetic_walk
    from salad_blender import actions, armature

    obj = armature.create_smpl22_armature("Mocap", synthetic_walk(60), with_mesh=False)
    actions.apply_motion(obj, synthetic_walk(60), prompt="a person walks", bone_map="smpl22", start_frame=1)
    bpy.context.view_layer.objects.active = obj
    s = bpy.context.scene.salad_shot
    s.continue_prompt, s.continue_seconds = "a person sits down", 2.0
    names = []
    for _ in range(3):  # each continues the action the previous one made (it is what the armature plays)
        assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
        names.append(obj.animation_data.action.name)
    assert names == ["SALAD: a person walks + a person sits down",
                     "SALAD: a person walks (+1) + a person sits down",
                     "SALAD: a person walks (+2) + a person sits down"]
    # a plain action whose own name holds " + " is not taken for a chain; short chains stay spelt out
    assert metadata.continued_name("Hip + Hop", "a person bows " * 4) == metadata.derived_name(
        ["Hip + Hop", " + ", "a person bows " * 4], [(0, metadata.MIN_SOURCE_BYTES), (2, 0)])
    assert metadata.continued_name("walk + sit", "stand", chained=True) == "walk + sit + stand"


# ------------------------------------------------------------------------ 3. hand-edited salad_* properties

BROKEN = [("salad_seed", "abc"), ("salad_edits", "[{bad"), ("salad_edits", '{"a": 1}'), ("salad_frames", "x"),
          ("salad_rig", "{oops"), ("salad_shot", "nope"), ("salad_guidance", "high"), ("salad_cyclic", "many")]


@pytest.mark.parametrize("key,value", BROKEN, ids=[f"{k}={v}" for k, v in BROKEN])
def test_a_broken_custom_property_is_named_not_a_traceback(addon, key, value):  # noqa: F811 - the fixture
    """The salad_* keys are editable custom properties. Before: one unreadable value (a seed typed as text,
    JSON cut short) raised ValueError inside the panels' draw (SALAD Actions broke for every rig in the file,
    the Edit and Shot panels drew half) and the edit operators showed a Python traceback."""
    from types import SimpleNamespace

    from test_shot_operators import ListLayout

    from benchmarks.bench_retarget import synthetic_walk
    from salad_blender import actions, armature, ui_state

    obj = armature.create_smpl22_armature("Body", synthetic_walk(60), with_mesh=False)
    act = actions.apply_motion(obj, synthetic_walk(60), prompt="a person walks", bone_map="smpl22", start_frame=1,
                               seed=3, steps=10, guidance=2.5)
    bpy.context.view_layer.objects.active = obj
    act[key] = value
    for panel in [c for c in bpy.types.Panel.__subclasses__() if c.__name__.startswith("SALAD_PT")]:
        if "poll" in dir(panel) and not panel.poll(bpy.context):
            continue
        panel.draw(SimpleNamespace(layout=ListLayout([]), bl_idname=panel.__name__), bpy.context)  # must not raise
    why = ui_state.edit_blocker(obj)
    assert key in why and act.name in why  # the Edit panel's reason (greyed-out buttons)
    assert ui_state.action_row(act) == (act.name, "broken custom property: see Edit Motion")
    with pytest.raises(RuntimeError) as exc:
        bpy.ops.salad.mirror(blocking=True)
    assert key in str(exc.value) and "Traceback" not in str(exc.value)


# ------------------------------------------------------------------------ 4. Preferences text in its own window

PREFS_REGION = 521  # px: the main region of the Preferences window Blender 4.3 opens (687 px wide, measured)


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_preferences_messages_fit_the_window_preferences_opens_in(scene, device, monkeypatch):
    """Before: a fixed width of 110 characters; Blender cut the offline hint in the middle ("Online access is off:
    enable it in Prefere… download torch", seen in Blender 4.3) and the CUDA note; the set-up button shared a row
    with two others and read "Set Up Model Environ…"."""
    from types import SimpleNamespace

    from fake_ui import FakeLayout

    import salad_blender
    from salad_blender import preferences, ui_state

    assert not bpy.app.online_access  # the bpy module runs offline: the hint is drawn
    monkeypatch.setattr(preferences, "default_python", lambda: "")  # no environment yet: the set-up hint shows
    salad_blender.register()
    try:
        prefs = SimpleNamespace(python_path="", model_source="OFFICIAL", model_folder="", device=device, threads=0,
                                package_spec="salad", torch_index="cpu", show_advanced=False, official_dataset="t2m")
        prefs.bl_rna = preferences.SALAD_AddonPreferences.bl_rna
        calls: list = []
        prefs.layout = FakeLayout(calls)
        context = SimpleNamespace(region=SimpleNamespace(width=PREFS_REGION), preferences=bpy.context.preferences)
        preferences.SALAD_AddonPreferences.draw(prefs, context)
    finally:
        salad_blender.unregister()
    fits = ui_state.chars_for_width(PREFS_REGION - 40)
    labels = [c[1] for c in calls if c[0] == "label" and not c[1].startswith(("Folder: ", "Using: ", "Ready: "))]
    assert any(t.startswith("Online access is off: enable it in Preferences > System > Network to") for t in labels)
    assert all(len(t) <= fits for t in labels), [t for t in labels if len(t) > fits]
    assert ("op", "salad.setup_env") in calls


# ------------------------------------------------------------------------ 5. NLA tweak mode, refused at the click


def test_generate_onto_an_armature_in_nla_tweak_mode_is_refused_before_the_worker_runs(scene):
    """Before: check_rig let it through, the worker generated the whole clip, and only the apply step said
    "'Body' is in NLA tweak mode; leave it before generating"."""
    from benchmarks.bench_retarget import synthetic_walk
    from salad_blender import actions, armature, jobs

    obj = armature.create_smpl22_armature("Body", synthetic_walk(60), with_mesh=False)
    mine = actions.apply_motion(obj, synthetic_walk(60), prompt="mine", bone_map="smpl22", start_frame=1)
    ad = obj.animation_data
    ad.nla_tracks.new().strips.new("mine", 1, mine)
    ad.action = None
    ad.use_tweak_mode = True

    class NoWorker:
        def get(self, cfg):  # noqa: ANN001, ANN202
            raise AssertionError("a worker was asked for")

    cfg = jobs.WorkerConfig(python="python")
    with pytest.raises(jobs.JobError, match="NLA tweak mode; leave it first"):
        jobs.start_generate(cfg, "a person walks", jobs.Sampling(seconds=2),
                            jobs.Target(kind="armature", armature=obj.name), pool=NoWorker())
