"""Attention processors: masking, the explicit (recordable) path against the fused one, controllers, the QKV cache."""

import pytest
import torch

from salad_model.runtime.attention import (
    FUSED,
    MASK_VALUE,
    Attention,
    ControlledAttnProcessor,
    padding_to_additive,
)
from salad_model.runtime.editing import AttentionRecorder

VALID = torch.tensor([[True, True, True, False, False, False],
                      [True, True, True, True, True, False]])


@pytest.fixture
def attn() -> Attention:
    torch.manual_seed(0)
    return Attention(dim=8, heads=2, dropout=0.0, kind="cross", layer=3).eval()


def _inputs(lk: int = 6, lq: int = 5):
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, lq, 8, generator=g), torch.randn(2, lk, 8, generator=g)


def test_padding_to_additive_marks_invalid_keys_only() -> None:
    m = padding_to_additive(VALID, torch.float32)
    assert m.shape == (2, 1, 1, 6)
    assert torch.equal(m[:, 0, 0] == 0, VALID) and (m[:, 0, 0][~VALID] == MASK_VALUE).all()
    assert padding_to_additive(None, torch.float32) is None


def test_recorded_probabilities_sum_to_one_over_unmasked_keys_and_are_zero_on_masked(attn) -> None:
    q_in, kv_in = _inputs()
    rec = AttentionRecorder(batch=1, cond_rows=slice(0, 1), keep={"cross"})
    attn.processor = ControlledAttnProcessor(rec)
    with torch.no_grad():
        attn(q_in, kv_in=kv_in, mask=padding_to_additive(VALID, torch.float32))
    probs = rec.maps[("cross", 3)]  # the module's kind and layer name the record
    assert probs.shape == (2, 2, 5, 6)  # [N, H, Lq, Lk]
    valid = VALID[:, None, None, :].expand_as(probs)
    assert torch.equal(probs[~valid], torch.zeros_like(probs[~valid]))  # exactly 0, not merely small
    sums = (probs * valid).sum(-1)
    torch.testing.assert_close(sums, torch.ones_like(sums), rtol=0, atol=1e-6)
    assert (probs[valid] > 0).all()


@pytest.mark.parametrize("lk", [6, 80])  # 80 keys: the default processor takes the fused SDPA kernel
def test_explicit_recordable_path_matches_the_default_processor(attn, lk) -> None:
    q_in, kv_in = _inputs(lk=lk, lq=70 if lk > 64 else 5)
    valid = torch.ones(2, lk, dtype=torch.bool)
    valid[0, lk // 2:] = False
    mask = padding_to_additive(valid, torch.float32)
    with torch.no_grad():
        attn.processor = FUSED
        fused = attn(q_in, kv_in=kv_in, mask=mask)
        attn.processor = ControlledAttnProcessor(lambda p, kind, layer: p)
        explicit = attn(q_in, kv_in=kv_in, mask=mask)
    torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-6)


def test_controller_output_replaces_the_probabilities(attn) -> None:
    """What the controller returns is what multiplies V: uniform weights over the valid keys give mean(V)."""
    q_in, kv_in = _inputs()

    def uniform(p, kind, layer):
        w = VALID[:, None, None, :].to(p.dtype).expand_as(p)
        return w / w.sum(-1, keepdim=True)

    attn.processor = ControlledAttnProcessor(uniform)
    with torch.no_grad():
        out = attn(q_in, kv_in=kv_in, mask=padding_to_additive(VALID, torch.float32))
        v = attn.Wv(kv_in)
        mean_v = torch.stack([v[i, VALID[i]].mean(0) for i in range(2)])[:, None].expand(2, 5, 8)
        expected = attn.Wo(mean_v)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_fused_qkv_cache_follows_loaded_weights(attn) -> None:
    """The fused [Wq; Wk; Wv] is cached for speed; loading new weights must not leave it stale."""
    x, _ = _inputs()
    torch.manual_seed(5)
    other = Attention(dim=8, heads=2, dropout=0.0, kind="skel", layer=0).eval()
    with torch.no_grad():
        attn(x)  # fills the cache
        assert attn.fused_qkv()[0] is attn.fused_qkv()[0]  # unchanged weights: served from the cache
        attn.load_state_dict(other.state_dict())
        after = attn(x)
        expected = other(x)
    torch.testing.assert_close(after, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("lk", [6, 80])  # the explicit path (short keys) and the fused one
def test_training_dropout_applies_on_both_paths_and_eval_has_none(lk) -> None:
    """Dropout acts on the attention probabilities in training only (mutation run: a skipped or broken
    dropout on the explicit path survived every inference test)."""
    from types import SimpleNamespace

    import torch.nn.functional as F

    from salad_model.runtime.attention import attention_probs

    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 2, n, 4, generator=g) for n in (5, lk, lk))
    plain = torch.matmul(attention_probs(q, k, None), v)
    torch.testing.assert_close(FUSED(SimpleNamespace(dropout=0.5, training=False), q, k, v, None), plain)
    torch.manual_seed(7)
    out = FUSED(SimpleNamespace(dropout=0.5, training=True), q, k, v, None)
    assert (out - plain).abs().max() > 1e-2  # something was dropped
    if lk <= FUSED.short:  # the explicit path: exactly F.dropout of the probabilities with the same stream
        torch.manual_seed(7)
        want = torch.matmul(F.dropout(attention_probs(q, k, None), 0.5), v)
        torch.testing.assert_close(out, want, rtol=0, atol=0)


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_training_dropout_uses_the_modules_rate(p) -> None:
    """The explicit path drops probabilities at the module's own rate, not F.dropout's default of 0.5."""
    from types import SimpleNamespace

    import torch.nn.functional as F

    from salad_model.runtime.attention import attention_probs

    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(4, 2, n, 4, generator=g) for n in (30, 30, 30))
    torch.manual_seed(11)
    out = FUSED(SimpleNamespace(dropout=p, training=True), q, k, v, None)
    torch.manual_seed(11)
    want = torch.matmul(F.dropout(attention_probs(q, k, None), p), v)
    torch.testing.assert_close(out, want, rtol=0, atol=0)


def test_precomputed_keys_values_equal_projecting_the_context(attn) -> None:
    """The denoiser passes each layer's text keys/values once (``kv=``); that must equal ``kv_in=``."""
    q_in, kv_in = _inputs()
    mask = padding_to_additive(VALID, torch.float32)
    with torch.no_grad():
        want = attn(q_in, kv_in=kv_in, mask=mask)
        got = attn(q_in, kv=attn.project_kv(kv_in), mask=mask)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert padding_to_additive(VALID, torch.float64).dtype == torch.float64  # the mask in the scores' dtype


def test_the_controlled_path_drops_only_in_training_at_the_modules_rate() -> None:
    """Editing and heat maps run the controlled processor in eval: no dropout there, whatever the rate."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    att = Attention(dim=8, heads=2, dropout=0.3, kind="cross", layer=0)
    q_in, kv_in = _inputs()
    mask = padding_to_additive(VALID, torch.float32)
    att.eval()
    with torch.no_grad():
        fused = att(q_in, kv_in=kv_in, mask=mask)
        att.processor = ControlledAttnProcessor(lambda p, kind, layer: p)
        torch.testing.assert_close(att(q_in, kv_in=kv_in, mask=mask), fused, rtol=1e-5, atol=1e-6)
    att.train()
    seen = []
    att.processor = ControlledAttnProcessor(lambda p, kind, layer: seen.append(p.clone()) or p)
    with torch.no_grad():
        torch.manual_seed(5)
        out = att(q_in, kv_in=kv_in, mask=mask)
        torch.manual_seed(5)
        dropped = F.dropout(seen[0], 0.3)
        b, lq = q_in.shape[:2]
        v = att.Wv(kv_in).view(b, -1, 2, 4).transpose(1, 2)
        want = att.Wo(torch.matmul(dropped, v).transpose(1, 2).reshape(b, lq, 8))
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-6)


def test_self_attention_with_gradients_equals_the_cached_inference_path(attn) -> None:
    """Training (gradients on) projects keys/values from the queries' own input, as inference does."""
    q_in, _ = _inputs()
    with torch.no_grad():
        want = attn(q_in)
    got = attn(q_in)
    assert got.requires_grad
    torch.testing.assert_close(got.detach(), want, rtol=1e-6, atol=1e-6)
