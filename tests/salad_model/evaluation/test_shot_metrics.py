"""Issue #13's metric functions on synthetic motion with known answers."""

import numpy as np
import pytest

from salad_model.evaluation.shots import (
    foot_sliding,
    jerk,
    kept_joints,
    root_displacement,
    seam_mask,
    seam_measures,
    wrists_raised,
)
from salad_model.motion.skeleton import T2M

FPS = 20.0


def _still(frames: int = 80) -> np.ndarray:
    j = np.zeros((frames, 22, 3))
    j[:, :, 1] = np.linspace(0.0, 1.7, 22)  # a vertical stick
    return j


def test_jerk_is_zero_for_constant_velocity_and_six_for_a_cubic():
    j = _still()
    t = np.arange(len(j)) / FPS
    j[:, :, 0] += 2.0 * t[:, None]
    assert np.nanmax(np.abs(jerk(j, FPS))) == pytest.approx(0.0, abs=1e-6)
    j[:, :, 2] += (t ** 3)[:, None]  # d³/dt³ t³ = 6
    jk = jerk(j, FPS)
    assert np.isnan(jk[0]) and np.isnan(jk[-1]) and np.nanmean(jk) == pytest.approx(6.0, rel=1e-6)


def test_foot_sliding_counts_only_feet_in_contact():
    j = _still(40)
    j[:, 10, 0] = np.arange(40) / FPS * 0.5  # left foot slides at 0.5 m/s
    contacts = np.zeros((40, 4), bool)
    contacts[:, 1] = True  # left foot (joint 10) in contact
    assert np.nanmean(foot_sliding(j, contacts, fps=FPS)) == pytest.approx(0.5)
    contacts[:, 3] = True  # right foot (11) also in contact, still: average of 0.5 and 0
    assert np.nanmean(foot_sliding(j, contacts, fps=FPS)) == pytest.approx(0.25)
    assert np.isnan(foot_sliding(j, np.zeros((40, 4), bool), fps=FPS)).all()


def test_seam_mask_and_root_jump_detection():
    m = seam_mask(60, [30], FPS)
    assert m.sum() == 21 and m[20] and m[40] and not m[19] and not m[41]
    smooth = _still(120)
    smooth[:, :, 2] += np.arange(120)[:, None] * 0.05  # walking 1 m/s
    jumped = smooth.copy()
    jumped[60:, :, 2] += 0.4  # a 40 cm pop at frame 60
    assert root_displacement(jumped)[60] == pytest.approx(0.45)
    contacts = np.zeros((120, 4), bool)
    contacts[::2] = True
    ok = seam_measures([(smooth, contacts, [60])], FPS)
    bad = seam_measures([(jumped, contacts, [60])], FPS)
    assert ok["root_ratio"] == pytest.approx(1.0) and ok["sliding_ratio"] == pytest.approx(1.0)
    assert bad["root_ratio"] == pytest.approx(9.0) and bad["jerk_ratio"] > 1.25 and not bad["pass"]
    assert bad["root_disp_seam_pass_fraction"] == 0.0 and bad["seams"] == 1


def test_kept_joints_of_an_arm_regeneration_are_legs_spine_and_head():
    assert kept_joints((4, 5), T2M) == [0, 1, 2, 3, 4, 5, 7, 8, 10, 11, 15]
    assert 20 not in kept_joints((4,), T2M) and 21 in kept_joints((4,), T2M)


def test_wrists_raised_checks_each_asked_side():
    j = _still(40)
    j[:, 12, 1] = 1.5  # neck
    j[:, 20, 1] = 1.0
    j[:, 21, 1] = 1.0
    j[10:20, 21, 1] = 1.8  # the right hand goes up for half a second
    assert wrists_raised(j, ("right",)) and not wrists_raised(j, ("left",))
    assert not wrists_raised(j, ("left", "right"))


def test_ratio_interval_is_paired_over_timelines():
    """Timelines resampled with their own single clips: equal per-timeline ratios give that ratio exactly,
    and the interval widens when timelines disagree (segments hit where their single clips miss)."""
    from salad_model.evaluation.shots import ratio_interval

    seg = np.array([[[1, 0, 1]], [[1, 1, 0]]], float)  # [timeline, draw, position]: 2/3 each
    single = np.ones((2, 1, 3, 2))
    assert ratio_interval(seg, single) == pytest.approx([2 / 3, 2 / 3])
    seg = np.array([[[1, 1, 1]], [[0, 0, 0]]] * 5, float)
    single = np.concatenate([np.ones((1, 1, 3, 2)), np.zeros((1, 1, 3, 2)) + 0.5] * 5)
    lo, hi = ratio_interval(seg, single)
    assert lo < (0.5 / 0.75) < hi  # the pooled ratio of the whole set lies inside
