"""Shot panel bugs found by the session-6 audit, each pinned by a test (the worker is shot_fakes.ShotWorker)."""

import itertools
import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_state import snapshot  # noqa: E402
from test_shot_operators import ListLayout  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import metadata, motion_job, shot_panels  # noqa: E402


def make_shot() -> bpy.types.Object:
    """A two-segment shot on a new SALAD body (armature with its mesh child)."""
    s = bpy.context.scene.salad_shot
    s.segments.clear()
    for prompt in ("a person walks forward", "a person waves"):
        bpy.ops.salad.shot_segment_add()
        s.segments[s.active_segment].prompt, s.segments[s.active_segment].seconds = prompt, 2.0
    bpy.context.scene.salad.target = "NEW"
    before = set(bpy.data.objects)
    assert bpy.ops.salad.generate_shot(blocking=True) == {"FINISHED"}
    return next(o for o in set(bpy.data.objects) - before if o.type == "ARMATURE")


def activate(obj) -> None:  # noqa: ANN001 - a bpy Object
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj


def draw(panel_cls) -> list:
    calls: list = []
    panel_cls.draw(SimpleNamespace(layout=ListLayout(calls)), bpy.context)
    return calls


def test_shot_buttons_take_the_rig_of_a_selected_body_mesh(addon):
    """Animators click the character's body: the Shot panel means its rig, like every other SALAD panel."""
    body = make_shot()
    mesh = next(c for c in body.children if c.type == "MESH")
    shot = body.animation_data.action
    activate(mesh)
    calls = draw(shot_panels.SALAD_PT_shot)
    assert ("op", "salad.reroll_segment") in calls and ("op", "salad.shot_use_recipe") in calls
    assert bpy.ops.salad.reroll_segment(seed=7, blocking=True) == {"FINISHED"}
    assert body.animation_data.action != shot and shot.name in bpy.data.actions
    bpy.context.scene.salad_shot.segments.clear()
    assert bpy.ops.salad.shot_use_recipe() == {"FINISHED"}
    assert len(bpy.context.scene.salad_shot.segments) == 2
    s = bpy.context.scene.salad_shot
    s.continue_prompt, s.continue_seconds = "a person sits down", 1.0
    before = body.animation_data.action
    assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
    assert addon.worker.ops[-1]["op"] == "continue"
    assert body.animation_data.action != before and before.name in bpy.data.actions
    s.parts, s.parts_prompt = {"left_arm"}, "a person waves"
    assert bpy.ops.salad.regenerate_parts(blocking=True) == {"FINISHED"}
    assert addon.worker.ops[-1]["op"] == "regenerate_parts"
    assert mesh.animation_data is None or mesh.animation_data.action is None  # the mesh got nothing


def test_shot_results_keep_the_scene_range_unless_asked(addon):
    """'Set Scene Range' off (the default): a result only extends the end; the user's range never shrinks."""
    body = make_shot()
    scene = bpy.context.scene
    g, s = scene.salad, scene.salad_shot
    assert not g.set_scene_range
    activate(body)
    s.continue_prompt, s.continue_seconds = "a person sits down", 1.0
    s.parts, s.parts_prompt = {"left_arm"}, "a person waves"
    jobs = (lambda: bpy.ops.salad.reroll_segment(seed=7, blocking=True),
            lambda: bpy.ops.salad.continue_action(blocking=True),
            lambda: bpy.ops.salad.regenerate_parts(blocking=True))
    for run in jobs:
        scene.frame_start, scene.frame_end = 1, 900
        assert run() == {"FINISHED"}
        assert (scene.frame_start, scene.frame_end) == (1, 900), addon.worker.ops[-1]["op"]
    g.set_scene_range = True
    assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
    lo, hi = body.animation_data.action.frame_range
    assert (scene.frame_start, scene.frame_end) == (int(lo), int(hi)) != (1, 900)


def test_continue_and_inbetween_names_say_salad_once(addon):
    """A result named after a SALAD source action: 'SALAD: walk + sits', not 'SALAD: SALAD: walk + sits'."""
    body = make_shot()
    activate(body)
    shot = body.animation_data.action
    s = bpy.context.scene.salad_shot
    s.continue_prompt, s.continue_seconds = "a person sits", 1.0
    assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
    cont = body.animation_data.action
    short = shot.name.removeprefix("SALAD: ")
    assert cont.name == metadata.action_name(metadata.derived_name([short, " + ", "a person sits"],
                                                                   [(0, metadata.MIN_SOURCE_BYTES), (2, 0)]))
    s.action_a, s.action_b, s.inbetween_prompt, s.inbetween_seconds = shot, cont, "a person turns", 1.0
    assert bpy.ops.salad.inbetween(blocking=True) == {"FINISHED"}
    name = body.animation_data.action.name
    assert name.startswith(f"SALAD: {short[:10]}") and name.count("SALAD: ") == 1, name


def test_an_action_without_keys_is_called_that(addon):
    """A new, empty action is not 'a single frame': the refusal says it has no keyframes (scene untouched)."""
    from salad_blender import actions, jobs

    body = make_shot()
    activate(body)
    empty = bpy.data.actions.new("Blank")
    actions.assign_action(body, empty, None)
    s = bpy.context.scene.salad_shot
    s.continue_prompt = "a person sits"
    before = snapshot()
    with pytest.raises(RuntimeError, match="'Blank' has no keyframes"):
        bpy.ops.salad.continue_action(blocking=True)
    config = jobs.WorkerConfig(python=sys.executable, model="demo", device="cpu", threads=1)
    with pytest.raises(jobs.JobError, match="'Blank' has no keyframes"):
        jobs.start_edit_real(config, body, "a person walks", new_prompt="a person runs")
    assert snapshot() == before and not [r for r in addon.worker.sent if r["op"] == "continue"]


def test_reroll_and_parts_keep_in_place_and_cyclic(addon):
    """A re-rolled take or regenerated parts of an In Place, cyclic motion stay in place and cyclic (as edits do)."""
    from salad_blender import actions

    g = bpy.context.scene.salad
    g.in_place, g.make_cyclic, g.cyclic_blend = True, True, 6
    body = make_shot()
    g.in_place, g.make_cyclic = False, False  # the panel's options now: the recipe must win
    activate(body)
    assert bpy.ops.salad.reroll_segment(seed=9, blocking=True) == {"FINISHED"}

    def looks(act) -> tuple:  # noqa: ANN001 - a bpy Action
        meta = metadata.action_meta(act)
        root = [fc for fc in actions.action_fcurves(act) if fc.data_path == 'pose.bones["pelvis"].location']
        travel = max(abs(fc.keyframe_points[-1].co[1] - fc.keyframe_points[0].co[1]) for fc in root
                     if fc.array_index in (0, 2))
        cycles = all(any(m.type == "CYCLES" for m in fc.modifiers) for fc in actions.action_fcurves(act))
        return bool(meta.get("salad_in_place")), int(meta.get("salad_cyclic") or 0), travel < 0.05, cycles

    assert looks(body.animation_data.action) == (True, 6, True, True)
    gen = actions.apply_motion(body, synthetic_walk(80), prompt="a person walks", bone_map="smpl22", start_frame=1,
                               seed=3, cyclic_blend=6, meta={"in_place": True, "rig": "smpl22"})
    actions.assign_action(body, gen, actions.object_slot(gen, body))
    s = bpy.context.scene.salad_shot
    s.parts, s.parts_prompt = {"left_arm"}, "a person waves"
    assert bpy.ops.salad.regenerate_parts(blocking=True) == {"FINISHED"}
    assert addon.worker.ops[-1]["source_prompt"] == "a person walks"  # regenerated from its recipe
    assert looks(body.animation_data.action) == (True, 6, True, True)


def test_continue_hint_fits_the_default_sidebar(addon):
    """The hint drawn with nothing selected was cut ('Select an armature that plays an ac…') at the default width."""
    from salad_blender import ui_state

    bpy.ops.mesh.primitive_cube_add()
    labels = [text for kind, text in draw(shot_panels.SALAD_PT_shot_continue) if kind == "label"]
    assert labels and labels[0].startswith("Select an armature")
    # a label in a box beside an icon: the box's borders take about four characters of the region's width
    assert all(len(text) <= ui_state.chars_for_width(300) - 4 for text in labels), labels


def test_shots_honour_model_default_guidance(addon):
    """'Model Default' ticked: shot requests leave guidance to the model, like Generate; unticked: the value is sent."""
    g = bpy.context.scene.salad
    g.use_model_guidance, g.guidance = True, 3.0
    body = make_shot()
    assert "guidance" not in addon.worker.ops[-1]
    activate(body)
    s = bpy.context.scene.salad_shot
    s.continue_prompt, s.continue_seconds = "a person sits", 1.0
    assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
    assert addon.worker.ops[-1]["op"] == "continue" and "guidance" not in addon.worker.ops[-1]
    g.use_model_guidance = False
    assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
    assert addon.worker.ops[-1]["guidance"] == 3.0
    assert bpy.ops.salad.generate_shot(blocking=True) == {"FINISHED"}
    assert addon.worker.ops[-1]["guidance"] == 3.0


def _height_and_travel(body) -> tuple[float, float]:  # noqa: ANN001 - a bpy Object
    from blender_state import world_heads

    names = ["pelvis", "head", "left_foot"]
    first = world_heads(body, names, int(body.animation_data.action.frame_range[0]))
    last = world_heads(body, names, int(body.animation_data.action.frame_range[1]))
    return float(first[1, 2] - first[2, 2]), float(np.linalg.norm((last[0] - first[0])[:2]))


def test_new_body_is_human_sized_in_the_scene_units(addon):
    """Unit scale 0.01 (1 unit = 1 cm, as rigs from FBX/Maya come): the new body is 1.7 m, not 1.7 cm, and walks
    as far in metres; a re-roll onto it keeps that size."""
    scene = bpy.context.scene
    body = make_shot()
    height, travel = _height_and_travel(body)
    assert 1.0 < height < 2.2 and travel > 0.5  # metres at unit scale 1
    bpy.ops.object.select_all(action="DESELECT")
    scene.unit_settings.scale_length = 0.01
    big = make_shot()
    assert big != body
    big_height, big_travel = _height_and_travel(big)
    assert big_height == pytest.approx(100 * height, rel=1e-3) and big_travel == pytest.approx(100 * travel, rel=1e-3)
    activate(big)
    bpy.context.scene.salad_shot.reroll_segment = 2
    assert bpy.ops.salad.reroll_segment(seed=7, blocking=True) == {"FINISHED"}
    assert _height_and_travel(big)[0] == pytest.approx(big_height, rel=1e-3)


def test_edits_and_attention_are_greyed_out_for_shots_and_videos(addon):
    """A shot or a video import has no one-prompt recipe: the edit buttons and the heat map say so before a click
    (they were enabled and failed on click); a plain generation still allows them."""
    from salad_blender import actions, panels, ui_state

    body = make_shot()
    activate(body)
    blocked = ("edit_prompt", "reweight", "mirror", "attention", "copy_prompt")
    assert not any(getattr(bpy.ops.salad, name).poll() for name in blocked)
    assert "A shot has no one prompt" in ui_state.edit_blocker(body)
    assert not panels.SALAD_PT_edit_prompt.poll(bpy.context)
    bpy.context.scene.salad_shot.parts = {"left_arm"}  # with no part ticked Regenerate Parts is greyed out (ui5)
    assert bpy.ops.salad.edit_real.poll() and bpy.ops.salad.regenerate_parts.poll()  # what works on a shot
    body.animation_data.action["salad_source"] = "video"
    assert "A video import" in ui_state.edit_blocker(body)
    assert not any(getattr(bpy.ops.salad, name).poll() for name in blocked)
    gen = actions.apply_motion(body, synthetic_walk(80), prompt="a person walks", bone_map="smpl22", seed=3,
                               meta={"rig": "smpl22"})
    actions.assign_action(body, gen, actions.object_slot(gen, body))
    assert ui_state.edit_blocker(body) == "" and all(getattr(bpy.ops.salad, name).poll() for name in blocked)


def _select(active, *others) -> None:  # noqa: ANN001 - bpy Objects
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    for o in (active, *others):
        o.select_set(True)
    bpy.context.view_layer.objects.active = active


def test_generate_shot_onto_all_selected_checks_each_rig_now(addon):
    """'All Selected' onto an SMPL-22 rig and a Rigify rig: each gets its own rig preset (as Generate does); a rig
    that cannot take the motion is refused before the worker runs (it failed after the whole shot was made)."""
    from testdata import DATA

    from salad_blender import actions, armature, ui_state

    smpl = armature.create_smpl22_armature("Body A", synthetic_walk(8), with_mesh=False)
    with bpy.data.libraries.load(str(DATA / "rigify_human.blend")) as (_src, dst):
        dst.objects = ["rig"]
    rig = dst.objects[0]
    bpy.context.scene.collection.objects.link(rig)
    s, g = bpy.context.scene.salad_shot, bpy.context.scene.salad
    bpy.ops.salad.shot_segment_add()
    s.segments[0].prompt, s.segments[0].seconds = "a person walks", 2.0
    g.target, g.all_selected, g.rig_preset = "SELECTED", True, "AUTO"
    _select(smpl, rig)
    assert bpy.ops.salad.generate_shot(blocking=True) == {"FINISHED"}
    bones = {ui_state.bone_of_path(fc.data_path) for fc in actions.action_fcurves(rig.animation_data.action)}
    assert "torso" in bones and bones - {""} <= {b.name for b in rig.data.bones}  # Rigify's own controls
    assert smpl.animation_data.action != rig.animation_data.action

    broken = armature.create_smpl22_armature("Body B", synthetic_walk(8), with_mesh=False)
    _select(broken)
    bpy.ops.object.mode_set(mode="EDIT")
    broken.data.edit_bones.remove(broken.data.edit_bones["left_foot"])
    bpy.ops.object.mode_set(mode="OBJECT")
    _select(smpl, broken)
    sent, before = len(addon.worker.sent), snapshot()
    with pytest.raises(RuntimeError, match="'Body B' cannot take the motion"):
        bpy.ops.salad.generate_shot(blocking=True)
    assert len(addon.worker.sent) == sent and snapshot() == before


class GridLayout(ListLayout):
    """Records each row's toggles (prop_enum) and text fields' placeholders, to check what the sidebar can show."""

    rows = itertools.count()

    def __init__(self, calls):
        super().__init__(calls)
        self.row_id = next(GridLayout.rows)

    def row(self, **_):
        return GridLayout(self.calls)

    column = box = split = row

    def prop(self, data, name, **kw):
        super().prop(data, name, **kw)
        self.calls.append(("prop_kw", name, kw))

    def prop_enum(self, data, name, value, **_):
        assert value in {i.identifier for i in data.bl_rna.properties[name].enum_items}, value
        self.calls.append(("toggle", self.row_id, value))


def test_regenerate_parts_panel_is_readable_in_the_default_sidebar(addon):
    """Seven part toggles in one row were cut to 'Lef… Rig… Tor… Lef… Rig…' (which left?); the prompt field had
    no hint. Now: at most two toggles a row, with their full names, and a placeholder."""
    from salad_blender import shot_inputs, ui_state

    calls: list = []
    shot_panels.SALAD_PT_regenerate_parts.draw(SimpleNamespace(layout=GridLayout(calls)), bpy.context)
    toggles = [c for c in calls if c[0] == "toggle"]
    assert sorted(v for _, _, v in toggles) == sorted(shot_inputs.PART_NAMES)
    rows: dict = {}
    for _, row, value in toggles:
        rows.setdefault(row, []).append(value)
    labels = {i.identifier: i.name for i in bpy.context.scene.salad_shot.bl_rna.properties["parts"].enum_items}
    half = ui_state.chars_for_width(300) // 2 - 2  # a toggle's share of a two-button row
    assert all(len(r) <= 2 for r in rows.values()) and all(len(labels[v]) <= half for v in labels)
    assert not [c for c in calls if c[:2] == ("prop", "parts")]  # not the squeezed expand=True row
    prompt = next(kw for kind, name, *rest in calls if kind == "prop_kw" and name == "parts_prompt" for kw in rest)
    if bpy.app.version >= (4, 1, 0):
        assert prompt.get("placeholder")


def test_shot_and_video_reasons_fit_the_edit_panel(addon):
    """The Edit panel shows a blocker in three lines; with the action's long name in it the advice was cut
    ("… is a shot: use Edit Animation…")."""
    from salad_blender import ui_state

    body = make_shot()
    act = body.animation_data.action
    act.name = "SALAD: shot: a person walks forward | a person waves with the right hand"
    width = ui_state.chars_for_width(300) - 4  # the panel's width for these lines (panels.SALAD_PT_edit)
    for source in ("shot", "video"):
        act["salad_source"] = source
        lines = ui_state.fit_lines(ui_state.edit_blocker(body), width, 3)
        assert not lines[-1].endswith("…"), lines
        assert "Edit Animation with Text" in " ".join(lines)


def test_new_segment_prompt_field_has_a_hint(addon):
    """Add Segment leaves an empty, unlabelled text box; it says what to type (Blender 4.1+ placeholders)."""
    bpy.ops.salad.shot_segment_add()
    calls: list = []
    shot_panels.SALAD_PT_shot.draw(SimpleNamespace(layout=GridLayout(calls)), bpy.context)
    kws = [rest[0] for kind, name, *rest in calls if kind == "prop_kw" and name == "prompt"]
    assert kws and kws[0].get("text") == ""
    if bpy.app.version >= (4, 1, 0):
        assert "e.g." in kws[0].get("placeholder", "")


def test_a_cyclic_blend_too_long_for_the_clip_is_refused_before_the_worker(addon, tiny_model_dir):
    """Make Cyclic with 200 blend frames on a 4 s clip failed only after the motion was made; the clip's length
    is known at the click (Generate: seconds; a shot: its segments)."""
    from salad_blender import jobs, shot_jobs
    from salad_blender.inputs import Sampling, Target

    config = jobs.WorkerConfig(python=sys.executable, model=str(tiny_model_dir), device="cpu", threads=1)
    bpy.context.scene.render.fps = 24
    for blend in (200, 46):  # 4 s = 80 model frames = 95 frames at 24 fps; a loop needs 2 × blend + 4
        with pytest.raises(jobs.JobError, match="Blend Frames"):
            jobs.start_generate(config, "a person walks", Sampling(seconds=4.0), Target(cyclic_blend=blend),
                                pool=addon)
        with pytest.raises(jobs.JobError, match="Blend Frames"):
            shot_jobs.start_compose(config, [{"prompt": "a person walks", "seconds": 2.0}] * 2, Sampling(),
                                    Target(cyclic_blend=blend), pool=addon)
    assert not addon.worker.sent
    for blend in (12, 45):  # fits
        jobs.start_generate(config, "a person walks", Sampling(seconds=4.0), Target(cyclic_blend=blend), pool=addon)
        shot_jobs.start_compose(config, [{"prompt": "a person walks", "seconds": 2.0}] * 2, Sampling(),
                                Target(cyclic_blend=blend), pool=addon)


def test_an_action_that_moves_no_bone_of_the_rig_is_refused(addon):
    """B = a cube's action (the A/B pickers list every action of the file): the armature slid in its rest pose
    and In-between / Continue 'worked'. Now refused before the worker, and the pickers offer bone actions only."""
    from salad_blender import actions, armature, shot_settings

    obj = armature.create_smpl22_armature("Mocap", synthetic_walk(60), with_mesh=False)
    walk = actions.apply_motion(obj, synthetic_walk(60), prompt="a", bone_map="smpl22", start_frame=1, seed=3)
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    for frame, x in ((1, 0.0), (60, 3.0)):
        cube.location.x = x
        cube.keyframe_insert("location", frame=frame)
    slide = cube.animation_data.action
    activate(obj)
    s = bpy.context.scene.salad_shot
    s.action_a, s.action_b, s.inbetween_prompt, s.continue_prompt = walk, slide, "a person turns", "a person sits"
    before = snapshot()
    with pytest.raises(RuntimeError, match="animates no bone of 'Mocap'"):
        bpy.ops.salad.inbetween(blocking=True)
    actions.assign_action(obj, slide, None)
    before = snapshot()
    with pytest.raises(RuntimeError, match="animates no bone of 'Mocap'"):
        bpy.ops.salad.continue_action(blocking=True)
    assert snapshot() == before and not addon.worker.ops
    assert shot_settings.bone_action(None, walk) and not shot_settings.bone_action(None, slide)


def test_f3_search_finds_every_job_operator(addon):
    """Blender's F3 searches menus: the SALAD menu (Object/Pose ▸ Animation) lists every job button, the
    session-5 ones (shots, continue, in-between, regenerate parts, re-roll) included."""
    from test_ui_scene import FakeMenuLayout, MenuProxy

    from salad_blender import menus, operators

    jobs_ops = {cls.bl_idname for cls in operators._JobOperator.__subclasses__() + [
        c for base in operators._JobOperator.__subclasses__() for c in base.__subclasses__()]
        if getattr(cls, "bl_idname", "").startswith("salad.") and cls.bl_idname != "salad.check_worker"}
    assert {"salad.generate_shot", "salad.continue_action", "salad.regenerate_parts"} <= jobs_ops
    calls: list = []
    menus.SALAD_MT_animation.draw(MenuProxy(FakeMenuLayout(calls)), bpy.context)
    assert jobs_ops <= {name for kind, name in calls if kind == "op"}, jobs_ops - {n for _, n in calls}


def test_a_second_job_never_cancels_the_running_one(addon):
    """A file browser (Import Motion from Video) executes without asking the poll again: confirming it while a
    shot ran cancelled the shot without a word. The operator itself refuses while its slot is busy."""
    from salad_blender import video_operators
    from salad_blender.runner import RUNNER

    body = make_shot()
    activate(body)
    s = bpy.context.scene.salad_shot
    s.continue_prompt = "a person sits"
    running = motion_job.make_job("continue", "Continue", motion_job.WorkerConfig(
        python=sys.executable, model="demo"), {"op": "continue"}, lambda r: None, addon)
    RUNNER.start("motion", running, timer=False)
    try:
        reports: list = []
        op = SimpleNamespace(blocking=True, slot="motion", filepath="clip.mp4", fov=math.radians(55.0),
                             report=lambda kind, text: reports.append((kind, text)),
                             make_job=lambda context: pytest.fail("no new job while one runs"))
        assert video_operators.SALAD_OT_import_video.execute(op, bpy.context) == {"CANCELLED"}
        assert not running.finished and RUNNER.motion is running
        assert reports and "job is running" in reports[0][1]
    finally:
        running.cancel()
        RUNNER.motion = None
