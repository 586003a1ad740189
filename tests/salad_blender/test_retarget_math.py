"""Retarget maths the main retarget tests left open (found by the mutation run, tools/mutation.py):
slerp itself, resampling at near-equal frame rates, continuity through half turns, FK of partial frame sets
and of rigs listed children-first, placement scale from partial legs, In Place, spine-only rigs, and foot
pinning's fade, reach and sides. Pure numpy, no bpy.

Tolerances: quaternion maths 1e-12, positions 1e-9 m (float64 throughout).
"""

import warnings

import numpy as np
import pytest
from test_retarget import angle_deg, smpl_rig

from salad_blender import retarget as rt
from salad_blender import rigs, smpl22


def axis_angle(axis, angle) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])


def quat_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 2 * np.arccos(np.clip(np.abs(np.sum(a * b, -1)), 0.0, 1.0))


# ---------------------------------------------------------------------------------------------- slerp



def assert_leg_lengths_kept(out: np.ndarray, src: np.ndarray, leg: tuple[int, int, int], atol: float) -> None:
    """Thigh and shin (hip→knee, knee→ankle) are as long in ``out`` as in ``src``, every frame."""
    hip, knee, ankle = leg
    for p, q in ((hip, knee), (knee, ankle)):
        assert np.allclose(np.linalg.norm(out[:, q] - out[:, p], axis=-1),
                           np.linalg.norm(src[:, q] - src[:, p], axis=-1), atol=atol)

def test_slerp_turns_at_constant_speed_along_the_short_way():
    q0, q1 = axis_angle([0, 0, 1], 0.0), axis_angle([0, 0, 1], 2.0)  # 2 rad apart: not a lerp
    for t in (0.0, 0.25, 0.5, 0.9, 1.0):
        q = rt.slerp(q0, q1, t)
        assert np.allclose(q, axis_angle([0, 0, 1], 2.0 * t), atol=1e-12)
        assert abs(np.linalg.norm(q) - 1.0) < 1e-12
    # -q1 is the same rotation: slerp still takes the short way and lands on the same rotations
    assert np.allclose(rt.slerp(q0, -q1, 0.25), axis_angle([0, 0, 1], 0.5), atol=1e-12)
    assert np.allclose(rt.slerp(q0, axis_angle([0, 0, 1], 5.0), 0.5), axis_angle([0, 0, 1], 2.5 - np.pi),
                       atol=1e-12) or np.allclose(-rt.slerp(q0, axis_angle([0, 0, 1], 5.0), 0.5),
                                                  axis_angle([0, 0, 1], 2.5 - np.pi), atol=1e-12)


def test_slerp_is_per_quaternion_over_a_batch():
    rng = np.random.default_rng(0)
    q0 = rng.normal(size=(5, 3, 4))
    q1 = rng.normal(size=(5, 3, 4))
    q0 /= np.linalg.norm(q0, axis=-1, keepdims=True)
    q1 /= np.linalg.norm(q1, axis=-1, keepdims=True)
    t = rng.uniform(size=(5, 3))
    out = rt.slerp(q0, q1, t)
    for i in range(5):
        for k in range(3):
            assert np.allclose(out[i, k], rt.slerp(q0[i, k], q1[i, k], t[i, k]), atol=1e-12)
            total = quat_angle(q0[i, k], q1[i, k])
            assert abs(quat_angle(q0[i, k], out[i, k]) - t[i, k] * total) < 1e-9  # constant speed


def test_slerp_of_equal_keys_is_that_key_without_warnings():
    """Held poses (equal keys) are the common case: the result is the key itself, at every t, silently."""
    q = axis_angle([1, 2, 3], 0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = rt.slerp(np.stack([q] * 3), np.stack([q] * 3), np.array([0.0, 0.5, 1.0]))
    assert np.allclose(out, q, atol=1e-12)


# --------------------------------------------------------------------------------------- resampling


def _spin(frames: int, fps: float, bones: int = 2) -> rt.RetargetResult:
    """A result turning each bone about Z at 1 rad/s (quaternions kept with w >= 0: they flip sign at pi)."""
    t = np.arange(frames) / fps
    q = np.stack([np.stack([axis_angle([0, 0, 1], a * (b + 1)) for a in t]) for b in range(bones)], axis=1)
    q *= np.where(q[..., :1] < 0, -1.0, 1.0)
    loc = np.stack([t, 2 * t, np.zeros_like(t)], axis=-1)
    return rt.RetargetResult([f"b{b}" for b in range(bones)], q, "b0", loc, fps,
                             rt.Placement(scale=1.3, heading=0.4, origin=np.array([1.0, 2.0, 0.0])))


@pytest.mark.parametrize("src,dst,frames", [(24.0, 23.976, 97), (30.0, 29.97, 121), (20.0, 20.5, 101)])
def test_resample_between_near_equal_rates_changes_the_timing(src, dst, frames):
    """23.976 is not 24: the keys must move to the new frame times (a 1-fps tolerance would keep them)."""
    res = _spin(frames, src)
    out = rt.resample(res, dst)
    duration = (frames - 1) / src
    assert out.fps == dst and out.num_frames == int(np.floor(duration * dst + 1e-6)) + 1
    t = np.arange(out.num_frames) / dst
    assert np.allclose(out.root_location[:, 0], t, atol=1e-9)  # x = time: lerp at the new instants
    assert out.placement is res.placement  # where and how large the motion lands is kept


def test_resampled_quaternions_stay_continuous_in_time():
    res = _spin(80, 20.0)  # bone 1 turns 2 rad/s: crosses pi (a sign flip in the input) at 1.57 s
    assert (np.sum(res.quats[1:] * res.quats[:-1], -1) < 0).any()
    out = rt.resample(res, 24.0)
    assert (np.sum(out.quats[1:] * out.quats[:-1], -1) > 0).all()
    t = np.arange(out.num_frames) / 24.0
    for b in range(2):
        expected = np.stack([axis_angle([0, 0, 1], a * (b + 1)) for a in t])
        assert quat_angle(out.quats[:, b], expected).max() < 1e-6  # arccos near 1: ~3e-8 rad resolution


# ----------------------------------------------------------------------------------- FK and placement


def _chain_rig(order: list[int]) -> rt.RigRest:
    """A 4-bone chain (0 -> 1 -> 2 -> 3 along +Y, 0.5 apart) whose bones are stored in ``order``."""
    n = len(order)
    pos = {b: i for i, b in enumerate(order)}
    rest = np.zeros((n, 4, 4))
    parents = np.full(n, -1)
    for b in range(n):
        rest[pos[b]] = np.eye(4)
        rest[pos[b], 1, 3] = 0.5 * b
        if b:
            parents[pos[b]] = pos[b - 1]
    return rt.RigRest([f"bone{b}" for b in order], parents, rest)


def test_fk_does_not_depend_on_the_order_bones_are_stored_in():
    bend = np.stack([axis_angle([0, 0, 1], np.pi / 2)] * 3)  # each bone turns 90 degrees about Z
    results = []
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
        rig = _chain_rig(order)
        res = rt.RetargetResult(["bone0", "bone1", "bone2"], np.stack([bend]), "bone0", np.zeros((1, 3)), 20.0,
                                rt.Placement())
        heads = rt.forward_kinematics(rig, res)[0]
        results.append(np.stack([heads[rig.index[f"bone{b}"]] for b in range(4)]))
    expected = np.array([[0, 0, 0], [-0.5, 0, 0], [-0.5, -0.5, 0], [0, -0.5, 0]])
    for r in results:
        assert np.allclose(r, expected, atol=1e-12)


def test_fk_of_chosen_frames_equals_those_rows_of_the_full_fk():
    rig = _chain_rig([0, 1, 2, 3])
    res = _spin(10, 20.0, bones=3)
    res = rt.RetargetResult(["bone0", "bone1", "bone2"], res.quats, "bone0", res.root_location, 20.0,
                            rt.Placement())
    full = rt.forward_kinematics(rig, res)
    some = rt.forward_kinematics(rig, res, frames=np.array([7, 2]))
    assert some.shape == (2, 4, 3) and np.array_equal(some, full[[7, 2]])


def test_placement_scales_turns_and_moves():
    p = rt.Placement(scale=2.0, heading=np.pi / 2, origin=np.array([1.0, 0.0, 3.0]))
    out = p.apply(np.array([[1.0, 0.0, 0.5], [0.0, 0.0, 0.0]]))
    assert np.allclose(out, [[1.0, 2.0, 4.0], [1.0, 0.0, 3.0]], atol=1e-12)


def test_leg_length_is_the_mean_of_both_legs():
    joints = np.zeros((3, 22, 3))
    ix = smpl22.INDEX
    for side, shin in (("left", 0.3), ("right", 0.5)):
        joints[:, ix[f"{side}_hip"]] = (0.0, 0.0, 1.0)
        joints[:, ix[f"{side}_knee"]] = (0.0, 0.0, 0.6)
        joints[:, ix[f"{side}_ankle"]] = (0.0, 0.0, 0.6 - shin)
    assert rt.motion_leg_length(joints) == pytest.approx(0.4 + 0.4, abs=1e-12)


# ------------------------------------------------------------------------------------- foot pinning


def _legs(frames: int = 30) -> np.ndarray:
    """Model space (Y up): a body standing still with bent knees (knees forward, +Z), ankles sliding along +X
    at 1 cm per frame, toes 10 cm in front of the ankles. Every pinned target stays within reach."""
    j = np.zeros((frames, 22, 3))
    ix = smpl22.INDEX
    slide = 0.01 * np.arange(frames)
    for side, x in (("left", 0.1), ("right", -0.1)):
        j[:, ix[f"{side}_hip"]] = (x, 0.9, 0.0)
        j[:, ix[f"{side}_knee"]] = (x, 0.5, 0.12)
        j[:, ix[f"{side}_ankle"], 0] = x + slide
        j[:, ix[f"{side}_ankle"], 1] = 0.1
        j[:, ix[f"{side}_foot"]] = j[:, ix[f"{side}_ankle"]] + (0.0, -0.05, 0.1)
    j[:, ix["left_hip"], 0] += slide  # the hip travels along with its foot: the leg stays in reach
    j[:, ix["left_knee"], 0] += slide
    return j


@pytest.mark.parametrize("blend", [0, 2, 3])
def test_a_planted_ankle_holds_its_mean_and_fades_out_over_blend_frames(blend):
    j = _legs()
    c = np.zeros((30, 4))
    c[10:16, 0] = 1  # left ankle planted for frames 10-15
    out = rt.pin_contacts(j, c, blend=blend)
    a = smpl22.INDEX["left_ankle"]
    target = j[10:16, a].mean(axis=0)
    assert np.allclose(out[10:16, a][:, [0, 2]], target[[0, 2]], atol=1e-9)  # held at the run's mean
    for k in range(1, blend + 1):
        w = 1.0 - k / (blend + 1)
        for i, edge in ((10 - k, 10), (15 + k, 15)):
            expected = j[i, a] + w * (target - j[edge, a]) * [1.0, 0.0, 1.0]
            assert np.allclose(out[i, a], expected, atol=1e-9), (k, i)
    assert np.allclose(out[:, a, 1], j[:, a, 1], atol=1e-12)  # heights never change
    untouched = [i for i in range(30) if not 10 - blend <= i <= 15 + blend]
    assert np.array_equal(out[untouched], j[untouched])


def test_runs_at_the_clip_ends_fade_only_inside_the_clip():
    j = _legs(12)
    c = np.zeros((12, 4))
    c[1:4, 0] = 1  # starts one frame in: the fade reaches frame 0, not past it
    c[9:11, 0] = 1  # ends one frame before the end: the fade reaches frame 11
    out = rt.pin_contacts(j, c, blend=3)
    a = smpl22.INDEX["left_ankle"]
    t1, t2 = j[1:4, a].mean(axis=0), j[9:11, a].mean(axis=0)
    assert np.allclose(out[0, a], j[0, a] + 0.75 * (t1 - j[1, a]) * [1, 0, 1], atol=1e-9)
    assert np.allclose(out[11, a], j[11, a] + 0.75 * (t2 - j[10, a]) * [1, 0, 1], atol=1e-9)
    assert np.allclose(out[5, a], j[5, a] + 0.5 * (t1 - j[3, a]) * [1, 0, 1], atol=1e-9)  # nearer run 1
    assert np.allclose(out[7, a], j[7, a] + 0.5 * (t2 - j[9, a]) * [1, 0, 1], atol=1e-9)  # nearer run 2


def test_the_right_foot_is_pinned_when_only_it_is_planted_and_the_knee_keeps_bending_forward():
    j = _legs()
    c = np.zeros((30, 4))
    c[5:20, 3] = 1  # right toe planted; the left leg has no contact at all
    out = rt.pin_contacts(j, c, blend=0)
    ix = smpl22.INDEX
    toe, ankle, knee, hip = (ix[f"right_{n}"] for n in ("foot", "ankle", "knee", "hip"))
    target = j[5:20, toe].mean(axis=0)
    assert np.allclose(out[5:20, toe][:, [0, 2]], target[[0, 2]], atol=1e-9)
    # the ankle moves with the planted toe (rigid foot), the knee stays in front of the hip-ankle line
    assert np.allclose(out[5:20, toe] - out[5:20, ankle], j[5:20, toe] - j[5:20, ankle], atol=1e-9)
    assert (out[5:20, knee, 2] > 0.05).all()
    assert_leg_lengths_kept(out, j, (hip, knee, ankle), atol=1e-9)


def test_legs_keep_their_lengths_when_the_pinned_point_is_out_of_reach():
    """Targets nearer the hip than |thigh - shin| or farther than thigh + shin: the leg stays rigid."""
    j = _legs(6)
    ix = smpl22.INDEX
    h, k, a, f = (ix[f"left_{n}"] for n in ("hip", "knee", "ankle", "foot"))
    j[:, k] = j[:, h] + (0.0, -0.6, 0.1)  # thigh ~0.61, shin ~0.2 (ankle near the knee)
    j[:, a] = j[:, k] + (0.0, -0.15, 0.13)
    j[:, a, 0] += np.array([0.0, 0.0, 0.0, 0.5, 0.5, 0.5])  # the run's mean lies far outside the leg's reach
    j[:, f] = j[:, a] + (0.0, -0.05, 0.1)
    c = np.zeros((6, 4))
    c[:, 0] = 1
    out = rt.pin_contacts(j, c, blend=0)
    assert_leg_lengths_kept(out, j, (h, k, a), atol=2e-6)
    near = j.copy()
    near[:, a] = near[:, h] + (0.0, -0.1, 0.0)  # 0.1 from the hip, |thigh - shin| ~0.1: too near
    near[:, k] = near[:, h] + (0.0, -0.6, 0.1)
    near[:, a, 0] += np.array([0.0, 0.0, 0.0, 0.05, 0.05, 0.05])
    out = rt.pin_contacts(near, c, blend=0)
    assert_leg_lengths_kept(out, near, (h, k, a), atol=2e-6)


def test_contacts_of_the_wrong_shape_are_refused_by_name():
    with pytest.raises(ValueError) as err:
        rt.pin_contacts(_legs(5), np.zeros((5, 2)))
    assert str(err.value) == "contacts must be [T, 4] for T = 5, got [5, 2]"


def _leg_rig(drop: tuple[str, ...] = ()) -> tuple[rt.RigRest, dict[str, str]]:
    """Bones at joint positions (Blender space, Z up): left leg straight 0.9 m; right leg bent, 0.894 m along
    thigh + shin but 0.8 m hip to ankle. ``drop``: joints left out of the bone map."""
    heads = {"pelvis": (0, 0, 1.0), "spine1": (0, 0, 1.2), "left_hip": (0.1, 0, 1.0), "left_knee": (0.1, 0, 0.5),
             "left_ankle": (0.1, 0, 0.1), "right_hip": (-0.1, 0, 1.0), "right_knee": (-0.1, -0.2, 0.6),
             "right_ankle": (-0.1, 0, 0.2)}
    rest = np.stack([np.eye(4)] * len(heads))
    rest[:, :3, 3] = list(heads.values())
    rig = rt.RigRest(list(heads), np.full(len(heads), -1), rest)
    return rig, {j: j for j in heads if j not in drop}


@pytest.mark.parametrize("drop,rig_leg", [
    ((), (0.9 + 2 * np.hypot(0.2, 0.4)) / 2),  # both legs, each along its bones
    (("right_knee",), (0.9 + 0.8) / 2),  # no knee: hip to ankle
    (("left_hip",), 2 * np.hypot(0.2, 0.4)),  # a leg without its hip or ankle does not count
    (("left_ankle",), 2 * np.hypot(0.2, 0.4)),
    (("left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle"), None),  # no legs: scale 1
])
def test_placement_scale_is_rig_leg_over_motion_leg(drop, rig_leg):
    rig, bone_map = _leg_rig(drop)
    motion = np.zeros((3, 22, 3))
    for side, x in (("left", 0.1), ("right", -0.1)):  # straight legs of 1 m
        for joint, z in (("hip", 1.0), ("knee", 0.5), ("ankle", 0.0)):
            motion[:, smpl22.INDEX[f"{side}_{joint}"]] = (x, 0.0, z)
    p = rt.auto_placement(rig, bone_map, motion)
    assert p.scale == pytest.approx(1.0 if rig_leg is None else rig_leg, abs=1e-12)
    assert np.allclose(p.origin, [0.0, 0.0, 0.0])  # below the pelvis, on the armature's plane


def test_retarget_refuses_bad_joints_and_maps_by_name():
    rig, bone_map = _leg_rig()
    with pytest.raises(ValueError) as err:
        rt.retarget(np.zeros((4, 21, 3)), rig, bone_map)
    assert str(err.value) == "expected joints of shape [T, 22, 3], got [4, 21, 3]"
    with pytest.raises(ValueError) as err:
        rt.retarget(np.zeros((4, 22, 3)), rig, {"left_hip": "left_hip"})
    assert str(err.value) == "the bone map must map 'pelvis' (the root bone that carries the translation)"
    with pytest.raises(ValueError) as err:
        rt.retarget(np.zeros((4, 22, 3)), rig, {"pelvis": "pelvis", "head": "Head", "neck": "Neck"})
    assert str(err.value) == "bones not in the armature: ['Head', 'Neck']"


@pytest.mark.parametrize("frames", [1, 2, 5])
def test_quat_continuity_of_short_tracks_and_along_a_chosen_axis(frames):
    q = np.stack([axis_angle([0, 0, 1], 0.3 * i) for i in range(frames)])
    q[1::2] *= -1  # every other key stored with the opposite sign
    out = rt.quat_continuity(q[:, None], axis=0)[:, 0]  # [T, 1 bone, 4]
    assert np.allclose(np.abs(out), np.abs(q)) and (np.sum(out[1:] * out[:-1], -1) > 0).all()
    assert np.array_equal(out[0], q[0])  # the first key keeps its sign
    moved = rt.quat_continuity(np.moveaxis(q[:, None], 0, 1), axis=1)  # time on axis 1: same result
    assert np.array_equal(np.moveaxis(moved, 1, 0)[:, 0], out)


def test_swing_onto_the_opposite_direction_is_a_half_turn():
    for a in ([0, 0, 1.0], [1.0, 0, 0], [0.3, -0.5, 0.8]):
        a = np.asarray(a) / np.linalg.norm(a)
        r = rt.swing(a, -a)
        assert np.isfinite(r).all() and np.allclose(r @ a, -a, atol=1e-12)
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(r), 1.0)


def test_in_place_removes_only_the_ground_travel():
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(30, 22, 3))
    joints[:, :, 0] += np.linspace(0, 5, 30)[:, None]  # walks along X
    out = rt.without_root_travel(joints)
    assert np.abs(out[:, 0, [0, 2]] - joints[0, 0, [0, 2]]).max() < 1e-12  # pelvis stays over its start
    assert np.allclose(out[:, :, 1], joints[:, :, 1])  # heights unchanged
    assert np.allclose(out - out[:, :1], joints - joints[:, :1])  # the pose relative to the pelvis unchanged


def test_a_rig_with_only_a_spine_follows_the_spine(walk):
    """Pelvis with a single mapped child (no legs, no arms): the pelvis turns by the swing onto its spine."""
    jb = smpl22.model_to_blender(walk[:30])
    rig = smpl_rig(rigs.tpose_joints_from_motion(smpl22.model_to_blender(walk)))
    spine = {j: j for j in ("pelvis", "spine1", "spine2", "spine3", "neck", "head")}
    res = rt.retarget(walk[:30], rig, spine)
    fk = rt.forward_kinematics(rig, res)
    for a, b in (("pelvis", "spine1"), ("spine3", "neck"), ("neck", "head")):
        ia, ib = smpl22.INDEX[a], smpl22.INDEX[b]
        assert angle_deg(fk[:, ib] - fk[:, ia], jb[:, ib] - jb[:, ia]).max() < 1e-3


def test_the_fade_moves_across_the_ground_only_and_a_single_frame_keeps_its_shape():
    j = _legs()
    a = smpl22.INDEX["left_ankle"]
    j[:, a, 1] += 0.02 * np.sin(np.arange(30))  # the ankle bobs ...
    j[:, a, 2] += 0.005 * np.arange(30)  # ... and drifts forward while it slides sideways
    c = np.zeros((30, 4))
    c[10:16, 0] = 1
    out = rt.pin_contacts(j, c, blend=2)
    target = j[10:16, a].mean(axis=0)
    for i, edge, w in ((9, 10, 2 / 3), (8, 10, 1 / 3), (16, 15, 2 / 3), (17, 15, 1 / 3)):
        assert np.allclose(out[i, a], j[i, a] + w * (target - j[edge, a]) * [1.0, 0.0, 1.0], atol=1e-9), i
    one = np.stack([axis_angle([0, 0, 1], 0.1 * b) for b in range(3)])[None]  # [1 frame, 3 bones, 4]
    assert np.array_equal(rt.quat_continuity(one, axis=0), one)


def test_keys_stay_continuous_through_a_turn_past_half_a_circle():
    """A walk turning 300 degrees: the pelvis's quaternion passes w = 0, where its canonical sign flips."""
    from benchmarks.bench_retarget import synthetic_walk

    walk = synthetic_walk(80, turn_deg=300.0)
    jb = smpl22.model_to_blender(walk)
    rig = smpl_rig(rigs.tpose_joints_from_motion(jb))
    res = rt.retarget(walk, rig, rigs.SMPL22_MAP)
    assert np.all(np.sum(res.quats[1:] * res.quats[:-1], -1) > 0.0)
    assert (np.sign(rt.quat_from_matrix(rt.matrix_from_quat(res.quats[:, 0]))[:, 0]) != np.sign(
        res.quats[:, 0, 0])).any()  # the canonical (w >= 0) form did flip somewhere: the check is not empty
    assert np.abs(rt.forward_kinematics(rig, res) - jb).max() < 1e-5


def test_legs_keep_their_lengths_when_the_pinned_point_is_nearer_the_hip_than_the_leg_can_fold():
    """A short thigh and a long shin (|thigh - shin| = 0.25 m): the ankle swings ±0.3 m sideways during one
    contact, so the pinned point (the run's mean) lies 0.05 m from the hip, nearer than the folded leg
    reaches. The ankle stops at the fold (0.25 m) and both bones keep their lengths (2e-6 m)."""
    j = _legs(6)
    ix = smpl22.INDEX
    h, k, a, f = (ix[f"left_{n}"] for n in ("hip", "knee", "ankle", "foot"))
    j[:, k] = j[:, h] + (0.0, -0.05, 0.0)
    j[:, a] = j[:, h] + (0.0, -0.05, 0.0)
    j[:, a, 0] += np.array([0.3, -0.3, 0.3, -0.3, 0.3, -0.3])
    j[:, f] = j[:, a] + (0.0, -0.05, 0.1)
    c = np.zeros((6, 4))
    c[:, 0] = 1
    out = rt.pin_contacts(j, c, blend=0)
    assert_leg_lengths_kept(out, j, (h, k, a), atol=2e-6)
    assert np.allclose(np.linalg.norm(out[:, a] - out[:, h], axis=-1), 0.25, atol=1e-5)
