"""Animator-grade UI in the registered add-on (session 10, ui7): greyed-out job buttons that say why and the
"Choose Model…" button, results landing in the scene their job started in, the video dialog's angle and target,
the A/B switch's search label and in-between names, the Cancel button that cancels only its own job, and the
in-between greyed out for linked or unusable actions. The worker is shot_fakes' scripted one (no model runs)."""

import math
import time
from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy")

from fake_ui import FakeLayout  # noqa: E402
from shot_fakes import FakePool, ShotWorker, shot_addon  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, armature, metadata, motion_job, panels, runner, video_jobs  # noqa: E402
from salad_blender.runner import RUNNER  # noqa: E402


class Worker(ShotWorker):
    """The shot worker plus a generation and a video read (a synthetic walk each)."""

    @staticmethod
    def op_generate(req: dict) -> dict:
        return {"joints": synthetic_walk(80)}

    @staticmethod
    def op_edit(req: dict) -> dict:
        return {"joints": synthetic_walk(80)[:, :, ::-1].copy(), "meta": {"edits": [{"mode": "mirror"}]}}

    @staticmethod
    def op_video(req: dict) -> dict:
        return {"joints": synthetic_walk(40), "meta": {"fov_deg": req.get("fov", 55.0)}}


@pytest.fixture
def addon(scene, tiny_model_dir, monkeypatch):
    with shot_addon(tiny_model_dir, monkeypatch) as pool:
        pool.worker = pool.client = Worker(steps=1)
        monkeypatch.setattr(video_jobs, "POOL", pool)
        yield bpy.context.preferences.addons["salad_blender"].preferences


def run_timer() -> None:
    """Drive the UI path's timer the way Blender would, until it stops itself (headless: no timers fire)."""
    while runner._tick() is not None:
        time.sleep(0.01)
    if bpy.app.timers.is_registered(runner._tick):
        bpy.app.timers.unregister(runner._tick)


def panel_calls(panel_cls) -> list:
    calls: list = []
    panel_cls.draw(SimpleNamespace(layout=FakeLayout(calls)), bpy.context)
    return calls


def test_generate_and_edits_are_greyed_out_until_a_model_is_chosen(addon, tiny_model_dir):
    """No model folder chosen: Generate greyed out saying so, the panel offers Choose Model…, which sets it.
    Edits use their action's model: only a worker that cannot start greys them out."""
    addon.model_folder = ""
    assert not bpy.ops.salad.generate.poll()
    with pytest.raises(RuntimeError, match="Pick the model folder"):
        bpy.ops.salad.generate(blocking=True)
    calls = panel_calls(panels.SALAD_PT_generate)
    assert ("op", "salad.choose_model") in calls
    with pytest.raises(RuntimeError, match="does not exist"):  # a folder that is not there is refused
        bpy.ops.salad.choose_model(directory="/nowhere/at/all")
    assert addon.model_folder == ""
    assert bpy.ops.salad.choose_model(directory=str(tiny_model_dir)) == {"FINISHED"}
    assert addon.model_source == "FOLDER" and addon.model_folder == str(tiny_model_dir)
    assert bpy.ops.salad.generate.poll()
    assert ("op", "salad.choose_model") not in panel_calls(panels.SALAD_PT_generate)

    s = bpy.context.scene.salad
    s.prompt = "a person walks forward"
    assert bpy.ops.salad.generate(blocking=True) == {"FINISHED"}
    assert bpy.ops.salad.mirror.poll()
    addon.model_folder = ""  # an edit regenerates with its action's model: the preferences' choice is not needed
    assert bpy.ops.salad.mirror.poll() and bpy.ops.salad.edit_prompt.poll()
    bpy.context.scene.salad_shot.parts = {"left_arm"}  # a plain generation's parts: its own model too
    assert bpy.ops.salad.regenerate_parts.poll()
    assert not bpy.ops.salad.continue_action.poll()  # any animation continues with the chosen model
    assert bpy.ops.salad.attention.poll()  # the heat map of the playing SALAD action: its model
    addon.python_path = "/nonexistent/python"  # no worker can start: everything that runs one is greyed out
    for op in ("generate", "edit_prompt", "reweight", "mirror", "attention", "edit_real", "continue_action",
               "regenerate_parts", "import_video"):
        assert not getattr(bpy.ops.salad, op).poll(), op
    with pytest.raises(RuntimeError, match="worker Python '/nonexistent/python' does not exist"):
        bpy.ops.salad.mirror(side="all", blocking=True)
    assert bpy.ops.salad.check_worker.poll()  # Check shows what is wrong: never greyed out for it
    labels = " ".join(c[1] for c in panel_calls(panels.SALAD_PT_generate) if c[0] == "label")
    assert "/nonexistent/python" in labels


def test_a_result_lands_in_the_scene_its_job_started_in(addon):
    """Generate in scene A, switch to scene B while it runs: the new body is in A (not B), B's selection and
    frame range are untouched (the body was selected by deselecting everything in B's view layer)."""
    win = bpy.context.window_manager.windows[0]
    scene_a = win.scene
    scene_b = bpy.data.scenes.new("Other Shot")
    prop = bpy.data.objects.new("Prop", None)
    scene_b.collection.objects.link(prop)
    scene_b.frame_start, scene_b.frame_end = 500, 600
    s = scene_a.salad
    s.prompt, s.select_new, s.target = "a person walks forward", True, "NEW"
    assert bpy.ops.salad.generate() == {"FINISHED"}  # the UI path: in the background
    win.scene = scene_b
    layer_b = bpy.context.view_layer
    prop.select_set(True)
    layer_b.objects.active = prop
    run_timer()
    assert RUNNER.motion.state == "done", RUNNER.motion.message
    body = bpy.data.objects["SALAD Body"]
    assert body.name in scene_a.objects and body.name not in scene_b.objects
    assert prop.select_get(view_layer=layer_b) and layer_b.objects.active == prop
    assert (scene_b.frame_start, scene_b.frame_end) == (500, 600)
    assert scene_a.frame_end > scene_a.frame_start

    # an edit started in A and applied while B shows: A's range follows the clip, B's stays
    win.scene = scene_a
    bpy.context.view_layer.objects.active = body
    s.pin_feet = False
    assert bpy.ops.salad.mirror(side="all") == {"FINISHED"}
    win.scene = scene_b
    first = body.animation_data.action
    run_timer()
    assert RUNNER.motion.state == "done", RUNNER.motion.message
    assert body.animation_data.action != first and "mirror" in body.animation_data.action.name
    assert (scene_b.frame_start, scene_b.frame_end) == (500, 600)


def test_video_dialog_angle_target_and_clean_up_label(addon):
    """The field of view is an angle (radians in, degrees to the worker), the dialog says where the motion goes."""
    from salad_blender import video_operators

    rna = bpy.ops.salad.import_video.get_rna_type()
    fov = rna.properties["fov"]
    assert fov.subtype == "ANGLE" and math.isclose(fov.default, math.radians(55.0), rel_tol=1e-6)
    assert rna.properties["clean_up"].name == "Model Clean-Up"
    clip = __import__("testdata").DATA / "video" / "walk_turn_left_front.mp4"
    assert bpy.ops.salad.import_video(filepath=str(clip), fov=math.radians(70.0), clean_up=False) == {"FINISHED"}
    RUNNER.motion.poll()
    sent = [r for r in addon_pool().worker.sent if r["op"] == "video"]
    assert sent and math.isclose(sent[-1]["fov"], 70.0, rel_tol=1e-6)  # the protocol's degrees
    RUNNER.motion.cancel()
    with pytest.raises(RuntimeError, match="radians"):  # degrees passed by a script: said so, not read as 55 rad
        bpy.ops.salad.import_video(filepath=str(clip), fov=55.0, clean_up=False, blocking=True)

    s = bpy.context.scene.salad
    calls: list = []
    op = SimpleNamespace(layout=FakeLayout(calls), bl_rna=rna)
    s.target = "NEW"
    video_operators.SALAD_OT_import_video.draw(op, bpy.context)
    assert ("label", "Onto: A new SALAD body") in calls and ("prop", "fov") in calls
    rig = armature.create_smpl22_armature("Hero", synthetic_walk(8), with_mesh=False)
    bpy.context.view_layer.objects.active = rig
    s.target = "SELECTED"
    calls.clear()
    video_operators.SALAD_OT_import_video.draw(op, bpy.context)
    assert ("label", "Onto: Hero") in calls


def addon_pool() -> FakePool:
    return motion_job.POOL


def test_ab_search_label_and_inbetween_names_keep_the_separator(addon):
    assert bpy.ops.salad.toggle_ab.get_rna_type().name == "Switch Edit and Source (A/B)"
    rig = armature.create_smpl22_armature("Hero", synthetic_walk(8), with_mesh=False)
    a = actions.apply_motion(rig, synthetic_walk(40), prompt="a person walks forward slowly and then turns round",
                             bone_map="smpl22")
    b = actions.apply_motion(rig, synthetic_walk(40), prompt="a person runs in a big circle very quickly",
                             bone_map="smpl22")
    bpy.context.view_layer.objects.active = rig
    sh = bpy.context.scene.salad_shot
    sh.action_a, sh.action_b = a, b
    sh.inbetween_prompt, sh.inbetween_seconds = "a person turns to the left and waves", 2.0
    assert bpy.ops.salad.inbetween(blocking=True) == {"FINISHED"}
    name = rig.animation_data.action.name.removeprefix(metadata.ACTION_PREFIX)
    first, middle, last = name.split(" > ")
    assert first.startswith("a person walk") and last.startswith("a person runs") and middle.startswith("a person")


def test_cancel_button_cancels_only_its_own_job(addon):
    """The X drawn for Check (its job has ended) must not cancel the generation that runs now; F3's Cancel
    (no job named) cancels what runs."""
    assert bpy.ops.salad.check_worker() == {"FINISHED"}
    check_serial = RUNNER.serials["check"]
    RUNNER.check.cancel()
    s = bpy.context.scene.salad
    s.prompt = "a person walks forward"
    assert bpy.ops.salad.generate() == {"FINISHED"}
    gen = RUNNER.motion
    assert bpy.ops.salad.cancel(which="check", job=check_serial) == {"CANCELLED"}
    assert not gen.finished
    assert bpy.ops.salad.cancel(which="motion", job=RUNNER.serials["motion"] - 1) == {"CANCELLED"}  # an old X
    assert not gen.finished
    assert bpy.ops.salad.cancel(which="motion", job=RUNNER.serials["motion"]) == {"FINISHED"}
    assert gen.state == "cancelled"
    assert bpy.ops.salad.generate() == {"FINISHED"}
    assert bpy.ops.salad.cancel() == {"FINISHED"} and RUNNER.motion.state == "cancelled"  # F3: what runs


def test_inbetween_is_greyed_out_for_a_linked_rig_or_unusable_actions(addon, tmp_path):
    rig = armature.create_smpl22_armature("Hero", synthetic_walk(8), with_mesh=False)
    a = actions.apply_motion(rig, synthetic_walk(40), prompt="a person walks", bone_map="smpl22")
    b = actions.apply_motion(rig, synthetic_walk(40), prompt="a person runs", bone_map="smpl22")
    bpy.context.view_layer.objects.active = rig
    sh = bpy.context.scene.salad_shot
    sh.action_a, sh.action_b = a, b
    sh.inbetween_prompt = "a person turns"
    assert bpy.ops.salad.inbetween.poll()
    empty = bpy.data.actions.new("Empty")
    sh.action_b = empty
    with pytest.raises(RuntimeError, match="'Empty' has no keyframes"):
        bpy.ops.salad.inbetween(blocking=True)
    cube_action = bpy.data.actions.new("Cube Spin")
    cube = bpy.data.objects.new("Cube", None)
    bpy.context.scene.collection.objects.link(cube)
    cube.keyframe_insert("location", frame=1)
    cube.keyframe_insert("location", frame=9)
    cube_action = cube.animation_data.action
    sh.action_b = cube_action
    with pytest.raises(RuntimeError, match="animates no bone of 'Hero'"):
        bpy.ops.salad.inbetween(blocking=True)
    # a linked action (library data) is only read: not greyed out, the result a new local Action
    lib_path = tmp_path / "lib.blend"
    bpy.data.libraries.write(str(lib_path), {b, rig})
    with bpy.data.libraries.load(str(lib_path), link=True) as (src, dst):
        dst.actions, dst.objects = [b.name], [rig.name]
    linked = next(x for x in bpy.data.actions if x.library is not None)
    sh.action_b = linked
    assert bpy.ops.salad.inbetween(blocking=True) == {"FINISHED"}
    assert rig.animation_data.action.library is None and linked.library is not None
    # a linked rig cannot keep a new Action in this file: greyed out, saying why
    linked_rig = next(o for o in bpy.data.objects if o.library is not None)
    bpy.context.scene.collection.objects.link(linked_rig)
    bpy.context.view_layer.objects.active = linked_rig
    assert not bpy.ops.salad.inbetween.poll()
    with pytest.raises(RuntimeError, match="linked from the library"):
        bpy.ops.salad.inbetween(blocking=True)
