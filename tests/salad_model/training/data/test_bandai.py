"""Bandai-Namco pipeline: the SMPL-22 mapping (left/right checked by geometry), units, resampling,
turn-label checks, splits, statistics, and a small build straight from the tar archives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from testdata import DATA, SHARED

from salad_model.motion import bandai_rig as R
from salad_model.motion.bvh import parse_bvh
from salad_model.motion.motion_process import canonicalize, facing_angle, mirror_feature_permutation
from salad_model.motion.skeleton import T2M
from salad_model.training.data import bandai as B

RAISE_LEFT = DATA / "dataset-2_raise-up-left-hand_active_020.bvh"
TURN_LEFT = DATA / "dataset-2_walk-turn-left_active_024.bvh"
BANDAI = SHARED / "data" / "bandai-namco" if SHARED else B.DEFAULT_DATA_DIR
needs_shared = pytest.mark.skipif(not (BANDAI / "dataset-1.tar.xz").exists(),
                                  reason=f"required: shared Bandai archives (not at {BANDAI}; set SALAD_SHARED)")


@pytest.fixture(scope="module")
def raise_left() -> np.ndarray:
    return canonicalize(R.bvh_to_smpl22(RAISE_LEFT.read_text()))


def test_mapping_table_is_complete_and_injective():
    names = parse_bvh(RAISE_LEFT.read_text()).names
    w = R.mapping_matrix(names)
    assert w.shape == (22, 22)
    np.testing.assert_allclose(w.sum(1), 1.0)
    assert len({tuple(r) for r in w}) == 22  # no two SMPL joints copy the same source
    assert w[:, names.index("joint_Root")].sum() == 0


def test_left_right_by_geometry(raise_left):
    """Facing +Z with up +Y, the person's left is +X: every left joint must lie at larger x than its
    right counterpart in the (canonical) first frame, and in raise-up-LEFT-hand the left wrist rises."""
    f0 = raise_left[0]
    assert abs(facing_angle(f0)) < 1e-9
    mirror = T2M.mirror
    for j, name in enumerate(T2M.joint_names):
        if name.startswith("left_"):
            assert f0[j, 0] > f0[mirror[j], 0] + 0.05, name
    # the body frame agrees: up × forward = left
    left_axis = np.cross([0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    assert np.dot(f0[1] - f0[2], left_axis) > 0.1
    left_rise = raise_left[:, 20, 1].max() - raise_left[0, 20, 1]
    right_rise = raise_left[:, 21, 1].max() - raise_left[0, 21, 1]
    assert left_rise > 0.5 and right_rise < 0.2  # the other hand moves only a little


def test_units_axes_and_proportions(raise_left):
    f0 = raise_left[0]
    assert 0.75 < f0[0, 1] < 1.0  # pelvis height in metres
    assert f0[15, 1] > f0[12, 1] > f0[9, 1] > f0[6, 1] > f0[3, 1] > f0[0, 1]  # spine goes up, Y up
    assert f0[10, 2] > f0[7, 2]  # toes ahead of the ankle: facing +Z
    bones = np.array([np.linalg.norm(raise_left[:, j] - raise_left[:, p], axis=-1)
                      for j, p in enumerate(T2M.parents) if p >= 0])
    assert bones.min() > 0.02  # no zero-length bones (spine1 is interpolated, not duplicated)
    assert np.abs(bones - bones[:, :1]).max() < 1e-6  # rigid after slerp resampling
    np.testing.assert_allclose(np.linalg.norm(raise_left[0, 4] - raise_left[0, 1]), 0.3908, atol=2e-4)


def test_resampling_to_20fps():
    text = RAISE_LEFT.read_text()
    n30 = parse_bvh(text).num_frames
    j20 = R.bvh_to_smpl22(text)
    assert len(j20) == (n30 - 1) * 2 // 3 + 1
    j30 = R.bvh_to_smpl22(text, fps=30.0)
    np.testing.assert_allclose(j20[::2], j30[::3], atol=1e-9)  # every other 20-fps frame is a source frame


def test_turn_direction_and_label_check():
    j = canonicalize(R.bvh_to_smpl22(TURN_LEFT.read_text()))
    heading = np.degrees(np.unwrap(facing_angle(j)))
    turn = heading[-1] - heading[0]
    assert 60 < turn < 120 and j[-1, 0, 0] > 1.0  # turns to its left and ends up on the +X side
    ok = B.ClipLabel.parse(TURN_LEFT.stem)
    assert (ok.dataset, ok.content, ok.style, ok.take) == (2, "walk-turn-left", "active", 24)
    assert B.fix_turn_label(ok, turn, [j[-1, 0, 0], j[-1, 0, 2]]) == "walk-turn-left"
    wrong = B.ClipLabel.parse("dataset-2_walk-turn-right_active_999")
    assert B.fix_turn_label(wrong, turn, [j[-1, 0, 0], j[-1, 0, 2]]) == "walk-turn-left"
    # heading and travel disagree with each other → keep the label
    assert B.fix_turn_label(wrong, turn, [-2.0, 1.0]) == "walk-turn-right"
    assert B.fix_turn_label(B.ClipLabel.parse("dataset-2_walk_active_001"), -90, [-2, 0]) == "walk"


def test_splits_by_clip_stratified_and_deterministic():
    labels = []
    for c in ("walk", "run"):
        for s in ("happy", "sad"):
            labels += [(f"dataset-2_{c}_{s}_{i:03d}", 2, c, s) for i in range(30)]
    labels += [(f"dataset-1_walk_{s}_001", 1, "walk", s) for s in ("a", "b", "c", "d", "e", "f")]
    labels += [("dataset-1_kick_normal_001", 1, "kick", "normal")]
    split = B.make_splits(labels, seed=3)
    assert set(split) == {n for n, *_ in labels}  # every clip exactly once (dict keys are unique)
    assert split == B.make_splits(list(reversed(labels)), seed=3)  # order-independent, seeded
    assert split != B.make_splits(labels, seed=4)
    for c in ("walk", "run"):
        for s in ("happy", "sad"):
            got = [split[f"dataset-2_{c}_{s}_{i:03d}"] for i in range(30)]
            assert got.count("val") == 3 and got.count("test") == 3  # 10 % / 10 % per stratum
    d1 = [split[f"dataset-1_walk_{s}_001"] for s in "abcdef"]  # 1 clip per stratum → pooled by content
    assert d1.count("val") == 1 and d1.count("test") == 1
    assert split["dataset-1_kick_normal_001"] == "train"  # too few to evaluate on


def test_feature_stats_block_averaged_and_mirror_symmetric():
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(50, 263)).astype(np.float32) * rng.uniform(0.1, 3, size=263) + 1.0
             for _ in range(3)]
    mean, std = B.feature_stats(feats)
    assert mean.shape == std.shape == (263,) and mean.dtype == np.float32
    idx, sign = mirror_feature_permutation()
    np.testing.assert_allclose(mean[idx] * sign, mean, atol=1e-6)
    for a, b in ((4, 67), (67, 193), (193, 259), (259, 263)):
        assert np.ptp(std[a:b]) < 1e-6  # one scale per block
    assert std.min() >= 1e-3


def test_clip_label_parse_rejects_odd_names():
    with pytest.raises(ValueError):
        B.ClipLabel.parse("dataset-2_walk_active")


@needs_shared
def test_iter_archives_yields_only_bvh():
    items = list(B.iter_bvh_texts(BANDAI, limit=2, archives=("dataset-1.tar.xz",)))
    assert [n for n, _ in items] == ["dataset-1_bow_active_001", "dataset-1_bow_angry_001"]
    assert all(t.startswith("HIERARCHY") for _, t in items)


@needs_shared
def test_small_build_from_archives(tmp_path):
    meta = B.build(tmp_path, BANDAI, limit=6, workers=1)
    clips = json.loads((tmp_path / "clips.json").read_text())
    joints = np.load(tmp_path / "joints.npy")
    feats = np.load(tmp_path / "features.npy")
    assert meta["clips"] == len(clips) == 6
    assert joints.dtype == feats.dtype == np.float32
    assert joints.shape == (sum(c["frames"] for c in clips), 22, 3)
    assert feats.shape == (sum(c["frames"] - 1 for c in clips), 263)
    for c in clips:
        j, f = B.clip_arrays(c, joints, feats)
        assert abs(j[0, 0, 0]) < 1e-6 and abs(j[0, 0, 2]) < 1e-6
        assert j[..., 1].min() == pytest.approx(0, abs=1e-6)
        assert f.shape[0] == j.shape[0] - 1
    splits = json.loads((tmp_path / "splits.json").read_text())
    names = splits["train"] + splits["val"] + splits["test"]
    assert sorted(names) == sorted(c["name"] for c in clips)
    caps = json.loads((tmp_path / "captions.json").read_text())
    assert set(caps) == set(names) and all(len(v["train"]) >= 5 for v in caps.values())
    assert np.load(tmp_path / "mean.npy").shape == (263,)
    assert "CC BY-NC 4.0" in (tmp_path / "LICENSE_NOTICE.txt").read_text()
