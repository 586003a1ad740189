"""runtime/editing.sample_edit on a tiny random denoiser (no text encoder, no files: a second each).

What must hold for any weights: the source half of an edit IS the plain generation of the source prompt
(same noise, guidance, sampler); an edit with nothing injected IS the plain generation of the edit prompt;
an edit from recorded maps (cache hit) equals the edit that recorded them; per-step nulls equal one null;
progress is reported per step; fused attention is back afterwards, also after a cancel. The golden edit
tests (test_golden.py) check the same function against the reference's tensors, at minutes per test.
Tolerance: 1e-5 (the batched explicit-attention path against the separate fused one, float32).
"""

import pytest
import torch

from salad_model.runtime import attention
from salad_model.runtime.denoiser import Denoiser, DenoiserConfig
from salad_model.runtime.editing import CrossAttentionEdit, Mirror, Refine, Reweight, WordSwap, sample_edit
from salad_model.runtime.guiders import APG, IntervalCFG
from salad_model.runtime.sampling import Cancelled, DiffusionConfig, sample

TOL = dict(rtol=0, atol=1e-5)
STEPS = 4


@pytest.fixture(scope="module")
def den() -> Denoiser:
    torch.manual_seed(0)
    cfg = DenoiserConfig(latent_dim=16, n_heads=2, n_layers=3, ff_dim=32, dropout=0.0, text_dim=8, vae_dim=4,
                         max_len=64)
    return Denoiser(cfg).eval()


def _text(den: Denoiser, seed: int, valid: int, length: int = 6):
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(length)[None] < valid
    return den.encode_text(torch.randn(1, length, 8, generator=g) * 3, mask, trim=False)


@pytest.fixture(scope="module")
def texts(den):
    return {"src": _text(den, 1, 5), "edit": _text(den, 2, 6), "null": _text(den, 3, 2)}


@pytest.fixture(scope="module")
def z_T() -> torch.Tensor:
    return torch.randn(1, 3, 7, 4, generator=torch.Generator().manual_seed(4))


def _fused(den) -> bool:
    return all(m.processor is attention.FUSED for m in den.modules() if isinstance(m, attention.Attention))


@pytest.mark.parametrize("scheduler", ["ddim", "dpm++"])
def test_source_half_is_the_plain_generation_and_the_edit_differs(den, texts, z_T, scheduler):
    res = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], Mirror("all"), guidance=3.0,
                      steps=STEPS, scheduler=scheduler)
    plain = sample(den, z_T, texts["src"], texts["null"], guidance=3.0, steps=STEPS, scheduler=scheduler)
    torch.testing.assert_close(res.z_source, plain, **TOL)
    assert (res.z_edit - res.z_source).abs().max() > 1e-3 and res.recorded is None
    assert _fused(den)


@pytest.mark.parametrize("guider", [APG(3.0, eta=0.0, norm_threshold=1.0, momentum=-0.5),
                                    IntervalCFG(3.0, start_at=0.25, stop_at=0.75)], ids=["apg", "interval"])
def test_with_a_guider_the_source_half_is_that_guiders_generation(den, texts, z_T, guider):
    """A model whose config names a guider: the edit's source rows are sampled as its generation was (same
    guider, its own state — APG's momentum — per trajectory; the interval's unguided steps), not plain CFG."""
    res = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], Mirror("all"), guidance=3.0,
                      steps=STEPS, guider=guider)
    guided = sample(den, z_T, texts["src"], texts["null"], guidance=3.0, steps=STEPS, guider=guider)
    torch.testing.assert_close(res.z_source, guided, **TOL)
    plain = sample(den, z_T, texts["src"], texts["null"], guidance=3.0, steps=STEPS)
    assert (guided - plain).abs().max() > 1e-3  # the guider matters here
    edit_alone = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], WordSwap(0.0), guidance=3.0,
                             steps=STEPS, src_proportion=0.0, guider=guider)  # nothing injected: the edit row alone
    torch.testing.assert_close(edit_alone.z_edit, sample(den, z_T, texts["edit"], texts["null"], guidance=3.0,
                                                         steps=STEPS, guider=guider), **TOL)


def test_nothing_injected_is_the_plain_generation_of_the_edit_prompt(den, texts, z_T):
    """Word swap from step 0 without self-attention injection: the edit row is the edit prompt alone."""
    res = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], WordSwap(0.0), guidance=2.5,
                      steps=STEPS, src_proportion=0.0)
    plain = sample(den, z_T, texts["edit"], texts["null"], guidance=2.5, steps=STEPS)
    torch.testing.assert_close(res.z_edit, plain, **TOL)
    # with the source's cross maps for the whole run (and self-attention for part of it) it is not
    held = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], WordSwap(1.0), guidance=2.5,
                       steps=STEPS, src_proportion=0.5)
    assert (held.z_edit - plain).abs().max() > 1e-3


def test_a_fast_source_keeps_its_guided_steps_while_the_edit_is_guided_on_every_step(den, texts, z_T):
    """Fast mode: the source is sampled as it was generated (guidance on the first steps only), the edit row
    with guidance on every step (unguided last steps lost the edit prompt's content: docs/MODEL_CARD.md)."""
    kw = dict(guidance=2.5, steps=6, scheduler="dpm++", src_proportion=0.0)
    res = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], WordSwap(0.0), guided_steps=4, **kw)
    fast_src = sample(den, z_T, texts["src"], texts["null"], guided_steps=4, **kw_sample(kw))
    torch.testing.assert_close(res.z_source, fast_src, **TOL)
    guided_edit = sample(den, z_T, texts["edit"], texts["null"], **kw_sample(kw))
    torch.testing.assert_close(res.z_edit, guided_edit, **TOL)
    # asking for the edit's guidance to end with the source's gives the edit prompt's fast generation
    both = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], WordSwap(0.0), guided_steps=4,
                       edit_guided_steps=4, **kw)
    fast_edit = sample(den, z_T, texts["edit"], texts["null"], guided_steps=4, **kw_sample(kw))
    torch.testing.assert_close(both.z_edit, fast_edit, **TOL)
    assert (fast_edit - guided_edit).abs().max() > 1e-3


def kw_sample(kw: dict) -> dict:
    return {k: v for k, v in kw.items() if k != "src_proportion"}


def test_guidance_and_diffusion_config_reach_both_halves(den, texts, z_T):
    diffusion = DiffusionConfig(beta_end=0.02)
    res = sample_edit(den, z_T, texts["src"], texts["src"], texts["null"], CrossAttentionEdit(), guidance=5.0,
                      steps=STEPS, src_proportion=1.0, diffusion=diffusion)
    plain = sample(den, z_T, texts["src"], texts["null"], guidance=5.0, steps=STEPS, diffusion=diffusion)
    torch.testing.assert_close(res.z_source, plain, **TOL)
    torch.testing.assert_close(res.z_edit, plain, **TOL)  # same prompt, source maps injected: the source


def test_defaults_are_the_papers(den, texts, z_T):
    """guidance 7.5, 50 DDIM steps, self-attention injected for the first 20 % (temporal too): a call with
    no settings equals one with those settings spelled out (and each setting changes the result: the
    other tests here)."""
    seen = []
    res = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], Reweight([1], 2.0),
                      callback=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 50) for i in range(1, 51)]
    explicit = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], Reweight([1], 2.0), guidance=7.5,
                           steps=50, scheduler="ddim", src_proportion=0.2, inject_temporal=True)
    torch.testing.assert_close(res.z_edit, explicit.z_edit, rtol=0, atol=0)
    torch.testing.assert_close(res.z_source, explicit.z_source, rtol=0, atol=0)
    changed = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], Reweight([1], 2.0), steps=50,
                          src_proportion=0.3, inject_temporal=False)
    assert (changed.z_edit - res.z_edit).abs().max() > 1e-6


@pytest.mark.parametrize("mode", [Reweight([1, 2], 2.5), Refine([0, 1, -1, 2, 3, 4]), WordSwap(0.5)],
                         ids=["reweight", "refine", "word_swap"])
def test_an_edit_from_recorded_maps_equals_the_edit_that_recorded_them(den, texts, z_T, mode):
    first = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], mode, guidance=3.0, steps=STEPS,
                        src_proportion=0.5, record_key=("src", 1))
    rec = first.recorded
    assert rec.key == ("src", 1) and len(rec.maps) == STEPS and rec.text_len == 5  # the source's valid words
    assert all(m[("cross", 0)].shape[-1] == 5 for m in rec.maps)
    hit = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], mode, guidance=3.0, steps=STEPS,
                      src_proportion=0.5, source_maps=rec, record_key=("src", 1))
    assert hit.z_source is None and hit.recorded is None  # nothing recomputed, nothing re-recorded
    torch.testing.assert_close(hit.z_edit, first.z_edit, **TOL)


def test_per_step_nulls_equal_one_null_repeated(den, texts, z_T):
    one = sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], Mirror("lower"), guidance=3.0,
                      steps=STEPS)
    per_step = sample_edit(den, z_T, texts["src"], texts["edit"], [texts["null"]] * STEPS, Mirror("lower"),
                           guidance=3.0, steps=STEPS)
    torch.testing.assert_close(per_step.z_edit, one.z_edit, **TOL)
    torch.testing.assert_close(per_step.z_source, one.z_source, **TOL)
    other = _text(den, 9, 3)
    changed = sample_edit(den, z_T, texts["src"], texts["edit"], [texts["null"]] * (STEPS - 1) + [other],
                          Mirror("lower"), guidance=3.0, steps=STEPS)
    assert (changed.z_edit - one.z_edit).abs().max() > 1e-6  # the last step's null is the one given for it


def test_a_cancel_stops_between_steps_and_restores_fused_attention(den, texts, z_T):
    seen = []

    def cancel_at_two(i, n):
        seen.append(i)
        if i == 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        sample_edit(den, z_T, texts["src"], texts["edit"], texts["null"], Reweight([1], 2.0), steps=STEPS,
                    callback=cancel_at_two)
    assert seen == [1, 2] and _fused(den)
