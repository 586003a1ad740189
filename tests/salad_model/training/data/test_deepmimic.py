"""DeepMimic → SMPL-22: bone lengths, up axis, facing, left/right, mirror symmetry, feet on the ground,
looping and resampling, the built folder and its use by the training reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from needs import require
from testdata import DATA, SHARED

from salad_model.motion.bandai_rig import bvh_to_smpl22
from salad_model.motion.motion_process import (
    canonicalize,
    facing_angle,
    foot_contacts,
    joints_to_features,
    mirror_features,
    mirror_joints,
    recover_from_ric_np,
)
from salad_model.motion.skeleton import T2M
from salad_model.training.data import deepmimic as D

DEEPMIMIC = SHARED / "data" / "deepmimic" if SHARED else D.DEFAULT_DATA_DIR
PARENTS = list(T2M.parents[1:])
N = {n: i for i, n in enumerate(T2M.joint_names)}


@pytest.fixture(scope="module")
def skeleton():
    require((DEEPMIMIC / "humanoid3d.txt").is_file(), f"shared DeepMimic clips (not at {DEEPMIMIC})")
    return D.load_skeleton(DEEPMIMIC / "humanoid3d.txt")


@pytest.fixture(scope="module")
def clips(skeleton) -> dict[str, np.ndarray]:
    return {stem: D.clip_joints(DEEPMIMIC / "motions" / f"humanoid3d_{stem}.txt", skeleton)
            for stem in D.CLIP_LABELS}


def bone_lengths(j: np.ndarray) -> np.ndarray:
    return np.linalg.norm(j[:, 1:] - j[:, PARENTS], axis=-1)


def test_every_clip_file_is_labelled_and_parsed(skeleton):
    stems = sorted(p.stem.removeprefix("humanoid3d_") for p in (DEEPMIMIC / "motions").glob("humanoid3d_*.txt"))
    assert stems == sorted(D.CLIP_LABELS)
    back = D.read_clip(DEEPMIMIC / "motions" / "humanoid3d_backflip.txt", skeleton)
    walk = D.read_clip(DEEPMIMIC / "motions" / "humanoid3d_walk.txt", skeleton)
    # frame durations are read: the backflip is at 16 fps, the walk at 30 fps
    assert np.allclose(np.diff(back.times), 0.0625) and np.allclose(np.diff(walk.times), 1 / 30, atol=1e-5)
    assert np.allclose(np.linalg.norm(back.quats, axis=-1), 1.0)


def test_bone_lengths_are_constant_and_the_bandai_ones(clips):
    ref = bone_lengths(D.to_smpl22(*_rest()))[0]
    for stem, j in clips.items():
        bl = bone_lengths(j)
        assert np.abs(bl - ref).max() < 1e-5, stem  # every frame, also through flips and resampling
    # the reference proportions are Bandai's: compare with a real Bandai clip (same limbs within 2 cm)
    bandai = bone_lengths(canonicalize(bvh_to_smpl22((DATA / "dataset-2_walk-turn-left_active_024.bvh").read_text())))
    limbs = [N[n] - 1 for n in ("left_knee", "left_ankle", "left_elbow", "left_wrist", "right_knee", "right_elbow")]
    assert np.abs(np.median(bandai, 0)[limbs] - ref[limbs]).max() < 0.02


def _rest():
    skel = D.load_skeleton(DEEPMIMIC / "humanoid3d.txt")
    quats = np.zeros((1, len(skel), 4))
    quats[..., 0] = 1.0
    return skel, np.array([[0.0, 0.9, 0.0]]), quats


def test_rest_pose_is_upright_with_left_at_plus_x_after_canonicalising(skeleton):
    j = canonicalize(np.repeat(D.to_smpl22(*_rest()), 3, axis=0))
    f = j[0]
    heights = [f[N[n], 1] for n in ("head", "neck", "spine3", "pelvis", "left_knee", "left_ankle")]
    assert heights == sorted(heights, reverse=True) and len(set(heights)) == len(heights)
    assert f[N["left_hip"], 0] > f[N["right_hip"], 0] and f[N["left_shoulder"], 0] > f[N["right_shoulder"], 0]
    assert f[N["left_foot"], 2] > f[N["left_ankle"], 2]  # toes point forward (+Z)
    assert abs(facing_angle(f)) < 1e-6


def test_canonical_walk_faces_and_travels_plus_z_upright_on_the_floor(clips):
    j = clips["walk"]
    assert abs(np.degrees(facing_angle(j[0]))) < 1e-4
    assert np.allclose(j[0, 0, [0, 2]], 0.0) and abs(j[..., 1].min()) < 1e-9
    travel = j[-1, 0] - j[0, 0]
    assert travel[2] > 6.0 and abs(travel[0]) < 0.15 * travel[2]  # ~0.9 m/s for ~9 s, straight (cycles not turned)
    assert (j[:, N["head"], 1] > j[:, N["pelvis"], 1] + 0.4).all()
    assert (j[:, N["pelvis"], 1] > 0.8).all()
    # knees bend forward: the knee is in front of the hip → ankle line when bent
    for side in ("left", "right"):
        hip, knee, ankle = (j[:, N[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
        mid = (hip + ankle) / 2
        fwd = np.stack([np.sin(facing_angle(j)), 0 * j[:, 0, 0], np.cos(facing_angle(j))], -1)
        bent = np.linalg.norm(hip - ankle, axis=-1) < 0.97 * (D.REFERENCE["thigh"] + D.REFERENCE["shin"])
        assert ((knee - mid) * fwd).sum(-1)[bent].mean() > 0.02, side


def test_feet_in_contact_are_on_the_ground(clips):
    for stem in ("walk", "run", "jog", "stealthy_walk", "zombie_walk"):
        j = clips[stem]
        c = foot_contacts(j)
        toes = j[:-1, [N["left_foot"], N["right_foot"]], 1]
        on = c[:, [1, 3]] > 0  # contact flags of the toes
        assert on.mean() > 0.15, stem
        assert np.median(toes[on]) < 0.04, stem  # contact means on the floor, not sliding in the air
        assert j[:, [N["left_foot"], N["right_foot"], N["left_ankle"], N["right_ankle"]], 1].min() < 0.01, stem


def test_mirror_symmetry_of_joints_and_features(clips):
    for stem in ("walk", "cartwheel", "kick"):
        j = clips[stem]
        m = mirror_joints(j)
        assert np.allclose(bone_lengths(m), bone_lengths(j))
        assert np.allclose(facing_angle(m), -facing_angle(j), atol=1e-6)
        f, fm = joints_to_features(j), joints_to_features(m)
        assert np.abs(mirror_features(f) - fm).max() < 1e-6, stem
    # the cartwheel goes to the body's left (+X); its mirror image to the right
    cw = clips["cartwheel"]
    assert cw[-1, 0, 0] > 2.0 and mirror_joints(cw)[-1, 0, 0] < -2.0


def test_features_round_trip_to_the_joints(clips):
    for stem in ("walk", "backflip", "roll", "getup_facedown"):
        j = clips[stem]
        back = recover_from_ric_np(joints_to_features(j))
        assert np.abs(back - j[:-1]).max() < 1e-3, stem  # 1 mm, through flips and turns


def test_looping_clips_are_repeated_continuously_and_others_kept(skeleton, clips):
    walk = D.read_clip(DEEPMIMIC / "motions" / "humanoid3d_walk.txt", skeleton)
    tiled = D.tile_cycles(walk, 3)
    assert len(tiled.times) == 3 * len(walk.times) - 2 and np.allclose(np.diff(tiled.times), walk.times[1])
    step = np.linalg.norm(np.diff(tiled.root, axis=0), axis=-1)
    assert step.max() < 3 * np.median(step)  # no jump back at the seams
    assert np.isclose(tiled.root[-1, 0] - tiled.root[0, 0], 3 * (walk.root[-1, 0] - walk.root[0, 0]))
    assert 8.0 <= len(clips["walk"]) / 20 <= 9.05  # repeated to about 9 s at 20 fps
    kick = D.read_clip(DEEPMIMIC / "motions" / "humanoid3d_kick.txt", skeleton)
    assert not kick.loop and len(clips["kick"]) == int(kick.times[-1] * 20 + 1e-6) + 1


def test_resampling_slerps_between_source_frames(skeleton):
    clip = D.read_clip(DEEPMIMIC / "motions" / "humanoid3d_backflip.txt", skeleton)
    r = D.resample(clip, 20.0)
    assert np.allclose(np.diff(r.times), 0.05)
    # rotations move at constant angular speed between source frames (slerp, not a normalised lerp)
    def angle(a, b):
        return 2 * np.arccos(np.clip(np.abs((a * b).sum(-1)), 0.0, 1.0))

    checked = 0
    for k, t in enumerate(r.times):
        src = int(np.searchsorted(clip.times, t, side="right") - 1)
        a = (t - clip.times[src]) / 0.0625
        if src + 1 >= len(clip.times) or not 0.1 < a < 0.9:
            continue
        whole = angle(clip.quats[src], clip.quats[src + 1])
        big = whole > 0.3  # joints turning more than ~17° in this step
        if big.any():
            assert np.allclose(angle(clip.quats[src], r.quats[k])[big], a * whole[big], atol=1e-6)
            checked += 1
    assert checked > 10


def test_build_writes_the_bandai_layout_read_by_training(skeleton, tmp_path):
    bandai = tmp_path / "bandai"
    bandai.mkdir()
    # a one-clip Bandai-layout main dataset supplies the statistics
    j = canonicalize(bvh_to_smpl22((DATA / "dataset-2_walk-turn-left_active_024.bvh").read_text()))
    f = joints_to_features(j).astype(np.float32)
    np.save(bandai / "joints.npy", j.astype(np.float32))
    np.save(bandai / "features.npy", f)
    np.save(bandai / "mean.npy", f.mean(0))
    np.save(bandai / "std.npy", f.std(0) + 0.1)
    (bandai / "clips.json").write_text(json.dumps([{"name": "b", "dataset": 2, "content": "walk", "style": "normal",
                                                    "split": "train", "frames": len(j), "joint_start": 0,
                                                    "feature_start": 0}]))
    (bandai / "captions.json").write_text(json.dumps({"b": {"train": ["A person walks."], "heldout": []}}))
    out = tmp_path / "dm"
    meta = D.build(out, DEEPMIMIC)
    assert meta["clips"] == 20 and "MIT" in (out / "LICENSE_NOTICE.txt").read_text()
    recs = json.loads((out / "clips.json").read_text())
    caps = json.loads((out / "captions.json").read_text())
    assert {r["content"] for r in recs} >= {"jump", "cartwheel", "crawl", "backflip", "roll"}
    assert all(r["split"] == "train" and r["dataset"] == "deepmimic" for r in recs)
    assert all(len(caps[r["name"]]["train"]) >= 20 for r in recs)

    from salad_model.training.train import MotionData

    data = MotionData(bandai, "train", extra_dirs=(out,))
    dm = [it for it in data.items if it["dataset"] == "deepmimic"]
    assert len(dm) == 40 and sum(it["mirrored"] for it in dm) == 20
    jump = next(it for it in dm if it["name"] == "deepmimic_jump" and not it["mirrored"])
    feats = np.load(out / "features.npy")[recs[[r["name"] for r in recs].index("deepmimic_jump")]["feature_start"]:][
        : len(jump["features"])]
    # normalised with the main dataset's statistics
    assert np.allclose(jump["features"] * np.load(bandai / "std.npy") + np.load(bandai / "mean.npy"), feats, atol=1e-4)
    assert any("jump" in c.lower() for c in jump["captions"])
