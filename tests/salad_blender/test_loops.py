"""Make Cyclic (salad_blender/loops.py) and apply-to-all-selected-armatures.

The seam is judged on the evaluated rig: after the loop point the pose repeats the clip's start (plus the
ground travel) to 1e-4 m (channel rotations: 1e-6 rad, arccos precision near 1), and the step across the
loop point is an ordinary step (no larger than the largest step inside the clip). Without the cross-fade
the straight synthetic walk jumps by 3.9 times that (checked).
"""

from types import SimpleNamespace

import numpy as np
import pytest
from blender_state import world_heads
from needs import require_module

from benchmarks.bench_retarget import synthetic_walk
from salad_blender import loops, rigs, smpl22
from salad_blender import retarget as rt


@pytest.fixture(scope="module")
def straight() -> np.ndarray:
    """The synthetic 1 Hz walk without its turn: a motion that can loop (a turning walk cannot)."""
    return synthetic_walk(196, turn_deg=0.0)


def walk_result(walk: np.ndarray, fps: float = 24.0) -> rt.RetargetResult:
    """The synthetic walk retargeted onto an SMPL-22 rig at rest proportions, at ``fps``."""
    rest = rigs.tpose_joints_from_motion(smpl22.model_to_blender(walk))
    mats = np.broadcast_to(np.eye(4), (22, 4, 4)).copy()
    mats[:, :3, 3] = rest
    rig = rt.RigRest(list(smpl22.JOINT_NAMES), np.array(smpl22.PARENTS), mats)
    return rt.resample(rt.retarget(walk, rig, rigs.SMPL22_MAP), fps)


def rotation_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (radians) between unit quaternions [..., 4] (q and -q are the same rotation)."""
    return 2.0 * np.arccos(np.clip(np.abs(np.sum(a * b, -1)), 0.0, 1.0))


def test_loop_closes_and_keeps_the_middle(straight):
    res = walk_result(straight)
    blend = 12
    out = loops.make_cyclic(res, blend, up_local=np.array([0.0, 0.0, 1.0]))
    loop = out.num_frames - 1
    assert loop == loops.best_loop_point(res.quats, blend) and 0.6 * res.num_frames < loop <= res.num_frames - blend
    assert rotation_distance(out.quats[-1], out.quats[0]).max() < 1e-6  # last key = first key
    travel = out.root_location[-1] - out.root_location[0]
    assert abs(travel[2]) < 1e-12  # only ground travel is offset per cycle
    assert np.linalg.norm(travel[:2]) > 1.0  # the walk travels
    # the middle is the original motion, untouched; key 0 is the original frame at the loop point
    assert np.array_equal(out.root_location[blend:loop], res.root_location[blend:loop])
    assert rotation_distance(out.quats[blend:loop], res.quats[blend:loop]).max() < 1e-6
    assert rotation_distance(out.quats[0], res.quats[loop]).max() < 1e-6
    # steps: across the loop point (key L-1 → L = key 0 of the next cycle) and at the end of the fade
    steps = rotation_distance(out.quats[1:], out.quats[:-1]).max(axis=1)
    inner = rotation_distance(res.quats[1:], res.quats[:-1]).max(axis=1).max()
    assert steps.max() <= 1.5 * inner
    raw_seam = rotation_distance(res.quats[-1], res.quats[0]).max()
    assert raw_seam > 3 * inner  # (3.9x) the plain clip does not loop: the fade is what closes it


@pytest.mark.parametrize("blend", [0, 200])
def test_bad_blend_is_refused(walk, blend):
    with pytest.raises(ValueError, match="blend"):
        loops.make_cyclic(walk_result(walk), blend, up_local=np.array([0.0, 0.0, 1.0]))


def test_cyclic_action_plays_seamlessly_in_blender(scene, straight):
    require_module("bpy")
    from salad_blender import actions, armature

    scene.render.fps, scene.render.fps_base = 24, 1.0
    arm = armature.create_smpl22_armature(joints=straight, with_mesh=False)
    act = actions.apply_motion(arm, straight, prompt="walk", scene=scene, cyclic_blend=12, start_frame=1)
    assert act["salad_cyclic"] == 12
    fcs = actions.action_fcurves(act)
    loc = [fc for fc in fcs if fc.data_path.endswith('"pelvis"].location')]
    assert all(fc.modifiers and fc.modifiers[0].type == "CYCLES" for fc in fcs if len(fc.keyframe_points) > 1)
    assert {fc.modifiers[0].mode_after for fc in loc} == {"REPEAT_OFFSET"}
    first, last = act.frame_range
    period = int(round(last - first))
    bones = list(smpl22.JOINT_NAMES)
    start = np.array([world_heads(arm, bones, 1 + k) for k in range(4)])
    after = np.array([world_heads(arm, bones, 1 + period + k) for k in range(4)])
    travel = after[0, 0] - start[0, 0]
    assert abs(travel[2]) < 1e-4 and np.linalg.norm(travel[:2]) > 1.0
    assert np.abs(after - start - travel).max() < 1e-4  # the next cycle repeats the start, moved on
    inside = np.array([world_heads(arm, bones, f) for f in range(1, period, 7)])
    widest = np.abs(np.diff(inside - inside[:, :1], axis=0)).max() / 7  # pose change per frame (pelvis-relative)
    seam = [world_heads(arm, bones, f) for f in (period, period + 1)]
    rel = [h - h[:1] for h in seam]
    assert np.abs(rel[1] - rel[0]).max() < 2.0 * widest


def _second_rig(walk, name="B", offset=(2.0, 0.0, 0.0)):  # noqa: ANN001, ANN202
    from salad_blender import armature

    return armature.create_smpl22_armature(name, joints=walk, with_mesh=False, location=offset)


def test_all_selected_armatures_get_their_own_action(scene, walk):
    require_module("bpy")
    import bpy

    from salad_blender.blender_data import place_motion
    from salad_blender.inputs import Target

    a, b = _second_rig(walk, "A", (0.0, 0.0, 0.0)), _second_rig(walk, "B", (2.0, 0.0, 0.0))
    old = bpy.data.actions.new("B's own keys")
    b.animation_data_create().action = old
    target = Target(kind="armature", armature="A", rig="smpl22", others=("B",), other_rigs={"B": "smpl22"},
                    scene=scene.name)
    act = place_motion({"joints": walk}, target, prompt="walk", meta={}, model="demo", name="walk", edits=[],
                       extra={})
    made = a.animation_data.action, b.animation_data.action
    assert made[0] == act and made[1] not in (act, old) and old.use_fake_user
    assert made[1]["salad_prompt"] == "walk"
    # each plays the walk where it stands: same motion, 2 m apart at frame 1
    pa, pb = world_heads(a, ["pelvis"], 1)[0], world_heads(b, ["pelvis"], 1)[0]
    assert np.allclose(pb - pa, [2.0, 0.0, 0.0], atol=1e-4)


def test_a_failing_armature_undoes_the_others(scene, walk):
    require_module("bpy")
    import bpy

    from salad_blender.blender_data import place_motion
    from salad_blender.inputs import Target
    from salad_blender.rigs import RigError

    a, b = _second_rig(walk, "A", (0.0, 0.0, 0.0)), _second_rig(walk, "B", (2.0, 0.0, 0.0))
    mine = bpy.data.actions.new("A's own keys")
    a.animation_data_create().action = mine
    b.data.bones["left_knee"].name = "knee_renamed"  # B can no longer take the motion
    scene.frame_start, scene.frame_end = 5, 9
    n_actions = len(bpy.data.actions)
    target = Target(kind="armature", armature="A", rig="smpl22", others=("B",), other_rigs={"B": "smpl22"},
                    scene=scene.name, scene_range="set")
    with pytest.raises(RigError, match="knee"):
        place_motion({"joints": walk}, target, prompt="walk", meta={}, model="demo", name="walk", edits=[],
                     extra={})
    assert a.animation_data.action == mine and len(bpy.data.actions) == n_actions
    assert (scene.frame_start, scene.frame_end) == (5, 9)


def test_selected_armatures_follow_meshes_and_skip_others(scene, walk):
    require_module("bpy")
    import bpy

    from salad_blender.settings import selected_armatures

    a = _second_rig(walk, "A")
    body = bpy.data.objects.new("Body", bpy.data.meshes.new("Body"))
    scene.collection.objects.link(body)
    body.parent = _second_rig(walk, "B")
    empty = bpy.data.objects.new("Empty", None)
    ctx = SimpleNamespace(selected_objects=[a, body, empty, a])
    assert selected_armatures(ctx) == ("A", "B")


def test_panel_settings_become_the_target(scene, walk):
    """Make Cyclic and All Selected Armatures reach the job's Target (what Generate sends on)."""
    require_module("bpy")
    import bpy

    import salad_blender
    from salad_blender.settings import target_from

    salad_blender.register()
    try:
        a, b = _second_rig(walk, "A"), _second_rig(walk, "B", (2.0, 0.0, 0.0))
        for o in (a, b):
            o.select_set(True)
        bpy.context.view_layer.objects.active = a
        s = scene.salad
        s.target, s.rig_preset = "SELECTED", "AUTO"
        t = target_from(bpy.context, s)
        assert (t.cyclic_blend, t.others) == (0, ())
        s.make_cyclic, s.cyclic_blend, s.all_selected = True, 8, True
        t = target_from(bpy.context, s)
        assert t.cyclic_blend == 8 and t.armature == "A" and set(t.others) == {"A", "B"}
    finally:
        salad_blender.unregister()
