"""Folded cross attention and the short-row softmax: the same numbers as the plain path, used only where
they may be (inference, CPU, default processor), rebuilt when the weights change."""

import pytest
import torch

from salad_model.runtime import cross_fold, halves
from salad_model.runtime.attention import (
    FUSED,
    MASK_VALUE,
    Attention,
    ControlledAttnProcessor,
    attention_probs,
    padding_to_additive,
    softmax_last,
)
from salad_model.runtime.denoiser import Denoiser, DenoiserConfig, TextContext
from salad_model.runtime.editing import AttentionRecorder

TOL = 1e-5  # float32 reassociation of the same sums (measured ≤ 6e-7 on the official-size network)


@pytest.fixture
def attn() -> Attention:
    torch.manual_seed(0)
    return Attention(dim=16, heads=4, dropout=0.0, kind="cross", layer=2).eval()


def _kv(attn: Attention, batch: int = 2, length: int = 5):
    g = torch.Generator().manual_seed(3)
    return attn.project_kv(torch.randn(batch, length, 16, generator=g))


@torch.inference_mode()
@pytest.mark.parametrize("masked", [False, True])
def test_folded_attention_equals_projected_attention(attn, masked) -> None:
    k, v = _kv(attn)
    valid = torch.tensor([[True, True, True, False, False], [True] * 5])
    mask = padding_to_additive(valid, torch.float32) if masked else None
    x = torch.randn(2, 9, 16, generator=torch.Generator().manual_seed(4))
    plain = attn(x, kv=(k, v), mask=mask)
    folded = cross_fold.attend(cross_fold.fold(attn, k, v), x, mask)
    assert (folded - plain).abs().max() <= TOL
    # a masked key changes nothing: replacing its value leaves the output as it was
    if masked:
        v2 = v.clone()
        v2[0, :, 3:] = 100.0
        again = cross_fold.attend(cross_fold.fold(attn, k, v2), x, mask)
        assert (again - folded).abs().max() <= TOL


@torch.inference_mode()
def test_one_text_context_serves_every_sample(attn) -> None:
    k, v = _kv(attn, batch=1)
    x = torch.randn(3, 7, 16)
    out = cross_fold.attend(cross_fold.fold(attn, k, v), x, None)
    assert (out - attn(x, kv=(k, v))).abs().max() <= TOL


def test_fold_is_used_only_in_cpu_inference_with_the_default_processor(attn) -> None:
    x = torch.zeros(1, 2, 16)
    with torch.inference_mode():
        assert cross_fold.usable(attn, x)
        attn.processor = ControlledAttnProcessor(AttentionRecorder(1, slice(0, 1)))
        assert not cross_fold.usable(attn, x)  # a controller needs the per-head probabilities
        attn.processor = FUSED
    assert not cross_fold.usable(attn, x)  # autograd on (training, null-text inversion)
    attn.train()
    with torch.inference_mode():
        assert not cross_fold.usable(attn, x)


@torch.inference_mode()
def test_cached_fold_is_rebuilt_when_a_weight_changes(attn) -> None:
    k, v = _kv(attn)
    cache: dict = {}
    first = cross_fold.cached_fold(cache, 2, attn, k, v)
    assert cross_fold.cached_fold(cache, 2, attn, k, v) is first
    with torch.no_grad():
        attn.Wq.weight.mul_(2.0)
    second = cross_fold.cached_fold(cache, 2, attn, k, v)
    assert second is not first
    x = torch.randn(2, 4, 16)
    assert (cross_fold.attend(second, x, None) - attn(x, kv=(k, v))).abs().max() <= TOL


def test_denoiser_gives_the_same_step_with_and_without_folding(monkeypatch) -> None:
    torch.manual_seed(0)
    den = Denoiser(DenoiserConfig(latent_dim=32, n_heads=4, n_layers=3, ff_dim=64, text_dim=24, vae_dim=8)).eval()
    words = torch.randn(2, 6, 24)
    valid = torch.tensor([[True, True, False, False, False, False], [True] * 4 + [False] * 2])
    z = torch.randn(2, 5, 7, 8)
    monkeypatch.setattr(halves, "ENABLED", False)  # one batched forward: its folds are kept on ctx itself
    with torch.inference_mode():
        ctx = den.encode_text(words, valid)
        folded = den(z, torch.tensor(300), ctx, None)
        assert len(ctx.folds) == 3  # one fold per layer, kept on the context for the next steps
        monkeypatch.setattr(cross_fold, "usable", lambda attn, x: False)
        plain = den(z, torch.tensor(300), TextContext(ctx.memory, ctx.mask, ctx.kv), None)
    assert (folded - plain).abs().max() <= TOL


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("shape", [(5, 3, 7, 7), (2, 11, 8, 12), (4, 2, 3, 16)])
def test_short_row_softmax_matches_torch_softmax(shape, masked) -> None:
    x = torch.randn(shape) * 4
    x[..., -2:] = MASK_VALUE  # masked keys: exactly 0
    with torch.inference_mode():
        ours = softmax_last(x, masked=masked)
        plain = softmax_last(x)
    assert (ours - x.softmax(-1)).abs().max() <= 1e-6
    assert (ours[..., -2:] == 0).all()
    assert torch.allclose(ours.sum(-1), torch.ones(shape[:-1]), atol=1e-6)
    assert torch.equal(ours, plain)  # the masked rows' clamp (a faster exp) changes no bit here


def test_masked_short_row_softmax_drops_only_terms_below_the_floor() -> None:
    x = torch.tensor([[0.0, -1.0, -79.0, -81.0, -90.0, MASK_VALUE]])
    with torch.inference_mode():
        ours = softmax_last(x.clone(), masked=True)
    want = x.double().softmax(-1).float()
    torch.testing.assert_close(ours[0, :3], want[0, :3], rtol=1e-6, atol=0)
    assert ours[0, 2] > 0 and (ours[0, 3:] == 0).all()  # exp(−79) kept; −81, −90 and the mask exactly 0


def test_short_row_softmax_leaves_its_input_alone_and_keeps_autograd() -> None:
    x = torch.randn(3, 4, 7, requires_grad=True)
    before = x.detach().clone()
    softmax_last(x).sum().backward()  # grad mode: torch's kernel, differentiable
    with torch.inference_mode():
        softmax_last(before)
    assert torch.equal(x.detach(), before)


@torch.inference_mode()
def test_explicit_probabilities_keep_the_reference_op_order() -> None:
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(2, 3, 7, 8, generator=g), torch.randn(2, 3, 7, 8, generator=g)
    mask = padding_to_additive(torch.tensor([[True] * 5 + [False] * 2, [True] * 7]), torch.float32)
    ref = ((q @ k.transpose(-1, -2)) / 8 ** 0.5 + mask).softmax(-1)
    assert (attention_probs(q, k, mask) - ref).abs().max() <= 1e-6
