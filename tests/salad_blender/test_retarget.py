"""Retargeting core (pure numpy): tables, rotation maths, exact FK round trips, rig presets, sides.

Tolerances: rotations 1e-9 (float64 maths), FK 1e-5 m (float32 input), directions 1e-3 degrees.
"""

import numpy as np
import pytest

from salad_blender import retarget as rt
from salad_blender import rigs, smpl22


def random_rotations(n: int, seed: int = 0) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return rt.matrix_from_quat(q)


def smpl_rig(rest_world: np.ndarray, world: np.ndarray | None = None, seed: int = 1) -> rt.RigRest:
    """An SMPL-22 RigRest with bones head->child and random rolls (like ours, but rolled)."""
    rng = np.random.default_rng(seed)
    mats = np.zeros((22, 4, 4))
    for j in range(22):
        ch = smpl22.children(j)
        tail = rest_world[ch[0]] if ch else rest_world[j] + [0.0, 0.0, 0.1]
        roll = rt.matrix_from_quat(np.array([np.cos(a := rng.uniform(-1.5, 1.5)), 0.0, np.sin(a), 0.0]))
        mats[j, :3, :3] = rt.swing(np.array([0.0, 1.0, 0.0]), tail - rest_world[j]) @ roll
        mats[j, :3, 3] = rest_world[j]
        mats[j, 3, 3] = 1.0
    return rt.RigRest(list(smpl22.JOINT_NAMES), np.array(smpl22.PARENTS), mats,
                      np.eye(4) if world is None else world)


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, -1), -1.0, 1.0)))


# ---------------------------------------------------------------------------------------------- tables


def test_smpl22_copy_matches_salad_model():
    """The add-on's deliberate copy must equal the model's tables (names, parents, mirror, contacts)."""
    from salad_model.motion import skeleton as sk
    assert smpl22.JOINT_NAMES == sk.T2M.joint_names
    assert smpl22.PARENTS == sk.T2M.parents
    assert smpl22.MIRROR == sk.T2M.mirror
    assert smpl22.CONTACT_JOINTS == sk.T2M.contact_joints
    assert smpl22.FPS == sk.T2M.fps


def test_model_to_blender_is_proper_rotation_keeping_left_left():
    m = smpl22.MODEL_TO_BLENDER
    assert np.allclose(m @ m.T, np.eye(3)) and np.isclose(np.linalg.det(m), 1.0)
    pts = np.random.default_rng(0).normal(size=(5, 3))
    assert np.allclose(smpl22.model_to_blender(pts), pts @ m.T)
    assert np.allclose(smpl22.blender_to_model(smpl22.model_to_blender(pts)), pts)
    # Facing +Z, up +Y, left +X in the model -> facing -Y, up +Z, left still +X in Blender.
    assert np.allclose(smpl22.model_to_blender([0, 0, 1]), [0, -1, 0])
    assert np.allclose(smpl22.model_to_blender([0, 1, 0]), [0, 0, 1])
    assert np.allclose(smpl22.model_to_blender([1, 0, 0]), [1, 0, 0])


# --------------------------------------------------------------------------------------------- maths


def test_quat_matrix_round_trip_including_half_turns():
    r = random_rotations(500)
    half = rt.swing(np.array([[1.0, 0, 0], [0, 1.0, 0]]), np.array([[-1.0, 0, 0], [0, -1.0, 0]]))
    r = np.concatenate([r, half, np.eye(3)[None]])
    q = rt.quat_from_matrix(r)
    assert np.allclose(np.linalg.norm(q, axis=-1), 1.0)
    assert np.abs(rt.matrix_from_quat(q) - r).max() < 1e-9


def test_quat_continuity_removes_sign_jumps_only():
    q = rt.quat_from_matrix(random_rotations(50, seed=3))
    q[::3] *= -1.0
    fixed = rt.quat_continuity(q)
    assert np.all(np.sum(fixed[1:] * fixed[:-1], -1) >= 0.0)
    assert np.allclose(np.abs(np.sum(fixed * q, -1)), 1.0)  # same rotations


def test_kabsch_and_swing():
    r = random_rotations(20, seed=4)
    src = np.random.default_rng(5).normal(size=(3, 3))
    dst = np.einsum("tij,kj->tki", r, src)
    assert np.abs(rt.kabsch(src, dst) - r).max() < 1e-9
    a = np.random.default_rng(6).normal(size=(100, 3))
    b = np.random.default_rng(7).normal(size=(100, 3))
    b[0] = -a[0]  # exactly opposite
    s = rt.swing(a, b)
    assert np.allclose(np.linalg.det(s), 1.0)
    assert angle_deg(np.einsum("tij,tj->ti", s, a), b).max() < 1e-5
    # minimal: the rotation axis is perpendicular to both vectors (no twist added)
    ax = rt.quat_from_matrix(s[1:])[:, 1:]
    assert np.abs(np.sum(ax * a[1:], -1) / np.linalg.norm(a[1:], axis=-1)).max() < 1e-9


# ------------------------------------------------------------------------------------------ retarget


def test_retarget_reproduces_motion_exactly_on_congruent_rig(walk):
    """FK of the retargeted pose == input joints, despite random bone rolls and a turning root."""
    jb = smpl22.model_to_blender(walk)
    rig = smpl_rig(rigs.tpose_joints_from_motion(jb))
    res = rt.retarget(walk, rig, rigs.SMPL22_MAP)
    assert res.quats.shape == (196, 22, 4) and res.root_location.shape == (196, 3)
    assert np.isclose(res.placement.scale, 1.0) and abs(res.placement.heading) < 1e-9
    fk = rt.forward_kinematics(rig, res)
    assert np.abs(fk - jb).max() < 1e-5
    assert np.all(np.sum(res.quats[1:] * res.quats[:-1], -1) >= 0.0)  # continuity
    hips = jb[:, 1] - jb[:, 2]
    assert angle_deg(hips[0], hips[-1]) > 90.0 and np.ptp(jb[:, 0, 0]) > 1.0  # it turns and travels


def test_single_child_bones_swing_without_twist(walk):
    """Twist is inherited from the parent: each single-child bone's basis rotation has no component
    about its own rest segment (positions alone cannot see twist, so check the rotations)."""
    jb = smpl22.model_to_blender(walk)
    rest = rigs.tpose_joints_from_motion(jb)
    rig = smpl_rig(rest)
    res = rt.retarget(walk, rig, rigs.SMPL22_MAP)
    checked = 0
    for k, name in enumerate(res.bone_names):
        j = smpl22.INDEX[name]
        ch = smpl22.children(j)
        if len(ch) != 1:
            continue
        seg_local = rig.rest[j, :3, :3].T @ (rest[ch[0]] - rest[j])
        seg_local /= np.linalg.norm(seg_local)
        twist = res.quats[:, k, 1:] @ seg_local
        assert np.abs(twist).max() < 1e-6, name
        checked += np.abs(res.quats[:, k, 1:]).max() > 0.05  # the bone does rotate (swing)
    assert checked >= 12


def test_retarget_places_motion_at_rig_heading_scale_and_origin(walk):
    """A rig turned 90 deg (facing +X), scaled 2x in its object, standing at (3, 4, 1)."""
    jb = smpl22.model_to_blender(walk)
    rest = rigs.tpose_joints_from_motion(jb)
    world = np.eye(4)
    world[:3, :3] = rt.rotation_z(np.pi / 2) * 2.0
    world[:3, 3] = [3.0, 4.0, 1.0]
    rig = smpl_rig(rest / 2.0, world)  # world-space size = the motion's
    res = rt.retarget(walk, rig, rigs.SMPL22_MAP)
    assert np.isclose(res.placement.scale, 1.0)
    assert np.isclose(res.placement.heading, np.pi / 2)
    fk = rt.forward_kinematics(rig, res)
    expected = jb @ rt.rotation_z(np.pi / 2).T + [3.0, 4.0, 1.0]
    assert np.abs(fk - expected).max() < 1e-5
    # facing -Y turned by +90 deg about Z is +X: frame 0 walks towards +X
    assert fk[10, 0, 0] - fk[0, 0, 0] > 0.3


def test_resample_keeps_time_and_rigidity(walk):
    jb = smpl22.model_to_blender(walk)
    rig = smpl_rig(rigs.tpose_joints_from_motion(jb))
    res = rt.retarget(walk, rig, rigs.SMPL22_MAP)
    for fps, n in ((24.0, 235), (25.0, 244), (30.0, 293), (20.0, 196)):
        r2 = rt.resample(res, fps)
        assert r2.num_frames == n and r2.fps == fps
    r24 = rt.resample(res, 24.0)
    fk = rt.forward_kinematics(rig, r24)
    src = np.arange(0, 196, 5)  # 5 source frames = 6 target frames
    assert np.abs(fk[src * 6 // 5] - jb[src]).max() < 1e-5
    # in between, bones stay rigid (slerp of rotations, not lerp of positions)
    seg = np.linalg.norm(fk[:, 4] - fk[:, 1], axis=-1)
    assert np.ptp(seg) < 1e-6


@pytest.mark.parametrize("fps", [24.0, 30.0])
def test_resample_interpolates_between_source_frames(walk, fps):
    """Poses between source instants lie between their neighbours (issue 20: snapping to the nearest
    source frame, a stepped animation, passed the exact-instant checks above).

    At t = k / fps the source time s = 20 t falls a fraction ``a`` past frame i0; slerped rotations put the
    joints within a chord-vs-arc error of the linear blend of the two source poses: < 5% of that frame's
    largest joint step (1.3% measured), where snapping is off by min(a, 1 - a) >= 15% of it.
    """
    jb = smpl22.model_to_blender(walk)
    rig = smpl_rig(rigs.tpose_joints_from_motion(jb))
    res = rt.retarget(walk, rig, rigs.SMPL22_MAP)
    r = rt.resample(res, fps)
    fk = rt.forward_kinematics(rig, r)
    s = np.arange(r.num_frames) * smpl22.FPS / fps
    i0 = np.floor(s + 1e-9).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(walk) - 1)
    a = s - i0
    between = (a > 0.15) & (a < 0.85)
    assert between.sum() >= r.num_frames // 2
    blend = jb[i0] * (1.0 - a[:, None, None]) + jb[i1] * a[:, None, None]
    err = np.abs(fk - blend).max(axis=(1, 2))[between]
    step = np.abs(jb[i1] - jb[i0]).max(axis=(1, 2))[between]
    assert (err < 0.05 * step).all(), (err / step).max()
    root = res.root_location[i0] * (1.0 - a[:, None]) + res.root_location[i1] * a[:, None]
    assert np.allclose(r.root_location, root, atol=1e-9)


def test_pin_contacts_holds_planted_foot_and_keeps_leg_lengths(walk):
    """Walking in place (root held still) slides the feet; pinning holds them where reachable."""
    j = walk.astype(np.float64)
    j = j - j[:, :1] * np.array([1.0, 0.0, 1.0])  # remove the root's horizontal travel
    contacts = np.zeros((196, 4))
    contacts[20:28, 0] = 1  # left ankle planted for 8 frames
    contacts[60:66, 3] = 1  # right toe planted for 6 frames
    out = rt.pin_contacts(j, contacts)
    for run, joint, side in ((slice(20, 28), "left_ankle", "left"), (slice(60, 66), "right_foot", "right")):
        i = smpl22.INDEX[joint]
        assert np.ptp(j[run, i, 0]) + np.ptp(j[run, i, 2]) > 0.01  # it really slides before
        target = j[run, i].mean(axis=0)
        held = np.abs(out[run, i][:, [0, 2]] - target[[0, 2]]).max(axis=-1) < 1e-6
        # Held still wherever the leg can reach; elsewhere the leg is fully stretched towards it.
        h, k, a = (smpl22.INDEX[f"{side}_{n}"] for n in ("hip", "knee", "ankle"))
        reach = (np.linalg.norm(j[run, k] - j[run, h], axis=-1)
                 + np.linalg.norm(j[run, a] - j[run, k], axis=-1))
        stretched = np.abs(np.linalg.norm(out[run, a] - out[run, h], axis=-1) - reach) < 1e-5
        assert np.all(held | stretched) and held.mean() >= 0.5
        assert np.abs(out[run, i, 1] - j[run, i, 1])[held].max() < 1e-6  # height untouched
    for a, b in ((1, 4), (4, 7), (2, 5), (5, 8), (7, 10), (8, 11)):
        assert np.abs(np.linalg.norm(out[:, b] - out[:, a], axis=-1)
                      - np.linalg.norm(j[:, b] - j[:, a], axis=-1)).max() < 1e-6
    untouched = [i for i in range(22) if i not in (4, 7, 10, 5, 8, 11)]
    assert np.array_equal(out[:, untouched], j[:, untouched])
    assert np.array_equal(out[100:], j[100:]) and np.array_equal(out[:15], j[:15])  # no contacts there


# ------------------------------------------------------------------------------------------- presets


def test_resolve_presets_and_prefixes():
    assert rigs.resolve_bone_map(list(smpl22.JOINT_NAMES)) == ("smpl22", rigs.SMPL22_MAP)
    for prefix in ("mixamorig:", "mixamorig1:", ""):
        names = ["Armature"] + [prefix + b for b in rigs.MIXAMO_MAP.values()] + [prefix + "LeftHandIndex1"]
        preset, m = rigs.resolve_bone_map(names)
        assert preset == "mixamo" and m["pelvis"] == prefix + "Hips"
        assert m["left_wrist"] == prefix + "LeftHand"
    names = list(rigs.RIGIFY_MAP.values()) + ["DEF-pelvis.L", "DEF-spine.005"]
    assert rigs.resolve_bone_map(names) == ("rigify", rigs.RIGIFY_MAP)
    assert rigs.resolve_bone_map(names, "rigify")[0] == "rigify"


def test_resolve_errors_list_missing_bones():
    names = ["mixamorig:" + b for b in rigs.MIXAMO_MAP.values() if b not in ("LeftHand", "Neck")]
    with pytest.raises(rigs.RigError, match="mixamo") as e:
        rigs.resolve_bone_map(names)
    assert "mixamorig:LeftHand" in str(e.value) and "mixamorig:Neck" in str(e.value)
    with pytest.raises(rigs.RigError, match="matches no rig preset"):
        rigs.resolve_bone_map(["Bone", "Bone.001"])
    with pytest.raises(rigs.RigError, match="unknown rig preset"):
        rigs.resolve_bone_map(list(smpl22.JOINT_NAMES), "daz")
    with pytest.raises(rigs.RigError, match="missing bones.*'nope'"):
        rigs.resolve_bone_map(["a"], {"pelvis": "a", "head": "nope"})
    with pytest.raises(rigs.RigError, match="unknown SMPL-22 joint"):
        rigs.resolve_bone_map(["a"], {"pelvis": "a", "tail": "a"})
    with pytest.raises(rigs.RigError, match="pelvis"):
        rigs.resolve_bone_map(["a"], {"head": "a"})


def test_partial_custom_map_skips_unmapped_joints(walk):
    """A rig with fewer spine bones and no toes: spine1 -> spine3 directly, directions still exact."""
    jb = smpl22.model_to_blender(walk)
    rig = smpl_rig(rigs.tpose_joints_from_motion(jb))
    custom = {j: j for j in smpl22.JOINT_NAMES if j not in ("spine2", "left_foot", "right_foot")}
    _, m = rigs.resolve_bone_map(rig.bone_names, custom)
    res = rt.retarget(walk, rig, m)
    assert "spine2" not in res.bone_names
    fk = rt.forward_kinematics(rig, res)
    for a, b in (("spine1", "spine3"), ("spine3", "neck"), ("left_knee", "left_ankle")):
        ia, ib = smpl22.INDEX[a], smpl22.INDEX[b]
        assert angle_deg(fk[:, ib] - fk[:, ia], jb[:, ib] - jb[:, ia]).max() < 1e-3


def test_check_sides_by_geometry(walk):
    jb = smpl22.model_to_blender(walk)
    rest = rigs.tpose_joints_from_motion(jb)
    rigs.check_sides(smpl_rig(rest), rigs.SMPL22_MAP)  # correct: no error
    turned = np.eye(4)
    turned[:3, :3] = rt.rotation_z(2.5)
    rigs.check_sides(smpl_rig(rest, turned), rigs.SMPL22_MAP)  # facing does not matter
    swapped = {j: smpl22.JOINT_NAMES[smpl22.MIRROR[i]] for i, j in enumerate(smpl22.JOINT_NAMES)}
    with pytest.raises(rigs.RigError, match="left/right mismatch") as e:
        rigs.check_sides(smpl_rig(rest), swapped)
    assert "'left_hip' -> bone 'right_hip'" in str(e.value)
    # A mirrored rig (x negated) with honest names is also caught: its "left" is now on its right.
    mirrored = rest * np.array([-1.0, 1.0, 1.0])
    with pytest.raises(rigs.RigError, match="left/right mismatch"):
        rigs.check_sides(smpl_rig(mirrored), rigs.SMPL22_MAP)


def test_tpose_from_motion_has_motion_proportions(walk):
    jb = smpl22.model_to_blender(walk)
    rest = rigs.tpose_joints_from_motion(jb)
    for j, p in enumerate(smpl22.PARENTS[1:], start=1):
        motion_len = np.linalg.norm(jb[:, j] - jb[:, p], axis=-1)
        assert abs(np.linalg.norm(rest[j] - rest[p]) - np.median(motion_len)) < 1e-5
    assert abs(rest[1, 1] - rest[2, 1]) < 1e-9 and rest[1, 0] > rest[2, 0]  # hips along X, left +X
    assert rest[10, 1] < rest[7, 1]  # toes in front (-Y) of the ankles
    assert rest[smpl22.INDEX["left_wrist"], 0] > 0.5  # T-pose arms
