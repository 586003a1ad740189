"""The two after-seam options of a timeline: the new prompt's content words re-weighted on the new frames
(shot_reweight) and guidance whose unconditional branch does not see the held context (shot_free_guidance).
Each changes a segment's first window only where it says, and leaves every frame before the segment alone."""

import numpy as np
import pytest
import torch

from salad_model.runtime.attention import FUSED, ControlledAttnProcessor, processor_installed
from salad_model.runtime.editing import Reweight
from salad_model.runtime.inpainting import Inpainting
from salad_model.runtime.pipeline import InputError
from salad_model.runtime.shot_free_guidance import context_free_frames
from salad_model.runtime.shot_reweight import ContentReweight, NewFramesReweight, content_token_indices
from salad_model.runtime.shot_text_blend import TextBlend
from salad_model.runtime.shots import Segment, ShotDirector

STEPS = 3
SEGS = [Segment("a person walks forward", 3.0), Segment("a person waves", 2.4), Segment("a person runs", 3.2)]
LONG = [Segment("a person walks forward", 12.0), *SEGS[1:]]  # the first segment spans two windows


class _Tokens:
    def __init__(self, labels):
        self.labels = labels

    def tokens(self, prompt):
        return self.labels


@pytest.mark.parametrize("labels, want", [
    (["[CLS]", "A", "person", "raises", "both", "hands", ".", "[SEP]"], [3, 4, 5]),
    (["<|startoftext|>", "a</w>", "man</w>", "waves</w>", "his</w>", "left</w>", "hand</w>", "<|endoftext|>"],
     [3, 5, 6]),
    (["[CLS]", "Someone", "jog", "##s", ",", "then", "stops", "[SEP]"], [2, 3, 6]),
])
def test_content_words_are_the_action_words_not_who_or_punctuation(labels, want):
    assert content_token_indices(_Tokens(labels), "") == want


def _cross(pipe, controller=None):
    """One cross-attention layer's output for [uncond; cond] queries of 4 latent frames (time-major)."""
    layer = pipe.denoiser.transformer.middle_block
    mid = len(pipe.denoiser.transformer.input_blocks)
    ctx = type(pipe._null(1)).cat([pipe._null(1), pipe.text_context(["a person waves both hands"])])
    x = torch.randn(1, 4 * 7, pipe.denoiser.config.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        if controller is None:
            return layer.cross_attn(torch.cat([x, x]), kv=ctx.kv[mid], mask=ctx.mask).view(2, 4, 7, -1)
        with processor_installed(pipe.denoiser, ControlledAttnProcessor(controller)):
            return layer.cross_attn(torch.cat([x, x]), kv=ctx.kv[mid], mask=ctx.mask).view(2, 4, 7, -1)


def test_reweighting_changes_the_conditional_rows_new_frames_only(tiny_pipeline):
    """Frames 0–1 held, 2–3 new: only the conditional row's new frames read the scaled words (tolerance 1e-5:
    explicit softmax against the fused path)."""
    pipe = tiny_pipeline
    plain = _cross(pipe)
    new = torch.tensor([False, False, True, True])
    same = _cross(pipe, NewFramesReweight(Reweight([3, 4, 5], 1.0), new))
    assert torch.allclose(same, plain, atol=1e-5)  # scale 1 is the plain attention
    got = _cross(pipe, NewFramesReweight(Reweight([3, 4, 5], 2.5), new))
    assert torch.allclose(got[0], plain[0], atol=1e-5)  # unconditional row untouched
    assert torch.allclose(got[1, :2], plain[1, :2], atol=1e-5)  # held frames untouched
    assert (got[1, 2:] - plain[1, 2:]).abs().amax(-1).min() > 1e-4  # every new token changed
    assert all(m.processor is FUSED for m in pipe.denoiser.modules() if hasattr(m, "processor"))  # restored


def test_the_unconditional_branch_of_free_guidance_does_not_see_the_held_frames(tiny_pipeline):
    """Changing the held frames changes the conditional prediction on the new frames, not the unconditional
    one (exactly: masked keys get probability 0)."""
    pipe = tiny_pipeline
    dim = pipe.denoiser.config.vae_dim
    held = torch.zeros(1, 6, 7, dtype=torch.bool)
    held[:, :2] = True
    assert context_free_frames(held).tolist() == [[False, False, True, True, True, True]]
    inp = Inpainting(torch.zeros(1, 6, 7, dim), held, uncond_frames=context_free_frames(held))
    lm = inp.guided_frames(None)
    assert lm.tolist() == [[False, False, True, True, True, True], [True] * 6]
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1, 6, 7, dim, generator=g)
    z2 = z.clone()
    z2[:, :2] = torch.randn(1, 2, 7, dim, generator=g)
    ctx = type(pipe._null(1)).cat([pipe._null(1), pipe.text_context(["a person waves"])])
    with torch.inference_mode():
        v1, v2 = (pipe.denoiser(torch.cat([x, x]), 500, ctx, lm) for x in (z, z2))
    assert torch.allclose(v1[0, 2:], v2[0, 2:], atol=1e-6)
    assert (v1[1, 2:] - v2[1, 2:]).abs().max() > 1e-3
    assert Inpainting(torch.zeros(1, 6, 7, dim), held).guided_frames(None) is None  # off: as before


@pytest.fixture(scope="module")
def plain(tiny_pipeline):
    return ShotDirector(tiny_pipeline, steps=STEPS).compose(LONG, seed=5)


@pytest.mark.parametrize("option", [dict(reweight=ContentReweight(2.0)), dict(free_guidance=True)])
def test_an_after_seam_option_changes_later_segments_and_keeps_prefixes(tiny_pipeline, plain, option):
    d = ShotDirector(tiny_pipeline, steps=STEPS, **option)
    m = d.compose(LONG, seed=5)
    assert [w["segment"] for w in m.meta["shot"]["windows"]][:2] == [0, 0]
    seam = m.meta["shot"]["segments"][1]["content_start"] // 4  # segment 2's first new latent frame
    # the first segment's windows — the second holds context, but of its own prompt — are unchanged
    assert torch.equal(m.latent[:, :seam], plain.latent[:, :seam])
    assert (m.latent[:, seam:] - plain.latent[:, seam:]).abs().max() > 1e-4
    other = d.compose([LONG[0], Segment("a person jumps", 2.4), SEGS[2]], seed=5)
    start = m.meta["shot"]["segments"][1]["start"]
    assert np.array_equal(other.joints[:start], m.joints[:start])
    assert np.abs(other.joints[start:] - m.joints[start:]).max() > 1e-3


@pytest.mark.parametrize("kw, match", [
    (dict(reweight=ContentReweight(3.5)), "scale"),
    (dict(reweight=ContentReweight(2.0), text_blend=TextBlend(-2, 4)), "choose one"),
    (dict(free_guidance=1), "free_guidance"),
])
def test_bad_after_seam_options_are_refused(tiny_pipeline, kw, match):
    with pytest.raises(InputError, match=match):
        ShotDirector(tiny_pipeline, steps=STEPS, **kw)
