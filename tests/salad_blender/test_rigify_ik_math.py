"""The IK controls' arithmetic on a hand-built leg (no bpy): forward kinematics of the keyed FK controls, the
IK foot riding rigidly on the FK foot, the pole keeping its place in the limb's triangle, location axes, and
which bones, switches and limbs a rig yields. test_rigify.py checks the whole result in Blender on a real
generated rig; these pin each step with hand-made poses.

Tolerance 1e-9 m / 1e-9 (float64 arithmetic on unit-scale numbers)."""

import numpy as np
import pytest

from salad_blender import retarget as rt
from salad_blender import rigify_ik as ik

T = 5
NAMES = ["root", "thigh_fk.L", "shin_fk.L", "foot_fk.L", "ORG-foot.L", "foot_ik.L", "thigh_ik_target.L",
         "thigh_parent.L", "spine", "heel_helper.L", "ORG-spine"]
PARENTS = [-1, 0, 1, 2, 2, 0, 0, 0, 0, 3, 0]
HIP, KNEE, ANKLE = np.array([0.1, 0.0, 1.0]), np.array([0.1, -0.05, 0.55]), np.array([0.1, 0.0, 0.1])
POLE = np.array([0.1, -0.6, 0.55])  # in front of the knee, on the bend side


def _rot(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    q = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])
    return rt.matrix_from_quat(q)


def _mat(r, t):
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, t
    return m


def _rig(root_rot=None, knee=KNEE, pole=POLE):
    """A leg whose bones' rest axes are all different (the maths must not assume any axis convention)."""
    foot_rest = _mat(_rot([1, 2, 0.5], 2.0), ANKLE)
    rest = [_mat(np.eye(3) if root_rot is None else root_rot, [0.0, 0.02, 0.0]),
            _mat(_rot([0.3, 1, 0.2], 0.7), HIP), _mat(_rot([1, 0.1, -0.4], 1.1), knee), foot_rest,
            foot_rest, _mat(_rot([0, 0, 1], 0.4), ANKLE + [0, 0.03, 0]), _mat(_rot([0.5, -1, 0], 0.3), pole),
            _mat(np.eye(3), HIP), _mat(_rot([0.3, 1, 0.2], 0.7), [0, 0.02, 1.1]),
            _mat(_rot([1, 1, 1], 0.9), ANKLE + [0, 0.1, 0]), _mat(_rot([0.3, 1, 0.2], 0.7), [0, 0.02, 1.1])]
    return rt.RigRest(NAMES, np.array(PARENTS), np.stack(rest))


def _quats(seed, n=3, scale=0.6):
    rng = np.random.default_rng(seed)
    q = np.concatenate([np.ones((T, n, 1)), scale * rng.normal(size=(T, n, 3))], axis=-1)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _result(quats, root_loc=None, bones=("thigh_fk.L", "shin_fk.L", "foot_fk.L")):
    loc = np.zeros((T, 3)) if root_loc is None else root_loc
    return rt.RetargetResult(list(bones), quats, "root", loc, 20.0, rt.Placement())


def _limb():
    return ik.Limb("thigh_fk.L", "shin_fk.L", "foot_fk.L", "ORG-foot.L", "foot_ik.L", "thigh_ik_target.L",
                   "thigh_parent.L")


def _pose_from_channels(rig, bone, quats, loc, axes):
    """A bone whose parent is at rest: pose = rest @ basis, its location read in ``axes``."""
    r = rig.rest[rig.index[bone]]
    out = np.broadcast_to(np.eye(4), (len(quats), 4, 4)).copy()
    out[:, :3, :3] = r[:3, :3] @ rt.matrix_from_quat(quats)
    out[:, :3, 3] = r[:3, 3] + loc @ axes.T
    return out


# -- forward kinematics -----------------------------------------------------------------------------


def test_unposed_controls_give_the_rest_pose():
    rig = _rig(root_rot=_rot([0, 0, 1], 0.5))
    q = np.zeros((T, 3, 4))
    q[..., 0] = 1
    m = ik.posed_matrices(rig, _result(q), NAMES)
    assert m.shape == (T, len(NAMES), 4, 4)
    np.testing.assert_allclose(m, np.broadcast_to(rig.rest, m.shape), atol=1e-12)


def test_a_keyed_rotation_turns_the_bone_about_its_head_in_its_own_axes():
    rig = _rig()
    q = np.zeros((T, 3, 4))
    q[..., 0] = 1
    q[:, 0] = _quats(1, 1)[:, 0]  # only the thigh turns
    m = ik.posed_matrices(rig, _result(q), ["thigh_fk.L", "shin_fk.L", "foot_fk.L"])
    r_thigh = rig.rest[1, :3, :3]
    turn = r_thigh @ rt.matrix_from_quat(q[:, 0]) @ r_thigh.T  # the rotation in armature space
    np.testing.assert_allclose(m[:, 0, :3, 3], np.broadcast_to(HIP, (T, 3)), atol=1e-12)  # about its head
    np.testing.assert_allclose(m[:, 1, :3, 3], HIP + (turn @ (KNEE - HIP)), atol=1e-12)
    np.testing.assert_allclose(m[:, 2, :3, 3], HIP + (turn @ (ANKLE - HIP)), atol=1e-12)
    np.testing.assert_allclose(m[:, 2, :3, :3], turn @ rig.rest[3, :3, :3], atol=1e-12)  # children turn along


def test_the_chain_composes_each_bones_turn_and_the_root_moves_everything():
    root_rot = _rot([0, 0, 1], 0.5)
    rig = _rig(root_rot=root_rot)
    q = _quats(2, 4)
    loc = np.random.default_rng(3).normal(size=(T, 3))
    res = _result(q, loc, bones=("thigh_fk.L", "shin_fk.L", "foot_fk.L", "spine"))
    m = ik.posed_matrices(rig, res, ["shin_fk.L", "foot_fk.L", "ORG-foot.L", "ORG-spine", "heel_helper.L",
                                     "foot_ik.L", "thigh_parent.L", "spine"])
    shift = loc @ root_rot.T  # the root's location is keyed in its own rest axes
    a = [rig.rest[i, :3, :3] @ rt.matrix_from_quat(q[:, k]) @ rig.rest[i, :3, :3].T for k, i in enumerate((1, 2, 3))]
    knee = HIP + shift + (a[0] @ (KNEE - HIP))
    ankle = knee + (a[0] @ a[1] @ (ANKLE - KNEE))
    np.testing.assert_allclose(m[:, 0, :3, 3], knee, atol=1e-12)
    np.testing.assert_allclose(m[:, 1, :3, 3], ankle, atol=1e-12)
    np.testing.assert_allclose(m[:, 1, :3, :3], a[0] @ a[1] @ a[2] @ rig.rest[3, :3, :3], atol=1e-12)
    # ORG-spine copies the keyed spine (Copy Transforms): its pose, not its parent's rest offset
    np.testing.assert_allclose(m[:, 7, :3, :3], rig.rest[8, :3, :3] @ rt.matrix_from_quat(q[:, 3]), atol=1e-12)
    np.testing.assert_allclose(m[:, 3], m[:, 7], atol=1e-15)
    # ORG-foot.L's control would be "foot.L", not keyed here: it is the shin's unkeyed child at its rest offset
    np.testing.assert_allclose(m[:, 2], m[:, 0] @ np.linalg.inv(rig.rest[2]) @ rig.rest[4], atol=1e-12)
    # an unkeyed child keeps its rest offset from its (posed) parent; an unkeyed root child moves with the root
    heel = m[:, 1] @ np.linalg.inv(rig.rest[3]) @ rig.rest[9]
    np.testing.assert_allclose(m[:, 4], heel, atol=1e-12)
    np.testing.assert_allclose(m[:, 5, :3, 3], rig.rest[5, :3, 3] + shift, atol=1e-12)
    np.testing.assert_allclose(m[:, 5, :3, :3], np.broadcast_to(rig.rest[5, :3, :3], (T, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(m[:, 6, :3, 3], HIP + shift, atol=1e-12)


def test_an_org_bone_whose_control_is_not_keyed_stays_in_its_own_chain():
    rig = _rig()
    q = _quats(4, 2)
    m = ik.posed_matrices(rig, _result(q, bones=("thigh_fk.L", "shin_fk.L")), ["ORG-spine", "spine"])
    np.testing.assert_allclose(m[:, 0], np.broadcast_to(rig.rest[10], m[:, 0].shape), atol=1e-12)


# -- the IK controls ----------------------------------------------------------------------------------


def _triangle(hip, knee, ankle):
    chord = (ankle - hip) / np.linalg.norm(ankle - hip, axis=-1, keepdims=True)
    off = knee - hip
    bend = off - chord * np.sum(off * chord, axis=-1, keepdims=True)
    bend /= np.linalg.norm(bend, axis=-1, keepdims=True)
    return chord, bend, np.cross(chord, bend)


@pytest.mark.parametrize("local", [False, True])
def test_ik_controls_reproduce_the_fk_foot_and_keep_the_pole_in_the_limbs_triangle(local):
    rig = _rig(root_rot=_rot([0, 0, 1], 0.3))
    q = _quats(5)
    loc = np.random.default_rng(6).normal(scale=0.2, size=(T, 3))
    res = _result(q, loc)
    flags = {"foot_ik.L": local, "thigh_ik_target.L": local}
    keys = ik.ik_keys(rig, res, [_limb()], flags if local else None)
    assert set(keys) == {"foot_ik.L", "thigh_ik_target.L"}
    fk = ik.posed_matrices(rig, res, ["thigh_fk.L", "shin_fk.L", "foot_fk.L"])
    root_axes = rig.rest[0, :3, :3]

    def axes(bone):
        return rig.rest[rig.index[bone], :3, :3] if local else root_axes

    # the IK foot rides rigidly on the FK foot (ORG-foot's rest to foot_ik's rest)
    fq, floc = keys["foot_ik.L"]
    assert fq.shape == (T, 4) and floc.shape == (T, 3)
    want = fk[:, 2] @ np.linalg.inv(rig.rest[4]) @ rig.rest[5]
    got = _pose_from_channels(rig, "foot_ik.L", fq, floc, axes("foot_ik.L"))
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert np.all(np.sum(fq[1:] * fq[:-1], axis=-1) >= 0)  # continuous signs for F-curves
    # the pole keeps its rest rotation, and its place in the (hip, knee, ankle) frame
    pq, ploc = keys["thigh_ik_target.L"]
    np.testing.assert_allclose(np.abs(pq[:, 0]), 1.0, atol=1e-9)
    pole = _pose_from_channels(rig, "thigh_ik_target.L", pq, ploc, axes("thigh_ik_target.L"))[:, :3, 3]
    hip, knee, ankle = fk[:, 0, :3, 3], fk[:, 1, :3, 3], fk[:, 2, :3, 3]
    rest_frame = _triangle(HIP, KNEE, ANKLE)
    pose_frame = _triangle(hip, knee, ankle)
    for r_axis, p_axis in zip(rest_frame, pose_frame, strict=True):
        np.testing.assert_allclose(np.sum((pole - knee) * p_axis, axis=-1), np.dot(POLE - KNEE, r_axis),
                                   atol=1e-9)


def _straight_rig_pose(shin_angles, pole=POLE):
    """A rig whose rest leg is straight, the thigh turned by a random key, the shin bent by ``shin_angles``
    about the armature's X axis (0: the leg stays straight)."""
    straight_knee = np.array([0.1, 0.0, 0.55])
    rig = _rig(knee=straight_knee, pole=pole)
    q = np.zeros((T, 3, 4))
    q[..., 0] = 1
    q[:, 0] = _quats(8, 1, scale=0.3)[:, 0]
    r_shin = rig.rest[2, :3, :3]
    for t, angle in enumerate(shin_angles):  # ankle swings back: the knee bends forward, towards the pole
        q[t, 1] = rt.quat_from_matrix(r_shin.T @ _rot([1, 0, 0], angle) @ r_shin)
    res = _result(q)
    pq, ploc = ik.ik_keys(rig, res, [_limb()])["thigh_ik_target.L"]
    pole = rig.rest[6, :3, 3] + ploc @ rig.rest[0, :3, :3].T
    fk = ik.posed_matrices(rig, res, ["thigh_fk.L", "shin_fk.L", "foot_fk.L"])
    return rig, straight_knee, pole, fk


@pytest.mark.parametrize("raise_pole", [0.0, 0.1])
def test_a_straight_rest_limb_reads_its_bend_from_the_rest_pole(raise_pole):
    """A rest leg with no bend: the rest pole gives the bend's side (its part across the leg: a pole raised
    0.1 m above the knee is still 0.6 m in front of it), so the posed pole sits on the posed bend."""
    rig, knee_rest, pole, fk = _straight_rig_pose(np.linspace(0.3, 0.9, T), POLE + [0, 0, raise_pole])
    hip, knee, ankle = fk[:, 0, :3, 3], fk[:, 1, :3, 3], fk[:, 2, :3, 3]
    chord, side, normal = _triangle(hip, knee, ankle)
    # the rest offset: 0.6 m in front of the knee along the (hinted) bend, raise_pole up the chord (which points down)
    np.testing.assert_allclose(np.sum((pole - knee) * side, axis=-1), 0.6, atol=1e-9)
    np.testing.assert_allclose(np.sum((pole - knee) * normal, axis=-1), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.sum((pole - knee) * chord, axis=-1), -raise_pole, atol=1e-9)


def test_a_straight_posed_limb_turns_the_pole_with_the_thigh():
    """No bend to read: the pole's rest offset from the knee turns with the upper bone (frame 2 is bent)."""
    rig, knee_rest, pole, fk = _straight_rig_pose([0.0, 0.0, 0.5, 0.0, 0.0])
    thigh_turn = fk[:, 0, :3, :3] @ rig.rest[1, :3, :3].T
    straight = [0, 1, 3, 4]
    np.testing.assert_allclose(pole[straight], (fk[:, 1, :3, 3] + thigh_turn @ (POLE - knee_rest))[straight],
                               atol=1e-9)
    hip, knee, ankle = fk[2, 0, :3, 3], fk[2, 1, :3, 3], fk[2, 2, :3, 3]
    _, side, _ = _triangle(hip, knee, ankle)
    assert np.dot(pole[2] - knee, side) == pytest.approx(0.6, abs=1e-9)  # the bent frame reads its bend


def test_triangle_frames_are_orthonormal_and_flag_straight_limbs():
    hip = np.array([[0.0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]])
    knee = np.array([[0.0, -0.1, 0.5], [0, 0, 0.5], [0, -0.0004, 0.5], [0, -0.0006, 0.5]])
    ankle = np.zeros((4, 3))
    f, ok = ik._triangle_frame(hip, knee, ankle, None)
    assert ok.tolist() == [True, False, False, True]  # bent; straight; bends under 1e-3 of the thigh, over it
    frame = [[0, 0, -1], [0, -1, 0], [-1, 0, 0]]  # columns: down the chord, forward (the bend), their normal
    np.testing.assert_allclose(f[0], frame, atol=1e-12)
    np.testing.assert_allclose(f[3], frame, atol=1e-12)
    f2, ok2 = ik._triangle_frame(hip[1], knee[1], ankle[1], np.array([0.0, -0.5, 0.5]))
    assert bool(ok2) is True
    np.testing.assert_allclose(f2, frame, atol=1e-12)
    bent_hint, _ = ik._triangle_frame(hip[0], knee[0], ankle[0], np.array([0.0, 0.5, 0.5]))
    np.testing.assert_allclose(bent_hint, frame, atol=1e-12)  # a bent limb ignores the hint
    np.testing.assert_allclose(ik._unit(np.array([[3.0, 4, 0], [0, 0, 0]])), [[0.6, 0.8, 0], [0, 0, 0]])


# -- which limbs, switches and rest bones -------------------------------------------------------------


def _limb_bones(upper, mid, end, s, pole):
    return [f"{upper}_fk.{s}", f"{mid}_fk.{s}", f"{end}_fk.{s}", f"ORG-{end}.{s}", f"{end}_ik.{s}",
            f"{upper}_parent.{s}", pole]


def test_every_limb_is_found_with_its_bones_and_a_missing_control_drops_it():
    names = (_limb_bones("upper_arm", "forearm", "hand", "L", "upper_arm_ik_pole.L")
             + _limb_bones("upper_arm", "forearm", "hand", "R", "elbow_target.ik.R")
             + _limb_bones("thigh", "shin", "foot", "L", "thigh_ik_target.L") + ["thigh_ik_pole.L"]
             + _limb_bones("thigh", "shin", "foot", "R", "thigh_ik_target.R"))
    limbs = ik.find_limbs(names)
    assert limbs == [
        ik.Limb("upper_arm_fk.L", "forearm_fk.L", "hand_fk.L", "ORG-hand.L", "hand_ik.L", "upper_arm_ik_pole.L",
                "upper_arm_parent.L"),
        ik.Limb("upper_arm_fk.R", "forearm_fk.R", "hand_fk.R", "ORG-hand.R", "hand_ik.R", "elbow_target.ik.R",
                "upper_arm_parent.R"),
        ik.Limb("thigh_fk.L", "shin_fk.L", "foot_fk.L", "ORG-foot.L", "foot_ik.L", "thigh_ik_target.L",
                "thigh_parent.L"),  # the current name wins over an older one
        ik.Limb("thigh_fk.R", "shin_fk.R", "foot_fk.R", "ORG-foot.R", "foot_ik.R", "thigh_ik_target.R",
                "thigh_parent.R"),
    ]
    full = _limb_bones("thigh", "shin", "foot", "R", "thigh_ik_target.R")
    for missing in full:
        assert ik.find_limbs([b for b in full if b != missing]) == [], missing
    assert ik.find_limbs(_limb_bones("thigh", "shin", "foot", "R", "knee_target.ik.R"))[0].pole == "knee_target.ik.R"


def test_switches_put_both_parents_on_root_and_turn_the_pole_on():
    limbs = ik.find_limbs(_limb_bones("thigh", "shin", "foot", "L", "thigh_ik_target.L")
                          + _limb_bones("upper_arm", "forearm", "hand", "R", "upper_arm_ik_target.R"))
    assert ik.switches(limbs) == [
        ("upper_arm_parent.R", "IK_parent", 1.0), ("upper_arm_parent.R", "pole_parent", 1.0),
        ("upper_arm_parent.R", "pole_vector", 1.0),
        ("thigh_parent.L", "IK_parent", 1.0), ("thigh_parent.L", "pole_parent", 1.0),
        ("thigh_parent.L", "pole_vector", 1.0)]
    assert ik.switches([]) == []


def test_rest_bones_are_the_ik_feet_and_chain_bases_only():
    names = ["foot_spin_ik.L", "foot_heel_ik.R", "toe_ik.L", "thigh_ik.R", "upper_arm_ik.L", "thigh_ik_target.L",
             "foot_ik.L", "toe_fk.L", "thigh_fk.L", "hand_ik.R", "upper_arm_ik_target.L", "MCH-thigh_ik.L",
             "thigh_ik"]
    assert ik.rest_bones(names) == ["foot_spin_ik.L", "foot_heel_ik.R", "toe_ik.L", "thigh_ik.R", "upper_arm_ik.L",
                                    "thigh_ik"]


def test_parentless_ik_controls_key_their_location_in_armature_axes():
    """An IK control without a parent: its location channels are in the armature's axes."""
    rig = _rig(root_rot=_rot([0, 0, 1], 0.3))
    parents = rig.parents.copy()
    parents[[5, 6]] = -1  # foot_ik.L, thigh_ik_target.L
    rig = rt.RigRest(NAMES, parents, rig.rest)
    res = _result(_quats(9), np.random.default_rng(10).normal(scale=0.2, size=(T, 3)))
    keys = ik.ik_keys(rig, res, [_limb()])
    fk = ik.posed_matrices(rig, res, ["foot_fk.L"])
    want = fk[:, 0] @ np.linalg.inv(rig.rest[4]) @ rig.rest[5]
    got = _pose_from_channels(rig, "foot_ik.L", *keys["foot_ik.L"], np.eye(3))
    np.testing.assert_allclose(got, want, atol=1e-9)
