"""The sampling loop: the DDIM v-prediction update by hand, batched CFG, the two samplers, length masking."""

import math

import pytest
import torch

from salad_model.runtime.checkpoints import random_bundle
from salad_model.runtime.denoiser import TextContext
from salad_model.runtime.sampling import DiffusionConfig, initial_noise, latent_mask, make_scheduler, sample


def alphas_cumprod() -> torch.Tensor:
    """ᾱ_t of the training schedule, in float64 from its definition (scaled-linear betas, SALAD_SPEC §4)."""
    d = DiffusionConfig()
    betas = torch.linspace(math.sqrt(d.beta_start), math.sqrt(d.beta_end), d.num_train_timesteps,
                           dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0)


def _context(value: float, batch: int = 1) -> TextContext:
    """A context the fake denoisers can read back (memory filled with ``value``)."""
    return TextContext(torch.full((batch, 2, 4), value), None, [])


class OracleDenoiser:
    """The exact v-prediction for data that is one point ``x0``: v = (√ᾱ·x_t − x0) / √(1 − ᾱ)."""

    def __init__(self, x0: torch.Tensor):
        self.x0 = x0.double()
        self.abar = alphas_cumprod()
        self.timesteps: list[int] = []

    def __call__(self, x, t, ctx, len_mask):
        self.timesteps.append(int(t))
        a = self.abar[int(t)]
        return ((a.sqrt() * x.double() - self.x0) / (1 - a).sqrt()).to(x.dtype)


class TextScaledDenoiser:
    """v = 0.1·x + (the row's text value): lets a test tell which rows got which context."""

    def __init__(self):
        self.calls = 0
        self.batch_sizes: list[int] = []

    def __call__(self, x, t, ctx, len_mask):
        self.calls += 1
        self.batch_sizes.append(x.shape[0])
        return 0.1 * x + ctx.memory[:, 0, 0].reshape(-1, *([1] * (x.dim() - 1)))


def test_ddim_v_prediction_step_matches_the_hand_computed_update() -> None:
    sched = make_scheduler("ddim")
    sched.set_timesteps(10)
    assert sched.timesteps.tolist() == [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]  # "leading" spacing
    abar = alphas_cumprod()
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(1, 4, 7, 8, generator=g, dtype=torch.float64), torch.randn(1, 4, 7, 8, generator=g,
                                                                                   dtype=torch.float64)
    for t, prev in ((700, 600), (0, None)):
        a_t = abar[t]
        a_prev = abar[prev] if prev is not None else torch.tensor(1.0, dtype=torch.float64)  # set_alpha_to_one
        x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * v  # v-prediction: x0 and ε from (x_t, v)
        eps = a_t.sqrt() * v + (1 - a_t).sqrt() * x
        expected = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps  # η = 0
        got = sched.step(v.float(), t, x.float()).prev_sample.double()
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["ddim", "dpm++"])
def test_an_exact_denoiser_leads_each_sampler_to_its_data_point(kind) -> None:
    """With the true v of a one-point data distribution both samplers must end exactly on that point."""
    g = torch.Generator().manual_seed(1)
    x0, z_T = torch.randn(1, 3, 7, 4, generator=g), torch.randn(1, 3, 7, 4, generator=g)
    den = OracleDenoiser(x0)
    out = sample(den, z_T, _context(1.0), None, guidance=1.0, steps=8, scheduler=kind)
    torch.testing.assert_close(out, x0, rtol=1e-4, atol=1e-4)
    assert len(den.timesteps) == 8


def test_dpm_solver_and_ddim_are_different_samplers() -> None:
    """Same steps, same noise, same network: different time grids and different results."""
    ddim, dpm = make_scheduler("ddim"), make_scheduler("dpm++")
    ddim.set_timesteps(5)
    dpm.set_timesteps(5)
    assert ddim.timesteps.tolist() == [800, 600, 400, 200, 0]  # leading
    assert dpm.timesteps.tolist() == [999, 799, 599, 399, 199]  # trailing
    bundle = random_bundle("tiny", seed=0)
    den = bundle.denoiser
    z_T = torch.randn(1, 4, 7, den.config.vae_dim, generator=torch.Generator().manual_seed(2))
    ctx = den.encode_text(torch.randn(1, 5, den.config.text_dim, generator=torch.Generator().manual_seed(3)), None)
    a = sample(den, z_T, ctx, None, guidance=1.0, steps=5, scheduler="ddim")
    b = sample(den, z_T, ctx, None, guidance=1.0, steps=5, scheduler="dpm++")
    assert (a - b).abs().max() > 1e-3
    torch.testing.assert_close(sample(den, z_T, ctx, None, guidance=1.0, steps=5, scheduler="dpm++"), b,
                               rtol=0, atol=0)  # and each is deterministic
    with pytest.raises(ValueError, match="unknown scheduler"):
        make_scheduler("euler")


def test_batched_cfg_equals_two_separate_forwards() -> None:
    bundle = random_bundle("tiny", seed=0)
    den = bundle.denoiser
    g = torch.Generator().manual_seed(4)
    z_T = torch.randn(2, 4, 7, den.config.vae_dim, generator=g)
    words = torch.randn(2, 6, den.config.text_dim, generator=g)
    valid = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    cond = den.encode_text(words, valid)
    uncond = den.encode_text(torch.zeros(2, 1, den.config.text_dim), None)
    lens = latent_mask([16, 12], 4)
    guidance, steps = 3.0, 4
    got = sample(den, z_T, cond, uncond, guidance=guidance, steps=steps, len_mask=lens)
    sched = make_scheduler("ddim")
    sched.set_timesteps(steps)
    m = lens[:, :, None, None].float()
    z = z_T * m
    with torch.no_grad():
        for t in sched.timesteps:
            v_u, v_c = den(z, t, uncond, lens), den(z, t, cond, lens)
            z = sched.step(v_u + guidance * (v_c - v_u), t, z).prev_sample * m
    torch.testing.assert_close(got, z, rtol=1e-4, atol=1e-5)


def test_guidance_combines_unconditional_and_conditional_rows_in_that_order() -> None:
    """One step with v = 0.1·x + text: the guided v is v_u + g·(v_c − v_u), one forward per step."""
    z_T = torch.zeros(1, 2, 7, 3)
    den = TextScaledDenoiser()
    g = 4.0
    got = sample(den, z_T, _context(1.0), _context(0.25), guidance=g, steps=1)
    sched = make_scheduler("ddim")
    sched.set_timesteps(1)
    v = torch.full_like(z_T, 0.25 + g * (1.0 - 0.25))
    torch.testing.assert_close(got, sched.step(v, sched.timesteps[0], z_T).prev_sample, rtol=0, atol=1e-6)
    assert den.calls == 1 and den.batch_sizes == [2]  # batched: one forward over [uncond; cond]
    den_1 = TextScaledDenoiser()
    plain = sample(den_1, z_T, _context(1.0), _context(0.25), guidance=1.0, steps=1)  # g = 1: cond only
    torch.testing.assert_close(plain, sched.step(torch.full_like(z_T, 1.0), sched.timesteps[0], z_T).prev_sample,
                               rtol=0, atol=1e-6)
    assert den_1.batch_sizes == [1]  # no wasted unconditional half when guidance is 1


def test_frames_past_each_length_stay_exactly_zero() -> None:
    z_T = torch.randn(2, 5, 7, 3, generator=torch.Generator().manual_seed(6))
    lens = latent_mask([20, 8], 5)  # 5 and 2 latent frames
    assert lens.tolist() == [[True] * 5, [True, True, False, False, False]]
    out = sample(TextScaledDenoiser(), z_T, _context(0.5, 2), None, guidance=1.0, steps=3, len_mask=lens)
    assert (out[1, 2:] == 0).all() and (out[0] != 0).any() and (out[1, :2] != 0).any()


def test_defaults_latent_lengths_and_seeded_noise() -> None:
    """Small contracts the mutation run found unpinned: the default sampler, floor division of lengths
    that are not multiples of 4, the seeded CPU noise, the config dict."""
    assert type(make_scheduler()).__name__ == "DDIMScheduler"
    assert latent_mask([42, 40, 3], 12).sum(1).tolist() == [10, 10, 0]
    z = initial_noise(3, 42)
    assert z.shape == (1, 10, 7, 32)
    torch.testing.assert_close(z, torch.randn(1, 10, 7, 32, generator=torch.Generator().manual_seed(3)),
                               rtol=0, atol=0)
    assert initial_noise(3, 42, batch=2, parts=5, dim=4).shape == (2, 10, 5, 4)
    assert not torch.equal(initial_noise(4, 42), z)
    d = DiffusionConfig(num_train_timesteps=10)
    assert d.to_dict()["num_train_timesteps"] == 10 and DiffusionConfig(**d.to_dict()) == d
