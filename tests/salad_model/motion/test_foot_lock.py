"""Foot lock at joins: planted feet held still where asked, legs keep their bones, other frames untouched."""

import numpy as np
import pytest
from testdata import DATA

from salad_model.motion.bandai_rig import bvh_to_smpl22
from salad_model.motion.foot_lock import LEGS, contact_runs, lock_feet, trapezoid
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
