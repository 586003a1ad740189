"""Real motion of N poses comes back as N poses everywhere (runtime.pose_count): features, inversion,
edit_real, shot sources (continue, in-between, part regeneration), and the minimum lengths users see."""

import numpy as np
import pytest
from testdata import DATA

from salad_model.motion.bandai_rig import bvh_to_smpl22
from salad_model.motion.motion_process import canonicalize, mirror_joints, recover_from_ric_np
from salad_model.runtime.pipeline import InputError
from salad_model.runtime.pose_count import cut_padding, pad_to_stride, shift_index, with_end_pose
from salad_model.runtime.shots import ShotDirector

CLIP = DATA / "dataset-2_walk-turn-left_active_024.bvh"  # 73 poses at 20 fps
EXACT = 1e-5  # metres: float32 features integrated back to joints


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return bvh_to_smpl22(CLIP.read_text())  # not canonicalised


@pytest.fixture(scope="module")
def director(tiny_pipeline):
    return ShotDirector(tiny_pipeline, steps=2)


def rel(j: np.ndarray) -> np.ndarray:
    return j - j[..., :1, :]


def test_helpers():
    j = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)
    ext = with_end_pose(j)
    assert ext.shape == (3, 2, 3) and np.array_equal(ext[2], 2 * j[1] - j[0])
    f = np.arange(10, dtype=float).reshape(5, 2)
    p = pad_to_stride(f)
    assert p.shape == (8, 2) and np.array_equal(p[:5], f) and np.array_equal(p[5:], np.repeat(f[-1:], 3, 0))
    assert pad_to_stride(f[:4]).shape == (4, 2)
    assert np.array_equal(cut_padding(p, 5, 8), f)
    assert [shift_index(x, 5, 8) for x in (4, 5, 6, 8, 12)] == [4, 5, 5, 5, 9]
    assert shift_index(12, 5, 8, end=7) == 7


@pytest.mark.parametrize("n", [45, 73])
def test_features_cover_every_pose_exactly(tiny_pipeline, clip, n):
    feats, _ = tiny_pipeline.motion_features(clip[:n])
    assert feats.shape == (n, 263)  # was n − 1: the step after the last pose was missing
    back = recover_from_ric_np(feats)
    src = canonicalize(clip[:n])
    assert np.abs(back - src).max() < EXACT  # first and last pose included


def test_inversion_and_edit_real_keep_the_frame_count(tiny_pipeline, clip):
    inv = tiny_pipeline.invert("a person walks", joints=clip[:45], steps=2)
    assert (inv.frames, inv.poses) == (48, 45)  # padded for the VAE's stride, cut from every result
    assert len(tiny_pipeline.reconstruct(inv).joints) == 45
    out = tiny_pipeline.edit_real("a person walks", joints=clip[:45], steps=2)
    assert out.joints.shape == (45, 22, 3) and out.features.shape == (45, 263) and out.meta["frames"] == 45
    with pytest.raises(InputError, match="15 frames long; inversion needs at least 16"):
        tiny_pipeline.invert("a person walks", joints=clip[:15], steps=2)
    assert tiny_pipeline.invert("a person walks", joints=clip[:16], steps=2).poses == 16  # was refused (15 → 12)


def test_windowed_edit_real_keeps_the_frame_count(tiny_pipeline, clip):
    long = np.concatenate([clip, clip[::-1], clip, clip[::-1][:11]])  # 230 poses: two windows
    out = tiny_pipeline.edit_real("a person walks", joints=long, steps=2)
    assert len(out.joints) == 230 and out.meta["windows"][-1][1] == 230


def test_exact_mirror_keeps_first_and_last_pose(tiny_pipeline, clip):
    out = tiny_pipeline.edit_real("a person walks", joints=clip[:45], mode="mirror", mirror="all")
    want = mirror_joints(canonicalize(clip[:45]))
    assert len(out.joints) == 45
    for k in (0, -1):  # body shape of the first and last pose, root-relative
        assert np.abs(rel(out.joints[k]) - rel(want[k])).max() < EXACT


def test_part_regeneration_takes_a_2_second_real_source(director, clip):
    out = director.regenerate_parts(clip[:40], "a person waves", "arms", seed=0)  # 2.0 s at 20 fps
    assert out.joints.shape == (40, 22, 3)
    out = director.regenerate_parts(clip[:43], "a person waves", "arms", seed=0)
    assert out.joints.shape == (43, 22, 3)
    with pytest.raises(InputError, match=r"this one is 39 frames \(1.95 s\)"):
        director.regenerate_parts(clip[:39], "a person waves", "arms", seed=0)


def test_continue_keeps_every_source_pose(director, tiny_pipeline, clip):
    n = 45
    out = director.continue_motion(clip[:n], "a person runs", 1.6, seed=0)
    assert len(out.joints) == n + 32 and out.meta["shot"]["source_frames"] == n
    assert out.meta["shot"]["seams"][0] == n
    a = out.meta["shot"]["blend"][0]
    src, _ = tiny_pipeline.motion_features(clip[:n])
    assert np.array_equal(out.features[:a], src[:a])  # the untouched part is the source's, bit for bit
    assert np.abs(rel(out.joints[0]) - rel(canonicalize(clip[:n])[0])).max() < EXACT


def test_inbetween_keeps_every_pose_of_a_and_b(director, tiny_pipeline, clip):
    a, b = clip[:45], clip[20:67]  # 45 and 47 poses: neither a multiple of 4
    out = director.inbetween(a, b, "a person turns", 1.0, seed=0)
    sh = out.meta["shot"]
    assert len(out.joints) == 45 + 20 + 47 and (sh["a_frames"], sh["b_frames"]) == (45, 47)
    assert sh["seams"] == [45, 65]
    fb, _ = tiny_pipeline.motion_features(b)
    fa, _ = tiny_pipeline.motion_features(a)
    assert np.array_equal(out.features[0], fa[0]) and np.array_equal(out.features[-1], fb[-1])
    # B's last pose keeps its shape (position and heading follow the gap): root-relative, up to a yaw
    got, want = rel(out.joints[-1]), rel(canonicalize(b)[-1])
    assert abs(np.linalg.norm(got, axis=-1) - np.linalg.norm(want, axis=-1)).max() < EXACT
    assert abs(got[:, 1] - want[:, 1]).max() < EXACT
