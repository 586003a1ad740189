"""Blender side: our armature, Action writing, FK through Blender's depsgraph, foreign rigs, errors.

Runs in-process with the bpy wheel; each test starts from ``read_factory_settings(use_empty=True)``.
Tolerances: joint positions 1 mm, segment directions 1 degree (both usually ~1e-4 of that).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from needs import require, require_module

bpy = require_module("bpy")

from blender_state import key_values, snapshot, world_heads  # noqa: E402

from salad_blender import actions, armature, rigs, smpl22  # noqa: E402
from salad_blender import retarget as rt  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"


def angle_deg(a, b):
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, -1), -1.0, 1.0)))


# ------------------------------------------------------------------------------------ our armature


def test_smpl22_armature_fk_reproduces_joints(scene, walk):
    """Keyed SMPL-22 armature, 20 fps scene: FK in Blender == the input joints (Blender space)."""
    scene.render.fps, scene.render.fps_base = 20, 1.0
    arm = armature.create_smpl22_armature(joints=walk)
    act = actions.apply_motion(arm, walk, prompt="a person walks in a curve", seed=1)
    assert sorted(b.name for b in arm.data.bones) == sorted(smpl22.JOINT_NAMES)
    fcurves = actions.action_fcurves(act)
    assert len(fcurves) == 22 * 4 + 3 and all(len(fc.keyframe_points) == 196 for fc in fcurves)
    jb = smpl22.model_to_blender(walk)
    for f in (0, 1, 57, 123, 195):
        err = np.abs(world_heads(arm, smpl22.JOINT_NAMES, 1 + f) - jb[f]).max()
        assert err < 1e-3, (f, err)
    # the motion turns and travels, so this is not a near-static check
    assert np.linalg.norm(jb[195, 0, :2] - jb[0, 0, :2]) > 2.0


def test_body_mesh_is_skinned_and_follows(scene, walk):
    arm = armature.create_smpl22_armature(joints=walk)
    body = arm.children[0]
    assert body.type == "MESH" and 1000 < len(body.data.vertices) < 5000
    assert {g.name for g in body.vertex_groups} == set(smpl22.JOINT_NAMES)
    assert body.modifiers[0].type == "ARMATURE" and body.modifiers[0].object == arm
    scene.render.fps = 20
    actions.apply_motion(arm, walk, prompt="walk", seed=0)
    jb = smpl22.model_to_blender(walk)
    lw = body.vertex_groups["left_wrist"].index
    idx = [v.index for v in body.data.vertices if any(g.group == lw for g in v.groups)]
    for f in (0, 150):
        scene.frame_set(1 + f)
        ev = body.evaluated_get(bpy.context.evaluated_depsgraph_get())
        co = np.array([ev.data.vertices[i].co for i in idx]) @ np.array(ev.matrix_world)[:3, :3].T
        hand = co.mean(axis=0) + np.array(ev.matrix_world)[:3, 3]
        assert np.linalg.norm(hand - jb[f, 20]) < 0.1  # the hand mesh is at the wrist


def test_canonical_armature_without_motion(scene):
    arm = armature.create_smpl22_armature(with_mesh=False)
    rig = armature.rig_rest_from_object(arm)
    assert rigs.resolve_bone_map(rig.bone_names)[0] == "smpl22"
    rigs.check_sides(rig, rigs.SMPL22_MAP)
    assert not arm.children and abs(rig.heads[:, 2].min()) < 0.1


# ---------------------------------------------------------------------------------------- actions


def test_each_generation_is_a_new_action_with_metadata(scene, walk):
    scene.render.fps = 24
    arm = armature.create_smpl22_armature(joints=walk, with_mesh=False)
    # A user's own action already on the rig.
    arm.pose.bones["head"].rotation_quaternion = (0.9, 0.1, 0.0, 0.0)
    arm.pose.bones["head"].keyframe_insert("rotation_quaternion", frame=7)
    user_action = arm.animation_data.action
    before = key_values(user_action)
    other = bpy.data.actions.new("Unrelated")
    other.use_fake_user = True

    a1 = actions.apply_motion(arm, walk, prompt="a person walks", seed=2**40, model="demo",
                              guidance=7.5, steps=50, edits=[{"op": "reweight", "word": "walks"}])
    a2 = actions.apply_motion(arm, walk[:120], prompt="a person walks", seed=5)
    assert a1 != a2 and a1.name == "SALAD: a person walks" and a2.name == "SALAD: a person walks.001"
    assert arm.animation_data.action == a2
    assert {a.name for a in bpy.data.actions} == {user_action.name, "Unrelated", a1.name, a2.name}
    assert key_values(user_action) == before and user_action.use_fake_user  # untouched, kept
    assert a1.use_fake_user and len(key_values(a1)) == 91  # earlier generation kept intact
    meta = actions.read_metadata(a1)
    assert meta["salad_prompt"] == "a person walks" and meta["salad_seed"] == 2**40
    assert meta["salad_frames"] == 196 and meta["salad_model"] == "demo"
    assert meta["salad_guidance"] == pytest.approx(7.5) and meta["salad_steps"] == 50
    assert meta["salad_edits"] == [{"op": "reweight", "word": "walks"}]
    assert json.loads(a2["salad_edits"]) == [] and a2["salad_frames"] == 120 and a2["salad_seed"] == 5
    # frame range follows the newest clip: 120 frames at 20 fps = 5.95 s -> 143 frames at 24 fps
    assert (scene.frame_start, scene.frame_end) == (1, 143)


def test_actions_survive_save_and_reload(scene, walk, tmp_path):
    """Fake users keep every generation (and the user's replaced action) in the saved file."""
    arm = armature.create_smpl22_armature(joints=walk, with_mesh=False)
    arm.pose.bones["head"].keyframe_insert("rotation_quaternion", frame=1)
    user_action = arm.animation_data.action.name
    actions.apply_motion(arm, walk, prompt="first", seed=1)
    actions.apply_motion(arm, walk, prompt="second", seed=2)
    path = str(tmp_path / "gen.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.open_mainfile(filepath=path)
    assert {a.name for a in bpy.data.actions} == {user_action, "SALAD: first", "SALAD: second"}
    arm = bpy.data.objects["SALAD Body"]
    assert arm.animation_data.action.name == "SALAD: second"
    assert actions.read_metadata(bpy.data.actions["SALAD: first"])["salad_seed"] == 1
    assert len(actions.action_fcurves(bpy.data.actions["SALAD: first"])) == 91


def test_scene_at_24_fps_resamples(scene, walk):
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start = 10
    arm = armature.create_smpl22_armature(joints=walk, with_mesh=False)
    act = actions.apply_motion(arm, walk, prompt="walk", seed=0)
    fcurves = actions.action_fcurves(act)
    n = 235  # 195 / 20 s * 24 fps + 1
    assert all(len(fc.keyframe_points) == n for fc in fcurves)
    frames = np.zeros(2 * n, dtype=np.float32)
    fcurves[0].keyframe_points.foreach_get("co", frames)
    assert frames[0] == 10 and frames[-2] == 10 + n - 1
    assert all(k.interpolation == "LINEAR" for k in fcurves[0].keyframe_points)
    assert (scene.frame_start, scene.frame_end) == (10, 10 + n - 1)
    jb = smpl22.model_to_blender(walk)
    for src in (0, 55, 130, 195):  # 5 source frames = 6 scene frames: t = src / 20 s
        err = np.abs(world_heads(arm, smpl22.JOINT_NAMES, 10 + src * 6 // 5) - jb[src]).max()
        assert err < 1e-3, (src, err)


def test_slot_and_version_helpers(scene, walk):
    arm = armature.create_smpl22_armature(joints=walk, with_mesh=False)
    act = actions.apply_motion(arm, walk[:40], prompt="x" * 300, seed=0, frame_range="keep")
    assert len(act.name) < 64 and act.name.startswith("SALAD: xxx") and act.name.endswith("...")
    long_cjk = actions.action_name("一个人向前走" * 20)
    assert len(long_cjk.encode()) <= 59 and long_cjk.startswith("SALAD: 一个人")
    assert scene.frame_end == 250  # "keep"
    if actions.is_slotted(act):
        assert arm.animation_data.action_slot == act.slots[0]
        assert act.slots[0].target_id_type == "OBJECT"
        bag = act.layers[0].strips[0].channelbag(act.slots[0])
        assert {g.name for g in bag.groups} == set(smpl22.JOINT_NAMES)
    paths = {fc.data_path for fc in actions.action_fcurves(act)}
    assert 'pose.bones["pelvis"].location' in paths
    assert 'pose.bones["left_wrist"].rotation_quaternion' in paths


# ----------------------------------------------------------------------------------- foreign rigs


def test_mixamo_fbx_like_rig_matches_directions(build_mixamo_rig, walk):
    """A-pose, bent knees, random rolls, cm bones, object scale 0.01 + rotation, extra bones."""
    rig_obj, names = build_mixamo_rig(walk, heading=30.0)
    scene = bpy.context.scene
    scene.render.fps = 20
    act = actions.apply_motion(rig_obj, walk, prompt="walk", seed=0)  # preset auto-detected
    # 21 quaternion bones, the Euler (XYZ) shoulder, root location, and the stale Root rotation keyed at rest
    assert len(actions.action_fcurves(act)) == 21 * 4 + 3 + 3 + 4
    assert rig_obj.pose.bones[names["left_shoulder"]].rotation_mode == "XYZ"  # the rig's own mode is kept
    scene.frame_set(1)
    assert tuple(rig_obj.pose.bones["Root"].rotation_quaternion) == (1.0, 0.0, 0.0, 0.0)
    jb = smpl22.model_to_blender(walk) @ rt.rotation_z(np.deg2rad(30.0)).T  # rig faces -Y turned 30 deg
    bones = [names[j] for j in smpl22.JOINT_NAMES]
    segs = [(p, j) for j, p in enumerate(smpl22.PARENTS) if p != -1]
    worst = 0.0
    pelvis = []
    for f in (0, 33, 97, 160, 195):
        h = world_heads(rig_obj, bones, 1 + f)
        for p, j in segs:
            worst = max(worst, float(angle_deg(h[j] - h[p], jb[f, j] - jb[f, p])))
        pelvis.append(h[0])
    assert worst < 1.0, worst
    # root travel scaled by the rig's leg length ratio (1.12), turned with the rig
    from conftest import LEG_SCALE

    travel = np.array(pelvis[-1]) - pelvis[0]
    assert np.abs(travel - LEG_SCALE * (jb[195, 0] - jb[0, 0])).max() < 1e-3
    # and the rig stays where it stood: frame-0 pelvis above its rest pelvis
    rest = armature.rig_rest_from_object(rig_obj)
    assert np.abs(pelvis[0][:2] - rest.heads_world()[rest.index[names["pelvis"]]][:2]).max() < 1e-3


def test_rigify_names_and_custom_map(scene, walk):
    """The same geometry under Rigify DEF names, then under a custom map, retargets exactly."""
    arm = armature.create_smpl22_armature(joints=walk, with_mesh=False)
    for b in arm.data.bones:
        b.name = rigs.RIGIFY_MAP[b.name]
    c = arm.pose.bones["DEF-spine.001"].constraints.new("COPY_ROTATION")
    assert armature.overriding_constraints(arm, list(rigs.RIGIFY_MAP.values())) == [
        f"DEF-spine.001: {c.name} (COPY_ROTATION)"]
    arm.pose.bones["DEF-spine.001"].constraints.remove(c)
    scene.render.fps = 20
    actions.apply_motion(arm, walk, prompt="walk", seed=0, bone_map="rigify")
    jb = smpl22.model_to_blender(walk)
    bones = [rigs.RIGIFY_MAP[j] for j in smpl22.JOINT_NAMES]
    assert np.abs(world_heads(arm, bones, 80) - jb[79]).max() < 1e-3
    custom = {j: rigs.RIGIFY_MAP[j] for j in smpl22.JOINT_NAMES}
    actions.apply_motion(arm, walk, prompt="walk", seed=0, bone_map=custom)
    assert np.abs(world_heads(arm, bones, 80) - jb[79]).max() < 1e-3


@pytest.mark.parametrize("kind", ["missing", "swapped", "unknown"])
def test_wrong_rig_fails_cleanly(build_mixamo_rig, walk, kind):
    if kind == "missing":
        rig_obj, _ = build_mixamo_rig(walk, rename={"mixamorig:LeftHand": "mixamorig:LeftHandX",
                                                    "mixamorig:Neck": "neck_01"})
        match = r"missing 2 bone\(s\): \['mixamorig:Neck', 'mixamorig:LeftHand'\]"
    elif kind == "swapped":
        rig_obj, _ = build_mixamo_rig(walk, swap_sides=True)
        match = r"left/right mismatch.*'left_hip' -> bone 'mixamorig:LeftUpLeg' lies on the rig's right"
    else:
        rig_obj, _ = build_mixamo_rig(walk, prefix="bip_")
        for b in rig_obj.data.bones:
            b.name = b.name.replace("Hips", "Pelvis").replace("Spine", "Torso")
        match = r"matches no rig preset.*bip_Pelvis.*custom bone map"
    rig_obj.animation_data_create().action = bpy.data.actions.new("Existing")
    before = snapshot()
    with pytest.raises(rigs.RigError, match=match):
        actions.apply_motion(rig_obj, walk, prompt="walk", seed=0)
    assert snapshot() == before
    # also the bad joints input is refused before anything is created
    with pytest.raises(ValueError, match=r"\[T >= 2, 22, 3\]"):
        actions.apply_motion(rig_obj, walk[:, :21], prompt="walk", seed=0, bone_map={"pelvis": "Root"})
    assert snapshot() == before


# ------------------------------------------------------------------------------------ real motion


def bandai_clip(name: str) -> np.ndarray:
    """A real motion-capture clip (tests/data, Bandai-Namco, CC BY-NC) as canonical SMPL-22 joints."""
    from salad_model.motion import bandai_rig as bandai
    from salad_model.motion.motion_process import canonicalize

    path = DATA / f"dataset-2_{name}.bvh"
    require(path.exists(), f"{path.name} in tests/data")
    return canonicalize(bandai.bvh_to_smpl22(path.read_text()))


def facing_deg(jb: np.ndarray) -> np.ndarray:
    """Heading [T] (degrees about +Z) of the body's forward = (left_hip - right_hip) x up."""
    fwd = np.cross(jb[:, 1] - jb[:, 2], [0.0, 0.0, 1.0])
    return np.degrees(np.arctan2(fwd[:, 1], fwd[:, 0]))


def test_real_walk_turn_left_on_our_armature(scene):
    """Mocap "walk, turn left": exact FK, and the character really turns to ITS left (CCW from above)."""
    joints = bandai_clip("walk-turn-left_active_024")
    scene.render.fps = 20
    arm = armature.create_smpl22_armature(joints=joints, with_mesh=False)
    actions.apply_motion(arm, joints, prompt="walk turn left", seed=0)
    jb = smpl22.model_to_blender(joints)
    last = len(joints) - 1
    posed = {}
    for f in (0, last // 2, last):
        posed[f] = world_heads(arm, smpl22.JOINT_NAMES, 1 + f)
        assert np.abs(posed[f] - jb[f]).max() < 1e-3
    turn = facing_deg(np.stack([posed[last]]))[0] - facing_deg(np.stack([posed[0]]))[0]
    assert abs(facing_deg(np.stack([posed[0]]))[0] + 90.0) < 10.0  # starts facing -Y
    assert 60.0 < turn < 120.0, turn  # left turn = counter-clockwise about +Z


def test_real_contacts_pinning_reduces_foot_slide(scene):
    joints = bandai_clip("walk-turn-left_active_024")
    from salad_model.motion.motion_process import foot_contacts

    contacts = np.concatenate([foot_contacts(joints), np.zeros((1, 4))])  # [T-1, 4] -> [T, 4]
    scene.render.fps = 20
    arm = armature.create_smpl22_armature(joints=joints, with_mesh=False)

    def slide(**kw):
        actions.apply_motion(arm, joints, prompt="walk", seed=0, **kw)
        total = 0.0
        prev = None
        for f in range(len(joints)):
            h = world_heads(arm, ["left_ankle", "left_foot", "right_ankle", "right_foot"], 1 + f)
            if prev is not None:
                both = contacts[f] * contacts[f - 1]
                total += float(np.sum(np.linalg.norm((h - prev)[:, :2], axis=-1) * both))
            prev = h
        return total

    before, after = slide(), slide(contacts=contacts)
    assert contacts.sum() > 10 and after < 0.5 * before, (before, after)


def test_real_raise_left_hand_on_mixamo_rig(build_mixamo_rig):
    """Mocap "raise up left hand" on the FBX-like rig: the bone named LeftHand goes up, on the left."""
    joints = bandai_clip("raise-up-left-hand_active_020")
    rig_obj, names = build_mixamo_rig(joints, heading=-45.0)
    bpy.context.scene.render.fps = 20
    actions.apply_motion(rig_obj, joints, prompt="raise left hand", seed=0)
    jb = smpl22.model_to_blender(joints) @ rt.rotation_z(np.deg2rad(-45.0)).T
    top = int(np.argmax(jb[:, 20, 2]))
    bones = [names[j] for j in smpl22.JOINT_NAMES]
    h = world_heads(rig_obj, bones, 1 + top)
    lh, rh = h[smpl22.INDEX["left_wrist"]], h[smpl22.INDEX["right_wrist"]]
    assert lh[2] - rh[2] > 0.5  # left hand above the head, right one down
    segs = [(p, j) for j, p in enumerate(smpl22.PARENTS) if p != -1]
    assert max(float(angle_deg(h[j] - h[p], jb[top, j] - jb[top, p])) for p, j in segs) < 1.0
    # "left" judged by geometry: the raised hand is on the side the rig's left hip is on
    across = h[smpl22.INDEX["left_hip"]] - h[smpl22.INDEX["right_hip"]]
    assert np.dot(lh - h[0], across) > 0.0
