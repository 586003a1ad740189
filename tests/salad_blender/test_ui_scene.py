"""Issue 21 in bpy: a result leaves the user's scene alone (rotation modes, pose, selection, frame range,
placement), operators poll with reasons, the SALAD menu, background reports, the exact mirror of real
animation without a caption. The panels' draw code runs against fake_ui's recording layout."""

import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_state import world_heads  # noqa: E402
from fake_ui import FakeLayout  # noqa: E402

import salad_blender  # noqa: E402
from salad_blender import actions, armature, blender_data, jobs, smpl22  # noqa: E402
from salad_blender.inputs import Target  # noqa: E402

MODES = ("QUATERNION", "XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX", "AXIS_ANGLE")
BONES = list(smpl22.JOINT_NAMES)


@pytest.fixture
def registered(scene):
    salad_blender.register()
    yield
    salad_blender.unregister()


def body(walk, name="Body", mode="QUATERNION"):
    obj = armature.create_smpl22_armature(name, walk, with_mesh=False)
    for pb in obj.pose.bones:
        pb.rotation_mode = mode
    return obj


@pytest.mark.parametrize("mode", MODES)
def test_keys_follow_each_bones_rotation_mode(scene, walk, mode):
    """Same motion on a quaternion rig and on a rig in ``mode``: same world joints (0.1 mm), mode kept."""
    scene.render.fps = 20
    ref = body(walk, "Ref")
    actions.apply_motion(ref, walk[:60], prompt="walk", bone_map="smpl22")
    obj = body(walk, "Test", mode)
    act = actions.apply_motion(obj, walk[:60], prompt="walk", bone_map="smpl22")
    assert all(pb.rotation_mode == mode for pb in obj.pose.bones)
    prop = actions.rotation_channels(np.array([[1.0, 0, 0, 0]]), mode)[0]
    paths = {fc.data_path.rsplit(".", 1)[1] for fc in actions.action_fcurves(act)}
    assert paths == {prop, "location"}
    for f in (1, 17, 44, 60):
        assert np.abs(world_heads(obj, BONES, f) - world_heads(ref, BONES, f)).max() < 1e-4, f
    if mode not in ("QUATERNION", "AXIS_ANGLE"):  # Euler keys stay continuous: no 360 degree flips
        for fc in actions.action_fcurves(act):
            if fc.data_path.endswith("rotation_euler"):
                vals = np.array([k.co[1] for k in fc.keyframe_points])
                assert np.abs(np.diff(vals)).max() < np.pi / 2, fc.data_path


def test_stale_pose_is_keyed_at_rest_not_reset(scene, walk):
    """A bone's stale location is neutralised inside the new action; the user's pose values stay."""
    scene.render.fps = 20
    obj = body(walk)
    pb = obj.pose.bones["left_wrist"]
    pb.location = (0.1, 0.0, 0.0)
    act = actions.apply_motion(obj, walk[:30], prompt="walk", bone_map="smpl22")
    assert tuple(pb.location) == pytest.approx((0.1, 0.0, 0.0))  # not written by the job
    keyed = {(fc.data_path, fc.array_index) for fc in actions.action_fcurves(act)}
    assert ('pose.bones["left_wrist"].location', 0) in keyed
    assert ('pose.bones["right_wrist"].location', 0) not in keyed  # untouched channels stay unkeyed
    scene.frame_set(5)
    assert tuple(pb.location) == pytest.approx((0.0, 0.0, 0.0))  # the action plays it at rest


def test_new_body_at_cursor_in_collection_keeps_the_users_selection(scene, walk):
    """A background result while the user poses another rig: no selection change, placed at the cursor."""
    scene.render.fps = 20
    props = bpy.data.collections.new("Props")
    scene.collection.children.link(props)
    user_rig = body(walk, "UserRig")
    bpy.context.view_layer.objects.active = user_rig
    user_rig.select_set(True)
    bpy.ops.object.mode_set(mode="POSE")
    scene.frame_start, scene.frame_end, scene.frame_current = 1, 250, 40
    target = Target(kind="new", location=(3.0, 2.0, 0.5), collection="Props", scene_range="extend",
                    start_frame=40, select=True)
    act = blender_data.place_motion({"joints": walk[:50], "meta": {}}, target, prompt="walk", meta={}, model="demo",
                                    name="walk", edits=[], extra={})
    new = next(o for o in bpy.data.objects if o.animation_data and o.animation_data.action == act)
    assert new.name in props.objects and new.name not in scene.collection.objects
    assert bpy.context.view_layer.objects.active == user_rig and user_rig.mode == "POSE"
    assert not new.select_get() and user_rig.select_get()
    assert (scene.frame_start, scene.frame_end) == (1, 250)  # "extend": the clip already fits
    assert act.frame_range[0] == 40
    pelvis = world_heads(new, ["pelvis"], 40)[0]
    assert np.abs(pelvis[:2] - (3.0, 2.0)).max() < 0.05  # the motion starts above the cursor
    bpy.ops.object.mode_set(mode="OBJECT")
    # in Object Mode a new body becomes the active, selected object (when asked)
    act2 = blender_data.place_motion({"joints": walk[:50], "meta": {}}, Target(kind="new", scene_range="set"),
                                     prompt="walk", meta={}, model="demo", name="walk", edits=[], extra={})
    new2 = bpy.context.view_layer.objects.active
    assert new2.animation_data.action == act2 and new2.select_get() and not user_rig.select_get()
    assert (scene.frame_start, scene.frame_end) == (1, 1 + int(act2.frame_range[1] - act2.frame_range[0]))


def test_settings_become_result_options(registered, walk):
    from salad_blender.settings import sampling_from, target_from

    context = bpy.context
    s = context.scene.salad
    assert s.use_model_guidance and sampling_from(s).guidance is None  # the model's own default
    s.use_model_guidance, s.guidance = False, 3.0
    assert sampling_from(s).fields()["guidance"] == 3.0
    props = bpy.data.collections.new("Props")
    context.scene.collection.children.link(props)
    context.view_layer.active_layer_collection = context.view_layer.layer_collection.children["Props"]
    context.scene.cursor.location = (1.0, -2.0, 0.0)
    context.scene.frame_current = 33
    t = target_from(context, s)
    assert (t.kind, t.collection, t.location, t.scene_range, t.start_frame) == ("new", "Props", (1.0, -2.0, 0.0),
                                                                               "extend", None)
    s.start_at_current, s.set_scene_range, s.at_cursor = True, True, False
    t = target_from(context, s)
    assert (t.collection, t.location, t.scene_range, t.start_frame) == ("", (0.0, 0.0, 0.0), "set", 33)
    with pytest.raises(jobs.JobError, match="scene_range"):
        jobs.check_scene_range("sometimes")


def test_polls_say_why_and_menu_lists_the_operators(registered, walk):
    context = bpy.context
    for op in ("edit_prompt", "reweight", "mirror", "copy_prompt"):
        assert not getattr(bpy.ops.salad, op).poll()
    with pytest.raises(RuntimeError, match="Select an armature"):
        bpy.ops.salad.edit_prompt(blocking=True)
    with pytest.raises(RuntimeError, match="No SALAD job is running"):
        bpy.ops.salad.cancel()
    with pytest.raises(RuntimeError, match="No attention map"):
        bpy.ops.salad.show_attention()
    obj = body(walk)
    context.view_layer.objects.active = obj
    assert not bpy.ops.salad.edit_real.poll()  # no action yet
    act = actions.apply_motion(obj, walk[:30], prompt="a person walks", bone_map="smpl22",
                               meta={"source": "inversion", "source_action": "mocap"})
    assert bpy.ops.salad.edit_real.poll()
    for op in ("edit_prompt", "reweight", "mirror", "copy_prompt", "attention"):
        assert not getattr(bpy.ops.salad, op).poll(), op
    with pytest.raises(RuntimeError, match="real animation"):
        bpy.ops.salad.mirror(blocking=True)
    del act["salad_source"]
    assert all(getattr(bpy.ops.salad, op).poll() for op in ("edit_prompt", "reweight", "mirror", "copy_prompt"))

    from salad_blender import menus

    assert menus.draw_entry in bpy.types.VIEW3D_MT_object_animation._dyn_ui_initialize()
    calls = []
    menus.SALAD_MT_animation.draw(MenuProxy(FakeMenuLayout(calls)), context)
    assert {("op", f"salad.{o}") for o in ("generate", "edit_prompt", "reweight", "mirror", "edit_real",
                                           "attention", "cancel")} <= set(calls)


def test_background_results_are_reported_and_dismissed(registered):
    from salad_blender import runner

    assert runner.report("INFO", "SALAD: Generate: done in 1.0 s")
    assert runner.report("ERROR", "SALAD: Generate: the worker stopped")  # an error report raises; it is logged
    assert runner.job_report_level("failed") == "ERROR" and runner.job_report_level("done") == "INFO"

    class Done:
        finished, state, message, kind, label, details = True, "failed", "boom", "generate", "Generate", ""

    runner.RUNNER.motion = Done()
    assert bpy.ops.salad.dismiss(which="motion") == {"FINISHED"} and runner.RUNNER.motion is None


def test_exact_mirror_of_real_animation_needs_no_caption(scene, walk, tiny_model_dir):
    scene.render.fps = 20
    obj = body(walk, "Mocap")
    act = actions.apply_motion(obj, walk[:60], prompt="mocap", bone_map="smpl22")
    for key in [k for k in act.keys() if k.startswith("salad_")]:
        del act[key]
    act.name = "Mocap clip"
    config = jobs.WorkerConfig(python=sys.executable, model=str(tiny_model_dir), device="cpu", threads=1)
    with pytest.raises(jobs.JobError, match="Describe the animation"):
        jobs.start_edit_real(config, obj, "", mirror="all", mirror_method="attention")
    job = jobs.start_edit_real(config, obj, "", mirror="all", mirror_method="geometric", scene_range="keep")
    job.wait(timeout=600)
    assert job.state == "done", job.message
    assert job.output.name == "SALAD: Mocap clip [mirror all]" and job.output["salad_source"] == "inversion"


class FakeMenuLayout(FakeLayout):
    def separator(self, **_):
        pass

    def menu(self, idname, **_):
        self.calls.append(("menu", idname))


class MenuProxy:
    def __init__(self, layout):
        self.layout = layout


def test_video_import_is_in_file_import(registered):
    """ui5: Import Motion from Video was only in Object ▸ Animation ▸ SALAD (and F3); Blender keeps its importers
    (BVH, FBX) in File ▸ Import, where an animator looks for one."""
    from salad_blender import menus

    assert menus.draw_import in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
    calls = []
    menus.draw_import(MenuProxy(FakeMenuLayout(calls)), bpy.context)
    assert calls == [("op", "salad.import_video")]
    salad_blender.unregister()
    try:
        assert menus.draw_import not in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
    finally:
        salad_blender.register()


def test_preferences_put_setup_first_and_warn_offline_only_without_a_worker(registered, monkeypatch):
    from types import SimpleNamespace

    from salad_blender import preferences

    class Prefs(SimpleNamespace):
        pass

    prefs = Prefs(python_path="", model_source="DEMO", model_folder="", device="cuda", threads=0,
                  package_spec="salad", torch_index="cpu", show_advanced=False)
    prefs.bl_rna = preferences.SALAD_AddonPreferences.bl_rna

    def draw():
        calls = []
        prefs.layout = FakeLayout(calls)
        preferences.SALAD_AddonPreferences.draw(prefs, bpy.context)
        return calls

    monkeypatch.setattr(preferences, "default_python", lambda: "")
    calls = draw()
    ops = [c[1] for c in calls if c[0] == "op"]
    assert ops[:3] == ["salad.setup_env", "salad.open_env_folder", "salad.remove_env"]  # set-up comes first
    assert ("prop", "package_spec") not in calls  # raw pip fields only under Advanced
    labels = [c[1] for c in calls if c[0] == "label"]
    assert any("Online access is off" in x for x in labels) == (not bpy.app.online_access)
    assert any("cannot use CUDA" in x for x in labels)
    assert preferences.worker_missing(bpy.context)
    prefs.python_path, prefs.show_advanced = sys.executable, True
    calls = draw()
    assert ("prop", "package_spec") in calls
    assert not any("Online access is off" in c[1] for c in calls if c[0] == "label")


def test_in_place_and_the_mesh_of_a_rig(registered, walk):
    from salad_blender.settings import active_rig, target_from

    scene = bpy.context.scene
    scene.render.fps = 20
    target = Target(kind="new", in_place=True, scene_range="set")
    act = blender_data.place_motion({"joints": walk[:80], "meta": {}}, target, prompt="walk", meta={},
                                    model="demo", name="walk", edits=[], extra={})
    obj = next(o for o in bpy.data.objects if o.type == "ARMATURE" and o.animation_data.action == act)
    assert act["salad_in_place"] is True or act["salad_in_place"] == 1
    pelvis = np.array([world_heads(obj, ["pelvis"], f)[0] for f in (1, 40, 80)])
    assert np.abs(pelvis[:, :2] - pelvis[0, :2]).max() < 1e-4  # the walk (about 1 m/s) stays on the spot
    mesh = next(o for o in bpy.data.objects if o.type == "MESH" and o.parent == obj)
    bpy.context.view_layer.objects.active = mesh
    assert active_rig(bpy.context) == obj
    s = scene.salad
    s.target = "SELECTED"
    assert target_from(bpy.context, s).armature == obj.name
    assert bpy.ops.salad.mirror.poll()  # the edits act on the mesh's rig


def test_environment_buttons_need_an_environment(registered, tmp_path, monkeypatch):
    from salad_blender import setup_env

    monkeypatch.setattr(setup_env, "managed_venv_dir", lambda package, create=False: str(tmp_path / "venv"))
    with pytest.raises(RuntimeError, match="No model environment to remove"):
        bpy.ops.salad.remove_env()
    assert not bpy.ops.salad.open_env_folder.poll()
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    assert bpy.ops.salad.remove_env.poll() and bpy.ops.salad.open_env_folder.poll()
    assert bpy.ops.salad.remove_env() == {"FINISHED"} and not (tmp_path / "venv").exists()


def test_action_list_ab_toggle_and_push_to_nla(registered, walk):
    from salad_blender import action_library

    scene = bpy.context.scene
    scene.render.fps = 20
    obj = body(walk)
    bpy.context.view_layer.objects.active = obj
    src = actions.apply_motion(obj, walk[:40], prompt="a person walks", bone_map="smpl22")
    edit = actions.apply_motion(obj, walk[::-1][:40], prompt="a person walks", bone_map="smpl22",
                                name="a person runs", meta={"parent": src.name})
    other = bpy.data.actions.new("SALAD: other rig")
    other["salad_prompt"] = "x"
    actions.FCurveSink(other, "Other").new('pose.bones["mixamorig:Hips"].location', 0, "Hips")
    assert action_library.rig_actions(obj) == sorted([src, edit], key=lambda a: a.name)
    calls = []
    action_library.SALAD_PT_actions.draw(MenuProxy(FakeLayout(calls)), bpy.context)
    assert ("op", "salad.assign_action") in calls and ("label", "a person walks") in calls

    assert obj.animation_data.action == edit
    assert bpy.ops.salad.toggle_ab() == {"FINISHED"} and obj.animation_data.action == src  # B: the source
    assert bpy.ops.salad.toggle_ab() == {"FINISHED"} and obj.animation_data.action == edit  # A: the edit again
    assert bpy.ops.salad.assign_action(action=src.name) == {"FINISHED"} and obj.animation_data.action == src

    before = world_heads(obj, BONES, 20)
    assert bpy.ops.salad.push_to_nla() == {"FINISHED"}
    assert obj.animation_data.action is None and len(obj.animation_data.nla_tracks) == 1
    assert obj.animation_data.nla_tracks[0].strips[0].action == src
    assert np.abs(world_heads(obj, BONES, 20) - before).max() < 1e-5  # the strip plays the same motion
    assert not bpy.ops.salad.push_to_nla.poll()  # nothing left to push

    name = edit.name
    assert bpy.ops.salad.delete_action(action=name) == {"FINISHED"} and name not in bpy.data.actions


def test_mirror_buttons_each_say_what_they_mirror(registered):
    """ui5: Mirror Legs, Mirror Arms and Mirror All (panel, menu, F3) had one tooltip, 'left/right (legs, arms or
    all)'; each now names its side."""
    from types import SimpleNamespace

    from salad_blender import operators

    tips = {side: operators.SALAD_OT_mirror.description(bpy.context, SimpleNamespace(side=side))
            for side in ("lower", "upper", "all")}
    assert "legs" in tips["lower"] and "arms" in tips["upper"] and "whole body" in tips["all"]
    assert len(set(tips.values())) == 3 and all("new Action" in t for t in tips.values())
