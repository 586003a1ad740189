"""Prompt interpolation across a timeline seam: each latent frame's cross attention reads a per-frame blend
of the previous and the new prompt; the rest of the network, and everything before the segment, unchanged."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from salad_model.runtime.attention import FUSED, Attention, AttnProcessor
from salad_model.runtime.denoiser import TextContext
from salad_model.runtime.pipeline import InputError
from salad_model.runtime.sampling import DiffusionConfig
from salad_model.runtime.shot_text_blend import (
    BlendedCrossAttention,
    TextBlend,
    blended_contexts,
    blended_text,
    join_words,
)
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


# -- the pieces, by hand (no sampling) --------------------------------------------------------------


def test_weights_start_before_after_and_ramp_in_equal_steps():
    assert TextBlend(1, 0).weights(2, 6).tolist() == [0, 0, 0, 1, 1, 1]  # one frame after the seam
    assert TextBlend(-2, 0).weights(2, 5).tolist() == [1, 1, 1, 1, 1]  # the whole held context reads the new one
    assert TextBlend(0, 1).weights(3, 6).tolist() == [0, 0, 0, 0.5, 1, 1]
    w = TextBlend(0, 4).weights(1, 7)
    assert w.dtype == torch.float32 and w.tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1, 1])


def test_text_blend_limits_are_inclusive_and_refused_word_for_word():
    assert TextBlend(-3, 0).checked(3, 40) == TextBlend(-3, 0)  # the whole held context
    assert TextBlend(10, 10).checked(3, 40) == TextBlend(10, 10)  # a quarter of the window, both
    for bad in (TextBlend(-4, 0), TextBlend(11, 0), TextBlend(0, 11), TextBlend(0, -1), TextBlend(True, 0),
                TextBlend(0, True), TextBlend(1.0, 0), TextBlend(0, 2.0)):
        with pytest.raises(InputError) as e:
            bad.checked(3, 40)
        assert str(e.value) == (f"text blend: start must be within -3…10 and ramp within 0…10 latent frames, "
                                f"got {bad.start!r}, {bad.ramp!r}")


def _ctx(batch, words, seed, masked=None, layers=2, heads=2, dh=3, d=4):
    g = torch.Generator().manual_seed(seed)
    mask = None
    if masked is not None:
        mask = torch.zeros(batch, 1, 1, words)
        mask[..., masked:] = -1e4
    kv = [(torch.randn(batch, heads, words, dh, generator=g), torch.randn(batch, heads, words, dh, generator=g))
          for _ in range(layers)]
    return TextContext(torch.randn(batch, words, d, generator=g), mask, kv)


def test_join_words_pads_each_half_and_keeps_its_masks():
    a, b = _ctx(2, 3, 0, masked=2), _ctx(2, 5, 1)
    j = join_words(a, b, 5)
    assert j.length == 10 and j.memory.shape == (2, 10, 4)
    assert torch.equal(j.memory[:, :3], a.memory) and torch.equal(j.memory[:, 5:], b.memory)
    assert torch.equal(j.memory[:, 3:5], torch.zeros(2, 2, 4))
    assert j.mask.shape == (2, 1, 1, 10) and j.mask.dtype == torch.float32
    assert torch.equal(j.mask[..., :3], a.mask) and bool((j.mask[..., 3:5] < -1e3).all())
    assert torch.equal(j.mask[..., 5:], torch.zeros(2, 1, 1, 5))  # an unmasked prompt: every word open
    assert len(j.kv) == 2
    for (k, v), (ka, va), (kb, vb) in zip(j.kv, a.kv, b.kv, strict=True):
        assert k.shape == v.shape == (2, 2, 10, 3)
        assert torch.equal(k[:, :, :3], ka) and torch.equal(v[:, :, :3], va)
        assert torch.equal(k[:, :, 5:], kb) and torch.equal(v[:, :, 5:], vb)
    with pytest.raises(ValueError):  # a context with another layer count cannot be joined
        join_words(a, _ctx(2, 5, 1, layers=3), 5)


def test_blended_contexts_pad_to_the_longest_of_the_three():
    prev, new, null = _ctx(1, 4, 0), _ctx(1, 2, 1), _ctx(1, 6, 2)
    cond, uncond, half = blended_contexts(prev, new, null)
    assert half == 6 and cond.length == uncond.length == 12
    assert torch.equal(cond.memory[:, :4], prev.memory) and torch.equal(cond.memory[:, 6:8], new.memory)
    assert torch.equal(uncond.memory[:, :6], null.memory) and torch.equal(uncond.memory[:, 6:], null.memory)
    assert blended_contexts(_ctx(1, 7, 0), new, null)[2] == 7
    assert blended_contexts(prev, _ctx(1, 8, 1), null)[2] == 8


def test_blended_cross_attention_mixes_the_halves_per_frame_and_checks_shapes():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(1, 2, 3 * 7, 4, generator=g)
    k, v = torch.randn(1, 2, 10, 4, generator=g), torch.randn(1, 2, 10, 4, generator=g)
    mask = torch.zeros(1, 1, 1, 10)
    mask[..., 3:5] = -1e4
    mask[..., 9] = -1e4
    w = torch.tensor([0.0, 0.3, 1.0])
    proc = BlendedCrossAttention(5, w)
    cross = SimpleNamespace(kind="cross", training=False, dropout=0.0)
    for m in (mask, None):
        got = proc(cross, q, k, v, m)
        a = F.scaled_dot_product_attention(q, k[..., :5, :], v[..., :5, :],
                                           attn_mask=None if m is None else m[..., :5])
        b = F.scaled_dot_product_attention(q, k[..., 5:, :], v[..., 5:, :],
                                           attn_mask=None if m is None else m[..., 5:])
        want = a + w.repeat_interleave(7)[:, None] * (b - a)  # frame-major: 7 part tokens per frame
        assert torch.allclose(got, want, atol=1e-6)
    assert proc(cross, q.double(), k.double(), v.double(), None).dtype == torch.float64
    with pytest.raises(ValueError) as e:
        proc(cross, q, k[..., :8, :], v[..., :8, :], None)
    assert str(e.value) == "blended cross attention expects 10 words and 21 queries, got 8 and 21"
    with pytest.raises(ValueError) as e:
        proc(cross, q[..., :14, :], k, v, None)
    assert str(e.value) == "blended cross attention expects 10 words and 21 queries, got 10 and 14"
    # self attention (any length) takes the default path
    selfish = SimpleNamespace(kind="temporal", training=False, dropout=0.0)
    x = torch.randn(1, 2, 9, 4, generator=g)
    assert torch.allclose(proc(selfish, x, x, x, None), FUSED(selfish, x, x, x, None), atol=1e-6)


def test_blended_text_restores_whatever_processor_was_installed(tiny_pipeline):
    den = tiny_pipeline.denoiser
    mods = [m for m in den.modules() if isinstance(m, Attention)]
    other = AttnProcessor()
    mods[0].processor = other
    try:
        with blended_text(den, 4, torch.zeros(3)) as proc:
            assert isinstance(proc, BlendedCrossAttention) and proc.half == 4
            assert all(m.processor is proc for m in mods)
        assert mods[0].processor is other and all(m.processor is FUSED for m in mods[1:])
        with pytest.raises(RuntimeError), blended_text(den, 4, torch.zeros(3)):
            raise RuntimeError("cancelled")
        assert mods[0].processor is other and all(m.processor is FUSED for m in mods[1:])
    finally:
        den.set_attn_processor(FUSED)


@pytest.mark.parametrize("spacing", ["", "trailing"])
def test_a_blend_reading_the_new_prompt_everywhere_is_the_hard_switch(tiny_pipeline, monkeypatch, spacing):
    """Weight 1 at every frame of the window (start = −context, no ramp): the same guided sampling as the
    hard switch — the same guidance, empty prompt, steps, progress and the model's own schedule (a model
    whose schedule is not the default: "trailing"); only the cross attention's rounding differs (tolerance
    1e-4 on the latent)."""
    monkeypatch.setattr(tiny_pipeline.bundle, "diffusion", DiffusionConfig(timestep_spacing=spacing))
    plain_d = ShotDirector(tiny_pipeline, steps=STEPS, text_blend=None)
    full_d = ShotDirector(tiny_pipeline, steps=STEPS, text_blend=TextBlend(-plain_d.context, 0))
    seen_plain, seen_full = [], []
    plain = plain_d.compose(SEGS[:2], seed=5, callback=lambda i, n: seen_plain.append((i, n)))
    full = full_d.compose(SEGS[:2], seed=5, callback=lambda i, n: seen_full.append((i, n)))
    assert seen_full == seen_plain and len(seen_plain) > STEPS
    assert (full.latent - plain.latent).abs().max() < 1e-4
