"""Foot lock at joins: planted feet held still where asked, legs keep their bones, other frames untouched."""

import numpy as np
import pytest
from testdata import DATA

from salad_model.motion.bandai_rig import bvh_to_smpl22
from salad_model.motion.foot_lock import (
    LEGS,
    contact_runs,
    ease,
    hold_offsets,
    lock_feet,
    reach_toward,
    trapezoid,
    two_bone_ik,
)
from salad_model.motion.motion_process import foot_contacts


@pytest.fixture(scope="module")
def sliding_walk():
    """A captured walk whose whole body sways ±2 cm sideways at 1 Hz: its planted feet slide (≈ 0.1 m/s)."""
    j = bvh_to_smpl22((DATA / "dataset-2_walk-turn-left_active_024.bvh").read_text(), fps=20.0)
    c = foot_contacts(j, threshold=0.002)  # [T-1, 4], from the clean capture
    c = np.concatenate([c, c[-1:]])
    t = np.arange(len(j)) / 20.0
    sway = 0.02 * np.sin(2 * np.pi * t)
    moved = j.copy()
    moved[..., 0] += sway[:, None]
    return moved, c


def _speed(joints, joint):
    v = np.linalg.norm(np.diff(joints[:, joint][:, [0, 2]], axis=0), axis=-1) * 20.0
    return np.concatenate([v, v[-1:]])


def test_trapezoid_and_runs():
    w = trapezoid(20, [(5, 15)], fade=2)
    assert np.all(w[:5] == 0) and np.all(w[15:] == 0)
    np.testing.assert_allclose(w[5:8], [7 / 27, 20 / 27, 1.0])  # smoothstep of 1/3, 2/3
    np.testing.assert_allclose(w[12:15], [1.0, 20 / 27, 7 / 27])
    assert contact_runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]


def test_planted_feet_stop_sliding_only_where_weighted(sliding_walk):
    joints, contacts = sliding_walk
    n = len(joints)
    lo, hi = n // 4, 3 * n // 4
    w = trapezoid(n, [(lo, hi)], fade=4)
    out = lock_feet(joints, contacts, w)
    # outside the weighted frames nothing moves, bit for bit
    assert np.array_equal(out[w == 0], joints[w == 0])
    full = w == 1
    for (hip, knee, ankle, toe), (ca, _) in LEGS:
        planted = np.zeros(n, bool)
        for s, e in contact_runs(contacts[:, ca]):
            planted[s:e - 1] = full[s:e].all()  # velocity to the next frame of the same run, run fully weighted
        assert planted.sum() >= 5
        before, after = _speed(joints, ankle)[planted], _speed(out, ankle)[planted]
        assert before.mean() > 0.05  # the sway makes planted ankles slide (measured ≈ 0.08 m/s)
        # held still; a leg stretched straight cannot reach every target (measured: 2 frames, 1.2 cm/s)
        assert np.median(after) < 1e-6 and after.mean() < 0.1 * before.mean()
        # bones keep their lengths (thigh, shin, foot)
        for a, b in ((hip, knee), (knee, ankle), (ankle, toe)):
            np.testing.assert_allclose(np.linalg.norm(out[:, a] - out[:, b], axis=-1),
                                       np.linalg.norm(joints[:, a] - joints[:, b], axis=-1), atol=1e-6)
    # the rest of the body is never touched
    legs = [j for (leg, _) in LEGS for j in leg[1:]]
    others = [j for j in range(22) if j not in legs]
    assert np.array_equal(out[:, others], joints[:, others])


def test_bad_shapes_are_refused(sliding_walk):
    joints, contacts = sliding_walk
    with pytest.raises(ValueError, match=r"contacts \[T, 4\]"):
        lock_feet(joints, contacts[:, :2], np.ones(len(joints)))
    with pytest.raises(ValueError, match="weight"):
        lock_feet(joints, contacts, np.ones(3))


def _pivoting_foot(frames: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """One planted leg (heel and toe in contact for the whole clip) whose foot swivels ±25° about the ankle."""
    j = np.zeros((frames, 22, 3))
    (hip, knee, ankle, toe), _ = LEGS[0]
    yaw = np.radians(25) * np.sin(np.linspace(0, 2 * np.pi, frames))
    j[:, hip] = [0.1, 0.9, 0.0]
    j[:, knee] = [0.1, 0.5, 0.05]
    j[:, ankle] = [0.1, 0.08, 0.0]
    j[:, toe] = np.stack([0.1 + 0.15 * np.sin(yaw), np.full(frames, 0.02), 0.15 * np.cos(yaw)], -1)
    contacts = np.zeros((frames, 4))
    contacts[:, :2] = 1.0  # left ankle and left toe planted
    return j, contacts


def test_a_planted_toe_is_held_too_when_the_foot_pivots_on_its_heel():
    """The ankle leads the hold; a toe planted with it no longer slides (the foot turns to its held place)."""
    joints, contacts = _pivoting_foot()
    (hip, knee, ankle, toe), _ = LEGS[0]
    w = np.ones(len(joints))
    held = lock_feet(joints, contacts, w)
    loose = lock_feet(joints, contacts, w, hold_toes=False)
    assert _speed(joints, toe).mean() > 0.1  # the swivel slides the toe (0.14 m/s)
    assert _speed(loose, toe).mean() > 0.1  # holding the ankle alone leaves it sliding
    assert _speed(held, toe).max() < 1e-6  # held still (the toe's horizontal length is constant here)
    assert _speed(held, ankle).max() < 1e-6
    np.testing.assert_allclose(np.linalg.norm(held[:, toe] - held[:, ankle], axis=-1),
                               np.linalg.norm(joints[:, toe] - joints[:, ankle], axis=-1), atol=1e-9)
    np.testing.assert_allclose(held[:, toe, 1], joints[:, toe, 1])  # the toe's height is its own
    # where the weight is 0 nothing moves
    w[:10] = 0.0
    part = lock_feet(joints, contacts, w)
    assert np.array_equal(part[:10], joints[:10])


def test_reach_toward_keeps_the_bone_and_never_dips_the_toe():
    ankle = np.array([[0.0, 0.08, 0.0]] * 3)
    toe = np.array([[0.0, 0.02, 0.12]] * 3)  # 12 cm ahead, 6 cm below: bone 13.4 cm
    target = np.array([[0.13, 0.0, 0.0], [0.0, 0.0, 0.05], [0.0, 0.0, 0.5]])  # farther, nearer, out of reach
    out = reach_toward(ankle, toe, target)
    bone = np.linalg.norm(toe - ankle, axis=-1)
    np.testing.assert_allclose(np.linalg.norm(out - ankle, axis=-1), bone, atol=1e-12)
    np.testing.assert_allclose(out[0, [0, 2]], [0.13, 0.0], atol=1e-12)  # turned and flattened onto it
    assert out[0, 1] > toe[0, 1]  # flattening lifts the toe, never lowers it
    np.testing.assert_allclose(out[1], toe[1], atol=1e-12)  # a nearer target: the foot keeps its pitch
    np.testing.assert_allclose(out[2], [0.0, 0.08, bone[2]], atol=1e-12)  # as far as the bone goes, flat


def test_hold_offsets_hold_each_run_at_its_mean_and_fade_out_over_blend_frames():
    """Inside a run the offset moves the point to the run's mean (horizontally only); the first / last frame's
    offset carries on outside, eased down over ``blend`` frames, then nothing; runs at the clip's ends stay
    inside the clip."""
    t = np.arange(24, dtype=np.float64)
    pos = np.stack([0.01 * t, 0.1 + 0.02 * t, -0.03 * t], -1)
    flags = np.zeros(24, bool)
    flags[9:13] = True  # a run in the middle
    flags[1:3] = True  # a run one frame after the start
    flags[21:] = True  # a run to the last frame
    off, acts = hold_offsets(pos, flags, blend=3)
    assert np.all(off[:, 1] == 0)  # heights are never moved
    for s, e in ((1, 3), (9, 13), (21, 24)):
        want = (pos[s:e].mean(0) - pos[s:e]) * [1, 0, 1]
        np.testing.assert_allclose(off[s:e], want, atol=1e-15)
        assert acts[s:e].all()
    fade = [float(ease(1 - k / 4)) for k in (1, 2, 3)]  # 27/32, 1/2, 5/32
    for k, a in zip((1, 2, 3), fade, strict=True):
        np.testing.assert_allclose(off[9 - k], a * off[9], atol=1e-15)  # before a run: its first frame's offset
        np.testing.assert_allclose(off[12 + k], a * off[12], atol=1e-15)  # after it: its last frame's
        np.testing.assert_allclose(off[2 + k], a * off[2], atol=1e-15)
        np.testing.assert_allclose(off[21 - k], a * off[21], atol=1e-15)
    np.testing.assert_allclose(off[0], fade[0] * off[1], atol=1e-15)  # the one frame before a run at frame 1
    assert acts[[0, 3, 4, 5, 6, 7, 8, 13, 14, 15, 18, 19, 20]].all()
    assert not acts[16:18].any() and np.all(off[16:18] == 0)  # between the fades: untouched


def test_two_bone_ik_keeps_the_bones_when_the_target_is_nearer_the_hip_than_the_leg_can_fold():
    """A thigh of 0.45 m and a shin of 0.35 m cannot bring the ankle nearer the hip than 0.1 m: the ankle stops
    there (on the line to the target), the bones keep their lengths."""
    hip = np.array([[0.0, 1.0, 0.0]] * 2)
    knee = np.array([[0.0, 0.55, 0.05]] * 2)
    ankle = knee + [0.0, -0.35, 0.0]
    target = np.array([[0.0, 0.99, 0.0], [0.0, 0.5, 0.0]])  # 1 cm below the hip; a reachable one
    thigh, shin = np.linalg.norm(knee - hip, axis=-1), np.linalg.norm(ankle - knee, axis=-1)
    new_knee, new_ankle = two_bone_ik(hip, knee, ankle, target)
    np.testing.assert_allclose(np.linalg.norm(new_knee - hip, axis=-1), thigh, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(new_ankle - new_knee, axis=-1), shin, atol=1e-5)
    np.testing.assert_allclose(new_ankle[0], [0.0, 1.0 - (thigh[0] - shin[0]), 0.0], atol=1e-5)
    np.testing.assert_allclose(new_ankle[1], target[1], atol=1e-12)
    assert new_knee[1, 2] > 0.01  # the knee still bends forward, the way it bent (+Z)


def test_reach_toward_a_raised_toe_and_a_target_straight_below_the_ankle():
    """A toe above its ankle (the foot pitched up on its heel) stays above it; a target with no horizontal
    distance from the ankle gives no direction, so the foot keeps its own."""
    ankle = np.array([[0.0, 0.08, 0.0]] * 2)
    toe = np.array([[0.0, 0.14, 0.12], [0.05, 0.02, 0.12]])  # raised 6 cm; lowered, turned a little
    target = np.array([[0.0, 0.0, 0.13], [0.0, 0.0, 0.0]])
    out = reach_toward(ankle, toe, target)
    bone = np.linalg.norm(toe - ankle, axis=-1)
    np.testing.assert_allclose(np.linalg.norm(out - ankle, axis=-1), bone, atol=1e-12)
    np.testing.assert_allclose(out[0], [0.0, 0.08 + np.sqrt(bone[0] ** 2 - 0.13 ** 2), 0.13], atol=1e-12)
    np.testing.assert_allclose(out[1], toe[1], atol=1e-12)  # reach = its own, direction its own


def _sliding_feet(frames: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Both legs standing, each foot sliding 3 mm per frame along X; left: only its ankle in contact, right:
    only its toe."""
    j = np.zeros((frames, 22, 3))
    slide = 0.003 * np.arange(frames)
    for ((hip, knee, ankle, toe), _), x in zip(LEGS, (0.1, -0.1), strict=True):
        j[:, hip] = [x, 0.9, 0.0]
        j[:, knee] = [x, 0.5, 0.05]
        j[:, ankle] = np.stack([x + slide, np.full(frames, 0.08), np.zeros(frames)], -1)
        j[:, toe] = j[:, ankle] + [0.0, -0.06, 0.12]
    contacts = np.zeros((frames, 4))
    contacts[:, 0] = 1.0  # left ankle
    contacts[:, 3] = 1.0  # right toe
    return j, contacts


def test_a_toe_only_plant_holds_the_foot_by_its_toe_and_the_weight_scales_the_hold():
    """Where only the toe is planted the foot is held by it; an ankle-only plant carries its toe rigidly; a
    weight of ½ moves the foot half way, weights above 1 count as 1 (the other leg is still handled when one
    has no contact: each leg on its own)."""
    joints, contacts = _sliding_feet()
    (l_hip, l_knee, l_ankle, l_toe), _ = LEGS[0]
    (r_hip, r_knee, r_ankle, r_toe), _ = LEGS[1]
    full = lock_feet(joints, contacts, np.ones(len(joints)))
    assert _speed(full, r_toe).max() < 1e-9 and _speed(full, l_ankle).max() < 1e-9  # both held
    np.testing.assert_allclose(full[:, r_toe] - full[:, r_ankle], joints[:, r_toe] - joints[:, r_ankle], atol=1e-12)
    np.testing.assert_allclose(full[:, l_toe] - full[:, l_ankle], joints[:, l_toe] - joints[:, l_ankle], atol=1e-12)
    half = lock_feet(joints, contacts, np.full(len(joints), 0.5))
    for j in (l_ankle, r_toe):
        np.testing.assert_allclose(half[:, j] - joints[:, j], 0.5 * (full[:, j] - joints[:, j]), atol=1e-12)
    assert np.array_equal(lock_feet(joints, contacts, np.full(len(joints), 1.5)), full)
    right_only = contacts.copy()
    right_only[:, 0] = 0.0
    alone = lock_feet(joints, right_only, np.ones(len(joints)))
    assert _speed(alone, r_toe).max() < 1e-9 and np.array_equal(alone[:, l_ankle], joints[:, l_ankle])


def test_ease_stays_within_its_ends():
    np.testing.assert_array_equal(ease(np.array([-0.5, 0.0, 0.5, 1.0, 1.5])), [0.0, 0.0, 0.5, 1.0, 1.0])
    assert trapezoid(10, [(-5, 3)], fade=0)[0] == 1.0  # a range starting before the clip holds from frame 0
    assert trapezoid(20, [(5, 5), (10, 15)], fade=2)[12] == 1.0  # an empty range does not end the list
