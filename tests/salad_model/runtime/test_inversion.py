"""Editing real motion: inversion reconstructs, edits change it, long clips are windowed and stitched."""

import numpy as np
import pytest
import torch
from testdata import DATA

from salad_model.runtime.pipeline import InputError, SaladPipeline

CLIP = DATA / "dataset-2_walk-turn-left_active_024.bvh"


def mpjpe(a: np.ndarray, b: np.ndarray) -> float:
    """Root-aligned mean per-joint position error (metres)."""
    return float(np.linalg.norm((a - a[:, :1]) - (b - b[:, :1]), axis=-1).mean())


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return tiny_pipeline


@pytest.fixture(scope="module")
def joints():
    from salad_model.motion.bandai_rig import bvh_to_smpl22

    return bvh_to_smpl22(CLIP.read_text())  # not canonicalised: motion_features must handle that


@pytest.fixture(scope="module")
def inverted(pipe, joints):
    return pipe.invert("a person walks and turns left", joints=joints, steps=20, null_text_iters=10)


def vae_joints(pipe, inv) -> np.ndarray:
    return pipe.decode(inv.z0)[1][0][: inv.poses]  # results are cut to the input's own frames


def test_inversion_reconstructs_close_to_the_vae(pipe, inverted):
    assert inverted.z_T.shape == inverted.z0.shape and len(inverted.nulls) == 20
    rec = pipe.reconstruct(inverted)
    ref = vae_joints(pipe, inverted)
    gen = pipe.generate("a person walks and turns left", frames=inverted.frames, seed=0, steps=20)
    # Inversion must land far closer to the VAE reconstruction than an unrelated sample does.
    assert len(rec.joints) == inverted.poses == len(ref)
    assert mpjpe(rec.joints, ref) < 0.3 * mpjpe(gen.joints[: inverted.poses], ref)
    assert rec.meta["source"] == "inversion"


def test_null_text_beats_plain_cfg_from_the_inverted_noise(pipe, inverted):
    """Without the optimised nulls, CFG 7.5 from the inverted noise drifts further from the input."""
    from salad_model.runtime.sampling import sample

    cond = pipe.text_context([inverted.prompt])
    with torch.inference_mode():
        z = sample(pipe.denoiser, inverted.z_T, cond, pipe._null(1), inverted.guidance, inverted.steps)
    plain = pipe.decode(z)[1][0][: inverted.poses]
    ref = vae_joints(pipe, inverted)
    assert mpjpe(pipe.reconstruct(inverted).joints, ref) < mpjpe(plain, ref)


def test_edit_of_real_motion_changes_it_but_stays_close(pipe, inverted):
    ref = pipe.reconstruct(inverted)
    mir = pipe.edit_inverted(inverted, mirror="all", mirror_method="attention")
    assert mir.meta["edits"][0]["mode"] == "mirror" and mir.meta["source"] == "inversion"
    d_edit = mpjpe(mir.joints, ref.joints)
    other = pipe.generate("a person walks and turns left", frames=inverted.frames, seed=5, steps=20)
    assert 0 < d_edit < mpjpe(other.joints[: inverted.poses], ref.joints)


def test_edits_of_a_plain_ddim_inversion_use_the_edit_guidance(pipe, joints):
    """A plain DDIM inversion retraces at guidance 1; its edits default to REAL_EDIT_GUIDANCE, or as asked."""
    from salad_model.runtime.pipeline import REAL_EDIT_GUIDANCE

    inv = pipe.invert("a person walks and turns left", joints=joints, steps=5)
    assert inv.guidance == 1.0 and inv.nulls is None
    a = pipe.edit_inverted(inv, edit_prompt="a person runs and turns left")
    b = pipe.edit_inverted(inv, edit_prompt="a person runs and turns left", edit_guidance=1.0)
    assert a.meta["edits"][0]["guidance"] == REAL_EDIT_GUIDANCE and b.meta["edits"][0]["guidance"] == 1.0
    assert np.abs(a.joints - b.joints).max() > 1e-4
    with pytest.raises(InputError, match="guidance"):
        pipe.edit_inverted(inv, word="walks", scale=2.0, edit_guidance=-1.0)


def test_geometric_mirror_of_real_motion_needs_no_inversion(pipe, joints):
    """The default mirror of real motion is exact, on the input itself, at its full length."""
    from salad_model.motion.features import recover_from_ric
    from salad_model.motion.motion_process import mirror_joints

    mir = pipe.edit_real("a person walks and turns left", joints=joints, mirror="all")
    assert mir.meta["source"] == "input" and mir.meta["edits"][0]["method"] == "geometric"
    feats, _ = pipe.motion_features(joints)
    assert len(mir.joints) == len(feats)  # no ×4 crop, no windows
    canon = mirror_joints(recover_from_ric(torch.from_numpy(feats), 22).numpy())
    assert np.abs(mir.joints - canon).max() < 1e-4


def test_long_clip_is_windowed_and_blended(joints, tiny_model_dir):
    p = SaladPipeline.from_pretrained(tiny_model_dir, device="cpu")
    p.info["max_frames"] = 40  # force windows on the 73-frame clip (padded to 76 for the VAE, cut again)
    out = p.edit_real("a person walks and turns left", joints=joints, overlap=12, steps=5, null_text_iters=0)
    assert out.meta["windows"] == [[0, 40], [28, 68], [36, 73]]
    assert out.joints.shape == (73, 22, 3) and np.isfinite(out.joints).all()
    # No jump at the window seams: frame-to-frame root motion stays within the clip's own range.
    step = np.linalg.norm(np.diff(out.joints[:, 0], axis=0), axis=-1)
    assert step.max() < 5 * np.median(step) + 0.05
    assert set(np.unique(out.features[:, -4:])) <= {0.0, 1.0}


def test_real_motion_input_errors(pipe):
    with pytest.raises(InputError, match=r"joints \[T, 22, 3\]"):
        pipe.invert("walk", joints=np.zeros((30, 21, 3)))
    with pytest.raises(InputError, match="NaN"):
        pipe.invert("walk", joints=np.full((30, 22, 3), np.nan))
    with pytest.raises(InputError, match="at least 16"):
        pipe.invert("walk", features=np.zeros((10, 263), np.float32))
    with pytest.raises(InputError, match="edit_real"):
        pipe.invert("walk", features=np.zeros((400, 263), np.float32))




def test_null_text_checks_for_a_cancel_on_every_iteration(pipe, joints):
    """Before: the worker's cancel was seen only in the per-step callback, so a Cancel during null-text
    optimisation waited for the whole step (up to 1,000 forward and backward passes)."""
    from salad_model.runtime.sampling import Cancelled

    calls = []
    pipe.invert("a person walks", joints=joints, steps=3, null_text_iters=4, guidance=2.5,
                check=lambda: calls.append(1))
    assert len(calls) == 3 * 4  # each step's every iteration (the loss never reaches 1e-7 on this clip)

    def cancel_at_the_second():
        calls.append(2)
        if calls.count(2) == 2:
            raise Cancelled()

    steps_done = []
    with pytest.raises(Cancelled):
        pipe.edit_real("a person walks", joints=joints, steps=3, null_text_iters=50, guidance=2.5,
                       callback=lambda i, n: steps_done.append(i), check=cancel_at_the_second)
    assert calls.count(2) == 2 and steps_done == [1, 2, 3]  # stopped inside the first null-text step


def test_edit_real_checks_for_a_cancel_while_it_samples_the_edit(pipe, joints):
    """Before: each window's edit (or reconstruction) was sampled with no callback, so a cancel after the
    inversion waited for the whole edit of the window (source and edit: 2 x steps)."""
    calls = []
    pipe.edit_real("a person walks", joints=joints, steps=3, null_text_iters=0, check=lambda: calls.append(1))
    assert len(calls) == 3  # the reconstruction's 3 steps (no null-text iterations)
