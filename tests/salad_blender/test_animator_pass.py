"""What surprised an animator in a real Blender 4.3 window (session 11), driven here headless:
NLA, Edit Mode, renames and deletions while a job runs, the re-roll's wording."""

import pytest
from needs import require_module

bpy = require_module("bpy")

from test_ui_conventions import Worker, addon, panel_calls, run_timer  # noqa: E402, F401 - the fixture

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, armature, panels, runner, video_jobs  # noqa: E402
from salad_blender.runner import RUNNER  # noqa: E402


def labels(panel_cls) -> str:
    return " ".join(c[1] for c in panel_calls(panel_cls) if c[0] == "label")


def test_an_armature_whose_action_was_pushed_to_the_nla_is_told_so(addon):  # noqa: F811
    """Seen in Blender 4.3: after Push Down the selected rig's Edit Motion panel said "Select an armature that
    plays an action" (it was selected) and Continue / Regenerate Parts said only that it plays no action."""
    rig = armature.create_smpl22_armature("Rig", synthetic_walk(8), with_mesh=False)
    bpy.context.view_layer.objects.active = rig
    assert "'Rig' plays no action: generate a motion first" in labels(panels.SALAD_PT_edit)
    actions.apply_motion(rig, synthetic_walk(40), prompt="a person walks", bone_map="smpl22")
    actions.push_to_nla(rig)
    assert rig.animation_data.action is None
    text = labels(panels.SALAD_PT_edit)
    assert "Select an armature" not in text
    assert "'Rig' plays no action to edit: its motion is in the NLA; pick a strip's action in the Action " \
           "Editor" in text
    sh = bpy.context.scene.salad_shot
    sh.parts, sh.continue_prompt, sh.parts_prompt = {"left_arm"}, "a person sits", "a person waves"
    for op, what in (("continue_action", "continue"), ("regenerate_parts", "regenerate")):
        assert not getattr(bpy.ops.salad, op).poll()
        with pytest.raises(RuntimeError, match=f"'Rig' plays no action to {what}: its motion is in the NLA"):
            getattr(bpy.ops.salad, op)(blocking=True)
    bpy.context.view_layer.objects.active = None
    assert "Select an armature that plays an action" in labels(panels.SALAD_PT_edit)  # nothing selected


def test_the_edit_panel_of_a_rig_in_edit_mode_says_so(addon):  # noqa: F811
    """Seen in Blender 4.3: a rig in Edit Mode (a job's result waiting for it) showed "Select an armature that
    plays an action" although it was selected and played one."""
    rig = armature.create_smpl22_armature("Rig", synthetic_walk(8), with_mesh=False)
    actions.apply_motion(rig, synthetic_walk(40), prompt="a person walks", bone_map="smpl22")
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        text = labels(panels.SALAD_PT_edit)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    assert "'Rig' is in Edit Mode" in text and "Select an armature" not in text


class RealEditWorker(Worker):
    """The ui7 scripted worker plus Edit Animation with Text (a synthetic walk back)."""

    @staticmethod
    def op_edit_real(req: dict) -> dict:
        return {"joints": synthetic_walk(40)}


@pytest.mark.parametrize("renamed", ["rig", "scene"])
@pytest.mark.parametrize("job", ["generate", "continue_action", "inbetween", "regenerate_parts", "edit_real",
                                 "mirror"])
def test_renaming_the_rig_while_its_job_runs_keeps_the_result(addon, job, renamed):  # noqa: F811
    """Found in Blender 4.3: an animator who named the character while a job ran lost the result ("The armature
    'SALAD Body' was deleted or renamed meanwhile; nothing was changed"): results found their rig (and their
    scene) by name only."""
    RUNNER.motion = None
    pool = video_jobs.POOL
    pool.worker = pool.client = RealEditWorker(steps=2)
    rig = armature.create_smpl22_armature("SALAD Body", synthetic_walk(8), with_mesh=False)
    walk = synthetic_walk(40)
    source = actions.apply_motion(rig, walk, prompt="a person walks", bone_map="smpl22", seed=3, steps=10,
                                  guidance=2.5, model="demo")  # a plain generation: mirror / parts regenerate it
    bpy.context.view_layer.objects.active = rig
    scene = bpy.context.scene
    s, sh = scene.salad, scene.salad_shot
    s.prompt, s.target, s.rig_preset, s.real_caption = "a person runs", "SELECTED", "AUTO", "a person runs"
    sh.continue_prompt, sh.continue_seconds = "a person sits down", 1.0
    sh.action_a = sh.action_b = source
    sh.inbetween_prompt, sh.parts, sh.parts_prompt = "a person turns", {"left_arm"}, "a person waves"
    assert getattr(bpy.ops.salad, job)() == {"FINISHED"}  # the UI path: in the background
    if renamed == "rig":
        rig.name = "Hero"  # named while the worker samples
    else:
        scene.name = "Shot 010"
    run_timer()
    assert RUNNER.motion.state == "done", RUNNER.motion.message
    result = rig.animation_data.action
    assert result != source and result.library is None and result.name.startswith("SALAD: ")
    assert [o.name for o in bpy.data.objects if o.type == "ARMATURE"] == [rig.name]  # no new rig either


def test_a_rig_deleted_while_its_job_runs_is_still_a_clean_failure(addon):  # noqa: F811
    rig = armature.create_smpl22_armature("SALAD Body", synthetic_walk(8), with_mesh=False)
    actions.apply_motion(rig, synthetic_walk(40), prompt="a person walks", bone_map="smpl22")
    bpy.context.view_layer.objects.active = rig
    sh = bpy.context.scene.salad_shot
    sh.continue_prompt, sh.continue_seconds = "a person sits down", 1.0
    had = set(bpy.data.actions)
    assert bpy.ops.salad.continue_action() == {"FINISHED"}
    bpy.data.objects.remove(rig)
    run_timer()
    assert RUNNER.motion.state == "failed"
    assert RUNNER.motion.message.endswith("The armature 'SALAD Body' was deleted (or undone) meanwhile; nothing "
                                          "was changed.")
    assert set(bpy.data.actions) == had


def test_a_reroll_says_so_and_survives_a_rename(addon):  # noqa: F811
    """Seen in Blender 4.3: Re-roll Segment reported "Generate shot: done"; and a rename meanwhile lost it."""
    from test_shot_audit import activate, make_shot

    body = make_shot()
    activate(body)
    shot = body.animation_data.action
    bpy.context.scene.salad_shot.reroll_segment = 2
    assert bpy.ops.salad.reroll_segment(seed=7) == {"FINISHED"}
    body.name = "Hero"
    run_timer()
    assert RUNNER.motion.state == "done", RUNNER.motion.message
    assert RUNNER.motion.message.startswith("Re-roll segment 2: done in ")
    assert body.animation_data.action not in (shot, None) and "re-roll 2" in body.animation_data.action.name


def test_a_result_on_a_rig_with_nla_strips_leaves_the_strips_alone(addon):  # noqa: F811
    """An action already in the NLA under the played one (tried in Blender 4.3): Continue makes a new Action; the
    strips keep their action, place and count, and neither source action changes."""
    rig = armature.create_smpl22_armature("Rig", synthetic_walk(8), with_mesh=False)
    under = actions.apply_motion(rig, synthetic_walk(40), prompt="a person walks", bone_map="smpl22")
    actions.push_to_nla(rig)
    played = actions.apply_motion(rig, synthetic_walk(40), prompt="a person runs", bone_map="smpl22")
    bpy.context.view_layer.objects.active = rig

    def state() -> tuple:
        strips = [(t.name, s.name, s.action, s.frame_start, s.frame_end) for t in rig.animation_data.nla_tracks
                  for s in t.strips]
        keys = [tuple(k.co) for a in (under, played) for fc in actions.action_fcurves(a) for k in fc.keyframe_points]
        return strips, keys

    before = state()
    assert before[0] and before[0][0][2] == under
    sh = bpy.context.scene.salad_shot
    sh.continue_prompt, sh.continue_seconds = "a person sits down", 1.0
    assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
    assert rig.animation_data.action not in (under, played)
    assert state() == before


def test_the_status_bar_follows_the_job(addon, monkeypatch):  # noqa: F811
    """Found in Blender 4.3: the status bar showed 0% while the panel showed 97%. It is a window's global area, not
    one of ``screen.areas``, so the poll's redraw never reached it: it is now asked whenever what it shows changes
    (and only then: a publish on every poll would redraw it ten times a second for nothing)."""
    from types import SimpleNamespace

    from fake_ui import FakeLayout

    asked: list[bool] = []
    monkeypatch.setattr(runner, "redraw", lambda status_bar=False: asked.append(status_bar))
    r = runner.Runner()
    job = SimpleNamespace(progress=0.0, finished=False, poll=lambda: False)
    r.motion = job
    steps = []
    for progress, finished in [(0.0, False), (0.5, False), (0.971, False), (0.973, False), (0.973, False),
                               (1.0, True)]:
        job.progress, job.finished = progress, finished
        r.tick()
        steps.append((runner.status_progress(r), asked[-1]))
    assert steps == [(("motion", 0), True), (("motion", 50), True), (("motion", 97), True), (("motion", 97), False),
                     (("motion", 97), False), (None, True)]  # the bar goes away when the job ends
    job.progress, job.finished = 0.971, False
    monkeypatch.setattr(panels, "RUNNER", r)
    calls: list = []
    panels.draw_status(SimpleNamespace(layout=FakeLayout(calls)), bpy.context)
    assert ("progress", "97%") in calls  # what it draws is what the poll compared


def test_the_status_bar_redraw_reaches_blender(addon, monkeypatch):  # noqa: F811
    """The redraw asks the message bus (the status bar's one way in) only when told to."""
    published: list = []
    monkeypatch.setattr(bpy.msgbus, "publish_rna", lambda key: published.append(key))
    runner.redraw()
    assert published == []
    runner.redraw(status_bar=True)
    assert published == [(bpy.types.Window, "view_layer")]


def two_selected_rigs(hero_name: str, extra_name: str):
    """Two walking rigs, both selected, the first active; the Generate panel set to apply to all selected."""
    RUNNER.motion = None
    hero = armature.create_smpl22_armature(hero_name, synthetic_walk(8), with_mesh=False)
    extra = armature.create_smpl22_armature(extra_name, synthetic_walk(8), with_mesh=False)
    for o in (hero, extra):
        o.select_set(True)
    bpy.context.view_layer.objects.active = hero
    s = bpy.context.scene.salad
    s.prompt, s.target, s.rig_preset, s.all_selected = "a person walks", "SELECTED", "AUTO", True
    return hero, extra


@pytest.mark.parametrize("job", ["generate", "import_video"])
@pytest.mark.parametrize("renamed", ["other", "both"])
def test_renaming_the_other_selected_rigs_while_a_job_runs_keeps_the_result(addon, job, renamed):  # noqa: F811
    """Apply to all selected: the other armatures were found by name only, so renaming one while the worker ran
    failed the whole job. Each now gets its own new Action, found again as the main rig is."""
    hero, extra = two_selected_rigs("SALAD Body", "SALAD Body.001")
    if job == "generate":
        assert bpy.ops.salad.generate() == {"FINISHED"}  # the UI path: in the background
    else:
        clip = __import__("testdata").DATA / "video" / "walk_turn_left_front.mp4"
        assert bpy.ops.salad.import_video(filepath=str(clip), clean_up=False) == {"FINISHED"}
    extra.name = "Sidekick"
    if renamed == "both":
        hero.name = "Hero"
    run_timer()
    assert RUNNER.motion.state == "done", RUNNER.motion.message
    played = [o.animation_data.action for o in (hero, extra)]
    assert all(a is not None and a.name.startswith("SALAD: ") for a in played) and played[0] != played[1]
    assert sorted(o.name for o in bpy.data.objects if o.type == "ARMATURE") == sorted([hero.name, "Sidekick"])


def test_a_selected_rig_deleted_while_the_job_runs_fails_cleanly(addon):  # noqa: F811
    """The other rig gone (deleted or undone): a clear failure, and the main rig keeps what it played."""
    hero, extra = two_selected_rigs("Hero", "Sidekick")
    actions_before = set(bpy.data.actions)
    assert bpy.ops.salad.generate() == {"FINISHED"}
    bpy.data.objects.remove(extra)
    run_timer()
    assert RUNNER.motion.state == "failed"
    assert "The selected armature 'Sidekick' was deleted (or undone)" in RUNNER.motion.message
    assert set(bpy.data.actions) == actions_before and getattr(hero.animation_data, "action", None) is None
