"""The sampler's FiLM table (Denoiser.timestep_table): every step's FiLM parameters from one GEMM up front, the
same step as without it, used by sample() and gone after it."""

import torch

from salad_model.runtime.denoiser import Denoiser, DenoiserConfig
from salad_model.runtime.sampling import sample

TOL = 1e-5  # one GEMM over all timesteps' rows against one row at a time: float rounding only


def _setup():
    torch.manual_seed(0)
    cfg = DenoiserConfig(latent_dim=32, n_heads=4, n_layers=3, ff_dim=64, text_dim=16, vae_dim=8)
    den = Denoiser(cfg).eval()
    with torch.inference_mode():
        ctx = den.encode_text(torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool))
    return den, torch.randn(2, 6, 7, 8), ctx


def test_a_step_inside_the_table_is_the_step_without_it() -> None:
    den, z, ctx = _setup()
    with torch.inference_mode():
        plain = [den(z, torch.tensor(t), ctx) for t in (700, 300)]
        with den.timestep_table(torch.tensor([700, 300])):
            tabled = [den(z, torch.tensor(t), ctx) for t in (700, 300)]
            other = den(z, torch.tensor(500), ctx)  # not in the table: computed as before
        assert den._film_table is None
        assert (other - den(z, torch.tensor(500), ctx)).abs().max() <= TOL
    for a, b in zip(plain, tabled, strict=True):
        assert (a - b).abs().max() <= TOL
    assert (plain[0] - plain[1]).abs().max() > 1e-3  # the two timesteps do differ: a wrong row would show


def test_sample_computes_the_film_parameters_once_for_all_steps(monkeypatch) -> None:
    den, z, ctx = _setup()
    calls = []
    real = den.film_params
    monkeypatch.setattr(den, "film_params", lambda c: calls.append(c.shape[0]) or real(c))
    cond, uncond = ctx.select([1]), ctx.select([0])
    with torch.inference_mode():
        sample(den, z[:1], cond, uncond, guidance=2.0, steps=5)
    assert calls == [5]
    assert den._film_table is None


def test_no_table_with_gradients_on() -> None:
    """CPU inference only: with gradients on (training, a guidance gradient) each step computes its own FiLM
    parameters, so no table holds a graph for the whole schedule."""
    den, _, _ = _setup()
    with torch.enable_grad(), den.timestep_table(torch.tensor([700, 300])):
        assert den._film_table is None
    with torch.no_grad(), den.timestep_table(torch.tensor([700, 300])):
        assert set(den._film_table) == {700, 300}
