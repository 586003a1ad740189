"""Prompt interpolation across a timeline seam: each latent frame's cross attention reads a per-frame blend
of the previous and the new prompt; the rest of the network, and everything before the segment, unchanged."""

import numpy as np
import pytest
import torch

from salad_model.runtime.attention import FUSED
from salad_model.runtime.pipeline import InputError
from salad_model.runtime.shot_text_blend import TextBlend, blended_contexts, blended_text
from salad_model.runtime.shots import Segment, ShotDirector

STEPS = 3
SEGS = [Segment("a person walks forward", 3.0), Segment("a person waves", 2.4), Segment("a person runs", 3.2)]


def _v(pipe, z, cond, null=None):
    with torch.inference_mode():
        return pipe.denoiser(z, 500, cond if null is None else type(cond).cat([null, cond]))


def test_weights_switch_or_ramp_around_the_seam():
    assert TextBlend(0, 0).weights(5, 9).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    w = TextBlend(-2, 3).weights(5, 9).tolist()  # rises from the 4th held frame over 3 frames
    assert w == pytest.approx([0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1])


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_a_frame_reading_one_prompt_fully_gets_that_prompts_prediction(tiny_pipeline, share):
    """Weight 0 everywhere = the previous prompt alone, 1 = the new one alone (tolerance 1e-5: the plain
    path's cross attention is folded, another rounding)."""
    pipe = tiny_pipeline
    prev, new, null = (
        pipe.text_context(["a person walks"]),
        pipe.text_context(["a person waves both hands"]),
        pipe._null(1),
    )
    z = torch.randn(1, 6, 7, pipe.denoiser.config.vae_dim, generator=torch.Generator().manual_seed(0))
    cond, _, half = blended_contexts(prev, new, null)
    with blended_text(pipe.denoiser, half, torch.full((6,), share)):
        got = _v(pipe, z, cond)
    want = _v(pipe, z, new if share else prev)
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(_v(pipe, z, new), _v(pipe, z, prev), atol=1e-3)  # the prompts do differ
    assert all(m.processor is FUSED for m in pipe.denoiser.modules() if hasattr(m, "processor"))  # restored


def test_a_half_blend_is_the_mean_of_the_two_cross_attention_outputs(tiny_pipeline):
    """With a 1-layer view: a frame's cross attention at weight ½ lies halfway between the two prompts'."""
    pipe = tiny_pipeline
    layer = pipe.denoiser.transformer.middle_block
    prev, new, null = pipe.text_context(["a person walks"]), pipe.text_context(["a person jumps"]), pipe._null(1)
    cond, _, half = blended_contexts(prev, new, null)
    x = torch.randn(1, 4 * 7, pipe.denoiser.config.latent_dim, generator=torch.Generator().manual_seed(1))
    mid = pipe.denoiser.transformer.input_blocks.__len__()
    with torch.inference_mode():
        a = layer.cross_attn(x, kv=prev.kv[mid], mask=prev.mask)
        b = layer.cross_attn(x, kv=new.kv[mid], mask=new.mask)
        with blended_text(pipe.denoiser, half, torch.tensor([0.0, 0.5, 1.0, 0.25])):
            got = layer.cross_attn(x, kv=cond.kv[mid], mask=cond.mask).view(4, 7, -1)
    a, b = a.view(4, 7, -1), b.view(4, 7, -1)
    for t, w in enumerate([0.0, 0.5, 1.0, 0.25]):
        assert torch.allclose(got[t], (1 - w) * a[t] + w * b[t], atol=1e-5)


@pytest.fixture(scope="module")
def blended(tiny_pipeline):
    return ShotDirector(tiny_pipeline, steps=STEPS, text_blend=TextBlend(-2, 4))


def test_text_blend_changes_the_segment_after_the_seam_and_nothing_before_it(tiny_pipeline, blended):
    plain = ShotDirector(tiny_pipeline, steps=STEPS, text_blend=None).compose(SEGS, seed=5)
    m = blended.compose(SEGS, seed=5)
    first_new = m.meta["shot"]["segments"][1]["content_start"]  # segment 2's first generated frame
    # segment 1's window is the same (no previous prompt): bit-identical up to segment 2's first window's
    # smoothing and decoder reach (features) — the decode differs only where the latent does
    lat_seam = first_new // 4
    assert torch.equal(m.latent[:, :lat_seam], plain.latent[:, :lat_seam])
    assert (m.latent[:, lat_seam:] - plain.latent[:, lat_seam:]).abs().max() > 1e-4
    assert m.joints.shape == plain.joints.shape and np.isfinite(m.joints).all()


def test_text_blend_keeps_the_prefix_when_a_later_segment_changes(blended):
    base = blended.compose(SEGS, seed=5)
    other = blended.compose([SEGS[0], Segment("a person jumps", 2.4), SEGS[2]], seed=5)
    start = base.meta["shot"]["segments"][1]["start"]
    assert np.array_equal(other.joints[:start], base.joints[:start])
    assert np.abs(other.joints[start:] - base.joints[start:]).max() > 1e-3
    last = blended.compose([SEGS[0], SEGS[1], Segment("a person jumps", 3.2)], seed=5)
    start = base.meta["shot"]["segments"][2]["start"]
    assert np.array_equal(last.joints[:start], base.joints[:start])


@pytest.mark.parametrize("blend", [TextBlend(-9, 0), TextBlend(0, -1), TextBlend(0.5, 2)])
def test_bad_text_blends_are_refused(tiny_pipeline, blend):
    with pytest.raises(InputError, match="text blend"):
        ShotDirector(tiny_pipeline, steps=STEPS, text_blend=blend)
