"""Pipeline behaviour on a tiny random model: determinism, validation, editing properties."""

import numpy as np
import pytest
import torch

from salad_model.motion.skeleton import T2M
from salad_model.runtime.pipeline import InputError

FRAMES = 64


def test_same_inputs_same_motion_and_seed_matters(tiny_pipeline):
    a = tiny_pipeline.generate("a person walks forward", frames=FRAMES, seed=1)
    b = tiny_pipeline.generate("a person walks forward", frames=FRAMES, seed=1)
    c = tiny_pipeline.generate("a person walks forward", frames=FRAMES, seed=2)
    assert a.joints.shape == (FRAMES, 22, 3) and a.features.shape == (FRAMES, 263)
    assert np.array_equal(a.joints, b.joints)
    assert np.abs(a.joints - c.joints).max() > 1e-3
    assert a.meta["seed"] == 1 and a.meta["frames"] == FRAMES and a.meta["model"] == "random-tiny"


def test_batch_with_mixed_lengths_matches_single(tiny_pipeline):
    """Padded frames are masked: a short clip in a batch with a longer one equals it alone (1e-5)."""
    single = tiny_pipeline.generate("a person jumps", frames=48, seed=5)
    batch = tiny_pipeline.generate_batch(["a person jumps", "someone runs"], frames=[48, 80], seeds=[5, 6])
    assert batch[0].joints.shape == (48, 22, 3) and batch[1].joints.shape == (80, 22, 3)
    # Masked sampling of a 12-latent-frame clip in a 20-frame batch equals sampling it alone, up to noise
    # drawn for the longer padding (the first 12 latent frames of seeded noise are the same).
    ref = tiny_pipeline.generate_batch(["a person jumps"], frames=[48], seeds=[5])[0]
    assert np.abs(single.joints - ref.joints).max() == 0
    # The padded latent frames must not leak into the shorter clip's decode (they once moved its last
    # frames by 0.12 m); 1e-5 m allows float32 reduction-order noise between batch sizes.
    assert np.abs(batch[0].joints - single.joints).max() < 1e-5
    assert np.abs(batch[0].features - single.features).max() < 1e-5


def test_seconds_to_frames_and_ranges(tiny_pipeline):
    assert tiny_pipeline.frames_for(4.0) == 80
    assert tiny_pipeline.frames_for(2.1) == 40
    with pytest.raises(InputError, match=r"out of range.*40–196 frames"):
        tiny_pipeline.generate("walk", seconds=30)
    with pytest.raises(InputError, match="steps of 4"):
        tiny_pipeline.generate("walk", frames=81)
    with pytest.raises(InputError, match="positive number of seconds"):
        tiny_pipeline.generate("walk", seconds=-1)
    with pytest.raises(InputError, match="unknown sampler"):
        tiny_pipeline.generate("walk", frames=40, scheduler="euler")


@pytest.mark.parametrize("prompt", ["", "   ", None])
def test_empty_prompt_is_refused(tiny_pipeline, prompt):
    with pytest.raises(InputError, match="(?i)empty|prompt"):
        tiny_pipeline.generate(prompt, frames=40)


def test_overlong_prompt_is_refused(tiny_pipeline):
    with pytest.raises(InputError, match="(?i)tokens"):
        tiny_pipeline.generate("walk " * 200, frames=40)


def test_raw_text_features_path(tiny_pipeline):
    feats, mask = tiny_pipeline.text_encoder.encode(["a person walks"])
    a = tiny_pipeline.generate(frames=40, seed=3, text_features=(feats[0], mask[0]))
    b = tiny_pipeline.generate("a person walks", frames=40, seed=3)
    assert np.abs(a.joints - b.joints).max() < 1e-5
    with pytest.raises(InputError, match="expects 16"):
        tiny_pipeline.generate(frames=40, text_features=(torch.zeros(77, 8), mask[0]))


def test_dpm_solver_runs_and_approaches_ddim(tiny_pipeline):
    ddim = tiny_pipeline.generate("a person waves", frames=FRAMES, seed=0, steps=50)
    dpm20 = tiny_pipeline.generate("a person waves", frames=FRAMES, seed=0, steps=20, scheduler="dpm++")
    other = tiny_pipeline.generate("a person waves", frames=FRAMES, seed=9, steps=50)
    assert np.abs(dpm20.joints - ddim.joints).mean() < np.abs(other.joints - ddim.joints).mean()


# -- editing properties (mean per-joint distance in metres is the measure) -------------------------


def dist(a, b) -> float:
    return float(np.linalg.norm(a.joints - b.joints, axis=-1).mean())


@pytest.fixture(scope="module")
def source(tiny_pipeline):
    return tiny_pipeline.generate("a person walks and waves", frames=FRAMES, seed=4)


def test_reweight_scale_one_equals_generation(tiny_pipeline, source):
    e = tiny_pipeline.edit("a person walks and waves", frames=FRAMES, seed=4, word="waves", scale=1.0)
    assert dist(e, source) < 1e-4


def test_word_swap_to_identical_prompt_equals_source(tiny_pipeline, source):
    e = tiny_pipeline.edit("a person walks and waves", frames=FRAMES, seed=4,
                           edit_prompt="a person walks and waves", mode="word_swap")
    assert dist(e, source) < 1e-4


def test_mirror_twice_equals_no_mirror(tiny_pipeline, source):
    """Swapping part rows is an involution: applied twice inside one layer it is the identity map."""
    from salad_model.runtime.editing import Mirror

    m = Mirror("all")
    ca = torch.rand(2, 16 * 7, 10)
    assert torch.equal(m.cross(m.cross(ca, None, ca, 0), None, ca, 0), ca)
    once = tiny_pipeline.edit("a person walks and waves", frames=FRAMES, seed=4, mirror="all",
                              mirror_method="attention")
    assert dist(once, source) > 1e-4  # mirroring does change the motion
    assert once.meta["edits"][0]["which"] == "all" and "attention" in once.meta["edits"][0]["why"]


def test_mirror_self_attention_option_permutes_parts_consistently():
    """mirror_self: skeletal maps [T', H, 7, 7] swap query AND key parts, temporal maps [7, H, T', T'] swap
    the part axis; the paper's default leaves both untouched."""
    from salad_model.runtime.editing import Mirror

    skel, temp = torch.rand(5, 2, 7, 7), torch.rand(7, 2, 5, 5)
    assert Mirror("all").self_attention(skel, "skel") is skel
    m = Mirror("upper", mirror_self=True)
    out = m.self_attention(skel, "skel")
    assert torch.equal(out[:, :, 4, 5], skel[:, :, 5, 4]) and torch.equal(out[:, :, 4, 0], skel[:, :, 5, 0])
    assert torch.equal(out[:, :, 1, 2], skel[:, :, 1, 2])  # legs untouched by an upper-body mirror
    assert torch.equal(m.self_attention(out, "skel"), skel)
    t = m.self_attention(temp, "temp")
    assert torch.equal(t[4], temp[5]) and torch.equal(t[0], temp[0]) and torch.equal(m.self_attention(t, "temp"), temp)


def test_geometric_mirror_is_the_exact_mirror_image_of_the_source(tiny_pipeline, source):
    """The default mirror: the source generation's features, mirrored channel by channel (no sampling)."""
    from salad_model.motion.motion_process import mirror_features

    mir, src = tiny_pipeline.edit("a person walks and waves", frames=FRAMES, seed=4, mirror="all",
                                  return_source=True)
    assert dist(src, source) < 1e-5  # the same generation …
    np.testing.assert_allclose(mir.features, mirror_features(source.features), atol=1e-6)  # … mirrored
    np.testing.assert_allclose(mir.joints[:, :, 0], -source.joints[:, T2M.mirror, 0], atol=1e-4)
    np.testing.assert_allclose(mir.joints[:, :, 1:], source.joints[:, T2M.mirror, 1:], atol=1e-4)
    assert mir.meta["edits"][-1] == {"mode": "mirror", "which": "all", "method": "geometric",
                                     "why": "exact mirror image (all)"}
    assert mir.meta["seed"] == 4 and mir.meta["prompt"] == "a person walks and waves"  # still a recipe
    twice = tiny_pipeline.mirror_motion(mir, "all")
    np.testing.assert_allclose(twice.features, source.features, atol=1e-6)
    arms = tiny_pipeline.edit("a person walks and waves", frames=FRAMES, seed=4, mirror="upper")
    legs_and_trunk = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15]
    np.testing.assert_allclose(arms.joints[:, legs_and_trunk], source.joints[:, legs_and_trunk], atol=1e-4)
    with pytest.raises(InputError, match="mirror.method"):
        tiny_pipeline.edit("a person walks", frames=40, mirror="all", mirror_method="magic")


def test_edit_closer_to_source_than_unrelated_seed(tiny_pipeline, source):
    e = tiny_pipeline.edit("a person walks and waves", frames=FRAMES, seed=4, edit_prompt="a person runs and waves")
    unrelated = tiny_pipeline.generate("a person runs and waves", frames=FRAMES, seed=11)
    assert dist(e, source) < dist(unrelated, source)
    assert e.meta["edits"][0]["mode"] == "word_swap" and e.meta["edit_prompt"] == "a person runs and waves"


def test_cached_source_maps_give_identical_edits(tiny_pipeline):
    tiny_pipeline.clear_cache()
    kw = dict(frames=FRAMES, seed=7, word="walks", scale=2.0)
    first = tiny_pipeline.edit("a person walks", **kw)
    assert tiny_pipeline._maps_cache is not None
    second = tiny_pipeline.edit("a person walks", **kw)
    assert dist(first, second) < 1e-5


def test_generation_with_recorded_maps_makes_edits_cache_hits(tiny_pipeline):
    tiny_pipeline.clear_cache()
    plain = tiny_pipeline.generate("a person walks", frames=FRAMES, seed=8)
    recorded = tiny_pipeline.generate("a person walks", frames=FRAMES, seed=8, record_maps=True)
    assert dist(plain, recorded) < 1e-5  # recording does not change the motion
    assert tiny_pipeline._maps_cache is not None and len(tiny_pipeline._maps_cache.maps) == 50
    hit, src = tiny_pipeline.edit("a person walks", frames=FRAMES, seed=8, word="walks", scale=2.0,
                                  return_source=True)
    assert src is None  # the source pass was skipped
    tiny_pipeline.clear_cache()
    miss = tiny_pipeline.edit("a person walks", frames=FRAMES, seed=8, word="walks", scale=2.0)
    assert dist(hit, miss) < 1e-5


def test_edit_input_errors(tiny_pipeline):
    with pytest.raises(InputError, match="'jumps'"):
        tiny_pipeline.edit("a person walks", frames=40, word="jumps", scale=2.0)
    with pytest.raises(InputError, match="scale"):
        tiny_pipeline.edit("a person walks", frames=40, word="walks", scale=None)
    with pytest.raises(InputError, match="mirror.*must be one of"):
        tiny_pipeline.edit("a person walks", frames=40, mirror="diagonal")
    with pytest.raises(InputError, match="new prompt"):
        tiny_pipeline.edit("a person walks", frames=40)


def test_attention_maps_per_token(tiny_pipeline):
    a = tiny_pipeline.attention("a person walks", frames=FRAMES, seed=0)
    assert a.tokens[1:-1] == ["a", "person", "walks"]
    assert a.maps.shape == (len(a.tokens), 7, FRAMES // 4)
    # Softmax over the valid tokens: per (part, frame) the maps sum to 1 over tokens.
    assert np.allclose(a.maps.sum(0), 1.0, atol=1e-5)
