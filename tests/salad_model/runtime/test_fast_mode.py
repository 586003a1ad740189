"""Fast mode (issue #18): guidance on the first steps only, the preset through API, worker fields and CLI;
and the inference-only fast paths of the denoiser (grid attention, one FiLM GEMM, in-place residuals)
against the plain path the network takes with autograd on."""

import pytest
import torch

from salad_model.runtime import requests as R
from salad_model.runtime.checkpoints import random_bundle
from salad_model.runtime.denoiser import Denoiser, DenoiserConfig, TextContext
from salad_model.runtime.pipeline import SaladPipeline
from salad_model.runtime.sampling import sample
from salad_model.serving.worker import RequestError, check_fields


@pytest.fixture(scope="module")
def pipe():
    return SaladPipeline(random_bundle("tiny"), device="cpu")


def _run(pipe, guided_steps, uncond=True, steps=8, trajectory=None):
    cond = pipe.text_context(["a person walks forward"])
    z = torch.randn(1, 10, 7, pipe.denoiser.config.vae_dim, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        return sample(pipe.denoiser, z, cond, pipe._null(1) if uncond else None, 4.0, steps, "dpm++",
                      guided_steps=guided_steps, trajectory=trajectory)


def test_guided_steps_limits_guidance_to_the_first_steps(pipe):
    full, part, none = {}, {}, {}
    z_full = _run(pipe, None, trajectory=full)
    assert torch.equal(_run(pipe, 8), z_full)  # guidance on all 8 steps = plain CFG, bit for bit
    z_none = _run(pipe, 0, trajectory=none)
    assert torch.equal(z_none, _run(pipe, None, uncond=False))  # no guided step = the conditional half alone
    _run(pipe, 3, trajectory=part)
    for i in range(3):  # guided steps are the CFG trajectory's, the rest leave it
        assert torch.equal(part[i], full[i])
    assert not torch.allclose(part[7], full[7], atol=1e-4)
    assert not torch.allclose(part[7], none[7], atol=1e-4)


def test_fast_generation_uses_the_preset_and_records_it(pipe):
    m = pipe.generate("a person walks forward", frames=40, seed=5, fast=True)
    p = R.FAST_PRESET
    assert (m.meta["steps"], m.meta["scheduler"]) == (p["steps"], p["scheduler"])
    ref = pipe.generate_batch(["a person walks forward"], frames=[40], seeds=[5], steps=p["steps"],
                              scheduler=p["scheduler"], guided_steps=p["guided_steps"])[0]
    assert (m.joints == ref.joints).all()
    if p["guided_steps"] is not None and p["guided_steps"] < p["steps"]:
        assert m.meta["guided_steps"] == p["guided_steps"]
    slow = pipe.generate("a person walks forward", frames=40, seed=5, steps=p["steps"], scheduler=p["scheduler"])
    assert "guided_steps" not in slow.meta


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_fast_must_be_a_bool(pipe, bad):
    with pytest.raises(R.InputError, match="'fast' must be true or false"):
        pipe.generate("a person walks forward", frames=40, fast=bad)


def test_guided_steps_range_is_checked(pipe):
    with pytest.raises(R.InputError, match="guided_steps"):
        pipe.generate_batch(["a person walks"], frames=[40], guided_steps=-1)


def test_worker_takes_fast_on_generate_and_edit_only():
    assert check_fields({"op": "generate", "id": 1, "prompt": "a walk", "fast": True})["fast"] is True
    with pytest.raises(RequestError, match="fast"):
        check_fields({"op": "generate", "id": 1, "prompt": "a walk", "fast": "true"})
    # an edit of a fast generation samples like it (test_fast_edits.py); the heat map op does not take it
    assert check_fields({"op": "edit", "id": 1, "source_prompt": "a walk", "fast": True})["fast"] is True
    with pytest.raises(RequestError, match="unknown field"):
        check_fields({"op": "attention", "id": 1, "prompt": "a walk", "fast": True})


def test_cli_refuses_fast_with_explicit_steps(tmp_path, capsys):
    from salad_model.__main__ import main

    assert main(["generate", "a person walks", "--fast", "--steps", "20", "--out", str(tmp_path / "x")]) == 2
    assert "--fast sets its own steps" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_edit_of_a_fast_generation_starts_from_it(tmp_path, tiny_model_dir):
    import numpy as np

    from salad_model.__main__ import main

    common = ["--model", str(tiny_model_dir), "--frames", "40", "--seed", "2", "--fast"]
    assert main(["generate", "a person walks", *common, "--out", str(tmp_path / "gen")]) == 0
    assert main(["edit", "a person walks", "--word", "walks", "--scale", "2", *common, "--out",
                 str(tmp_path / "edit"), "--source-out", str(tmp_path / "src")]) == 0
    gen, src = np.load(tmp_path / "gen.npz"), np.load(tmp_path / "src.npz")
    assert np.abs(gen["joints"] - src["joints"]).max() <= 1e-5


# -- the denoiser's inference-only paths ---------------------------------------------------------------


@pytest.fixture(scope="module")
def den():
    torch.manual_seed(0)
    d = Denoiser(DenoiserConfig(latent_dim=64, n_heads=4, n_layers=3, ff_dim=128, text_dim=16, vae_dim=8)).eval()
    with torch.no_grad():  # non-trivial FiLM and norms (fresh ones are near identity)
        for p in d.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return d


@pytest.mark.parametrize("len_mask", [False, True])
def test_inference_path_equals_the_plain_path(den, len_mask):
    """Grid attention, the one-GEMM FiLM and in-place residuals give the autograd path's numbers."""
    g = torch.Generator().manual_seed(1)
    words, valid = torch.randn(2, 5, 16, generator=g), torch.ones(2, 5, dtype=torch.bool)
    valid[0, 3:] = False
    z = torch.randn(2, 9, 7, 8, generator=g)
    lm = torch.tensor([[True] * 9, [True] * 6 + [False] * 3]) if len_mask else None
    z_before = z.clone()
    with torch.inference_mode():
        ctx = den.encode_text(words, valid)
        fast = den(z, torch.tensor(300), ctx, lm)
        per_row = den(z, torch.tensor([300, 300]), ctx, lm)  # condition per row: no shared FiLM
    ctx_grad = TextContext(ctx.memory.clone(), ctx.mask, [(k.clone(), v.clone()) for k, v in ctx.kv])
    plain = den(z, torch.tensor(300), ctx_grad, lm)  # grad enabled: the plain path
    assert plain.requires_grad
    assert torch.equal(z, z_before)
    assert (fast - plain.detach()).abs().max() < 1e-5
    assert (per_row - plain.detach()).abs().max() < 1e-5


@pytest.mark.parametrize("frames", [9, 20])  # 20: over frames past the strided views' explicit limit (fused kernel)
@pytest.mark.parametrize("seq_dim", [1, 2])
def test_grid_self_attention_matches_the_reshaped_forward(den, seq_dim, frames):
    attn = den.transformer.middle_block.temp_attn
    x = torch.randn(2, frames, 7, 64, generator=torch.Generator().manual_seed(2))
    b, t, p, d = x.shape
    mask = None
    if seq_dim == 1:
        valid = torch.ones(b * p, t, dtype=torch.bool)
        valid[p:, 6:] = False
        mask = torch.zeros(b * p, 1, 1, t).masked_fill(~valid[:, None, None, :], -1e9)
    with torch.no_grad():
        got = attn.grid_self_attention(x, seq_dim, mask)
        if seq_dim == 1:
            want = attn(x.transpose(1, 2).reshape(b * p, t, d), mask=mask).view(b, p, t, d).transpose(1, 2)
        else:
            want = attn(x.reshape(b * t, p, d)).view(b, t, p, d)
    assert (got - want).abs().max() < 1e-5
    with pytest.raises(ValueError, match="seq_dim"):
        attn.grid_self_attention(x, 3)


def test_film_params_follow_the_weights(den):
    c = torch.randn(3, 64)
    with torch.no_grad():
        pairs = den.film_params(c)
        layer = den.transformer.output_blocks[0]
        scale, shift = layer.ffn_film.params(c)
        assert (pairs[2][3][0] - (1 + scale)).abs().max() < 1e-5
        assert (pairs[2][3][1] - shift).abs().max() < 1e-5
        layer.ffn_film.linear[1].bias.add_(1.0)  # a changed weight is not served from the cache
        try:
            assert (den.film_params(c)[2][3][1] - shift - 1.0).abs().max() < 1e-5
        finally:
            layer.ffn_film.linear[1].bias.sub_(1.0)
