"""joints → 263-dim features: the round trip through the spec's recover_from_ric (acceptance, < 1 mm on
real Bandai motion), canonicalisation, the IK convention, foot contacts and left/right mirroring."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from testdata import DATA  # noqa: E402

from salad_model.motion import motion_process as mp  # noqa: E402
from salad_model.motion.bandai_rig import bvh_to_smpl22  # noqa: E402
from salad_model.motion.features import recover_from_ric  # noqa: E402
from salad_model.motion.skeleton import T2M  # noqa: E402

TURN_LEFT = DATA / "dataset-2_walk-turn-left_active_024.bvh"
RAISE_LEFT = DATA / "dataset-2_raise-up-left-hand_active_020.bvh"
ROUND_TRIP_TOL_M = 1e-3  # acceptance: 1 mm


@pytest.fixture(scope="module")
def walk_turn() -> np.ndarray:
    return mp.canonicalize(bvh_to_smpl22(TURN_LEFT.read_text()))


@pytest.fixture(scope="module")
def raise_left() -> np.ndarray:
    return mp.canonicalize(bvh_to_smpl22(RAISE_LEFT.read_text()))


def _recover(features: np.ndarray) -> np.ndarray:
    return recover_from_ric(torch.from_numpy(np.asarray(features, dtype=np.float32)), 22).numpy()


def test_round_trip_real_motion_within_1mm(walk_turn):
    """Acceptance: Bandai clip → SMPL-22 → features (stored float32) → recover_from_ric → joints."""
    feats = mp.joints_to_features(walk_turn).astype(np.float32)
    assert feats.shape == (len(walk_turn) - 1, 263)
    rec = _recover(feats)
    err = np.linalg.norm(rec - walk_turn[:-1], axis=-1).max()
    assert err < ROUND_TRIP_TOL_M, f"round trip error {err * 1000:.4f} mm"
    # the clip really moves and turns, so every part of the decoder was exercised
    assert np.linalg.norm(walk_turn[-1, 0, [0, 2]]) > 2.0
    assert abs(np.degrees(feats[:, 0].sum() * 2)) > 60


def test_numpy_recover_matches_spec_recover(walk_turn):
    feats = mp.joints_to_features(walk_turn)
    np.testing.assert_allclose(mp.recover_from_ric_np(feats), _recover(feats), atol=2e-5)
    np.testing.assert_allclose(mp.recover_from_ric_np(feats), walk_turn[:-1], atol=1e-9)


def _template_body() -> np.ndarray:
    """One pose with every bone along HumanML3D's IK template direction, facing +Z, feet on the floor.

    Shoulders are wider than hips (as on real bodies), which the HumanML3D heading formula needs.
    """
    length = np.full(22, 0.2)
    length[[1, 2]] = 0.1
    base = np.zeros((22, 3))
    for j, p in enumerate(T2M.parents):
        if p >= 0:
            base[j] = base[p] + mp.T2M_RAW_OFFSETS[j] * length[j]
    base[:, 1] -= base[:, 1].min()
    return base


def _spinning_body(frames: int = 200, turns: float = 2.0) -> np.ndarray:
    """The template pose spinning in place about +Y while drifting along +X."""
    angle = np.linspace(0, turns * 2 * np.pi, frames)
    out = mp.qrot(mp.yaw_quat(angle)[:, None], np.broadcast_to(_template_body(), (frames, 22, 3)))
    out[..., 0] += np.linspace(0, 1.0, frames)[:, None]
    return out


def test_round_trip_survives_heading_wrap():
    """Two full turns cross ±180° four times; HumanML3D's unguarded arcsin would flip the spin there."""
    joints = mp.canonicalize(_spinning_body())
    feats = mp.joints_to_features(joints, smooth_sigma=0.0)
    # constant spin direction, no sign flip at the wraps (turning toward +X, the person's left, is negative)
    assert np.all(feats[1:, 0] < 0)
    rec = _recover(feats)
    assert np.abs(rec - joints[:-1]).max() < 1e-4


def test_template_pose_has_identity_local_rotations():
    """Bones along the IK template directions, facing +Z → every 6-D rotation is identity (1,0,0,0,1,0)."""
    feats = mp.joints_to_features(np.broadcast_to(_template_body(), (5, 22, 3)).copy())
    rot = feats[:, 67:193].reshape(-1, 21, 6)
    np.testing.assert_allclose(rot, np.broadcast_to([1, 0, 0, 0, 1, 0], rot.shape), atol=1e-12)
    # and a bent elbow shows up only in the elbow's own local rotation
    bent = _template_body()
    bent[[18, 20]] = bent[16] + np.array([[0.0, 0.0, 0.2], [0.0, 0.0, 0.4]])
    rot = mp.joints_to_features(np.broadcast_to(bent, (5, 22, 3)).copy())[:, 67:193].reshape(-1, 21, 6)
    changed = np.where(np.abs(rot - [1, 0, 0, 0, 1, 0]).max(axis=(0, 2)) > 1e-6)[0] + 1
    assert changed.tolist() == [18]


def test_feature_blocks_for_a_straight_walk_in_place_body():
    """Rigid body sliding along +Z at 0.05 m/frame: check root, ric, velocity and contact channels."""
    base = _template_body()
    t = 30
    joints = np.broadcast_to(base, (t, 22, 3)).copy()
    joints[..., 2] += 0.05 * np.arange(t)[:, None]
    f = mp.joints_to_features(joints)
    np.testing.assert_allclose(f[:, 0], 0, atol=1e-12)  # no turning
    np.testing.assert_allclose(f[:, 1:3], np.tile([0.0, 0.05], (t - 1, 1)), atol=1e-12)
    np.testing.assert_allclose(f[:, 3], base[0, 1], atol=1e-12)  # root height
    np.testing.assert_allclose(f[:, 4:67].reshape(-1, 21, 3), np.broadcast_to(base[1:] - base[0] * [1, 0, 1],
                                                                              (t - 1, 21, 3)), atol=1e-12)
    vel = f[:, 193:259].reshape(-1, 22, 3)
    np.testing.assert_allclose(vel, np.broadcast_to([0, 0, 0.05], vel.shape), atol=1e-12)
    # 0.05² = 0.0025 m² per frame ≥ 0.002 threshold → no contact; half speed → contact
    assert np.all(f[:, 259:] == 0)
    joints2 = np.broadcast_to(base, (t, 22, 3)).copy()
    joints2[..., 2] += 0.02 * np.arange(t)[:, None]
    assert np.all(mp.joints_to_features(joints2)[:, 259:] == 1)


def test_contacts_on_real_motion_follow_the_planted_foot(walk_turn):
    f = mp.joints_to_features(walk_turn)
    contact = f[:, 259:]
    assert set(np.unique(contact)) <= {0.0, 1.0}
    # during walking the two feet alternate: some frames have the left foot planted and the right not
    left_only = (contact[:, 1] == 1) & (contact[:, 3] == 0)
    right_only = (contact[:, 3] == 1) & (contact[:, 1] == 0)
    assert left_only.sum() >= 3 and right_only.sum() >= 3


def test_canonicalize_floor_origin_and_facing():
    raw = bvh_to_smpl22(TURN_LEFT.read_text())
    # this clip starts facing +X (dataset README): canonicalisation must turn it by about −90°
    assert abs(np.degrees(mp.facing_angle(raw[0])) - 90) < 25
    j = mp.canonicalize(raw)
    assert j[..., 1].min() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(j[0, 0, [0, 2]], 0, atol=1e-12)
    assert abs(mp.facing_angle(j[0])) < 1e-9
    assert j[0, 1, 0] > j[0, 2, 0] and j[0, 16, 0] > j[0, 17, 0]  # left on +X
    # proper rotation + translation: pairwise distances are unchanged
    d0 = np.linalg.norm(raw[5, :, None] - raw[5, None], axis=-1)
    d1 = np.linalg.norm(j[5, :, None] - j[5, None], axis=-1)
    np.testing.assert_allclose(d0, d1, atol=1e-9)


def test_mirror_features_equals_features_of_mirrored_joints(walk_turn, raise_left):
    for joints in (walk_turn, raise_left):
        direct = mp.mirror_features(mp.joints_to_features(joints))
        derived = mp.joints_to_features(mp.mirror_joints(joints))
        np.testing.assert_allclose(direct, derived, atol=1e-9)
        assert np.abs(direct - mp.joints_to_features(joints)).max() > 0.05  # it is not the identity


def test_mirror_is_an_involution_and_swaps_the_raised_hand(raise_left):
    f = mp.joints_to_features(raise_left)
    np.testing.assert_allclose(mp.mirror_features(mp.mirror_features(f)), f, atol=0)
    np.testing.assert_allclose(mp.mirror_joints(mp.mirror_joints(raise_left)), raise_left, atol=0)
    rec = _recover(mp.mirror_features(f))
    left_rise = rec[:, 20, 1].max() - rec[0, 20, 1]
    right_rise = rec[:, 21, 1].max() - rec[0, 21, 1]
    assert right_rise > 0.3 and left_rise < 0.3 * right_rise  # the mirrored motion raises the right hand
    np.testing.assert_allclose(rec, mp.mirror_joints(raise_left)[:-1], atol=1e-4)


def test_mirror_permutation_is_a_signed_permutation():
    for which in mp.MIRROR_REGIONS:
        idx, sign = mp.mirror_feature_permutation(T2M, which)
        assert sorted(idx.tolist()) == list(range(263))
        assert set(np.unique(sign)) <= {-1.0, 1.0}


def test_partial_mirror_regions_name_the_right_joints():
    names = T2M.joint_names
    upper = {names[j] for j in mp.mirror_joint_set("upper")}
    lower = {names[j] for j in mp.mirror_joint_set("lower")}
    assert upper == {f"{s}_{p}" for s in ("left", "right") for p in ("collar", "shoulder", "elbow", "wrist")}
    assert lower == {f"{s}_{p}" for s in ("left", "right") for p in ("hip", "knee", "ankle", "foot")}


def test_upper_mirror_swaps_the_raised_hand_and_keeps_trajectory_legs_and_trunk(raise_left, walk_turn):
    """Arms-only mirror: the other hand goes up; root path, legs, spine and head stay (exactly, recovered)."""
    f = mp.joints_to_features(raise_left)
    up = mp.mirror_features(f, which="upper")
    np.testing.assert_allclose(mp.mirror_features(up, which="upper"), f, atol=0)  # involution
    rec, orig = _recover(up), _recover(f)
    arms = mp.mirror_joint_set("upper")
    keep = [j for j in range(22) if j not in arms]
    np.testing.assert_allclose(rec[:, keep], orig[:, keep], atol=1e-6)
    right_rise, left_rise = rec[:, 21, 1].max() - rec[0, 21, 1], rec[:, 20, 1].max() - rec[0, 20, 1]
    assert right_rise > 0.3 and left_rise < 0.3 * right_rise  # the right wrist now rises, the left much less
    # the arms are the full mirror's arms wherever the trunk is symmetric: within 5 cm at every frame
    full = _recover(mp.mirror_features(f))
    heading_free = rec[:, arms] - rec[:, :1]
    assert np.abs(np.linalg.norm(heading_free, axis=-1) - np.linalg.norm(full[:, arms] - full[:, :1], axis=-1)
                  ).max() < 0.05
    # legs only, on a walk: the feet swap phase (contacts swap) and the path stays
    w = mp.joints_to_features(walk_turn)
    low = mp.mirror_features(w, which="lower")
    np.testing.assert_array_equal(low[:, -4:], w[:, [-2, -1, -4, -3]])
    np.testing.assert_allclose(_recover(low)[:, 0], _recover(w)[:, 0], atol=1e-6)
    with pytest.raises(ValueError, match="upper"):
        mp.mirror_features(w, which="arms")


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        mp.joints_to_features(np.zeros((10, 21, 3)))
    with pytest.raises(ValueError):
        mp.joints_to_features(np.zeros((1, 22, 3)))
