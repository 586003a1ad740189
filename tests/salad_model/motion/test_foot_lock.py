"""Foot lock at joins: planted feet held still where asked, legs keep their bones, other frames untouched."""

import numpy as np
import pytest
from testdata import DATA

from salad_model.motion.bandai_rig import bvh_to_smpl22
from salad_model.motion.foot_lock import LEGS, contact_runs, lock_feet, reach_toward, trapezoid
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
