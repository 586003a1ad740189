"""How each sampler ends and which grid it walks (runtime/sampling.make_scheduler's settings, by behaviour).

A denoiser that predicts a known clean sample x0(t) at every timestep shows the final update: both
samplers must return the network's LAST x0 prediction exactly (DDIM steps to ᾱ = 1; DPM-Solver++ takes a
first-order final step to σ = 0 below 15 steps, the stable choice for few steps). A higher-order or
alpha-clipped last step would blend in earlier predictions. Tolerance 1e-5 (float32).
"""

import pytest
import torch

from salad_model.runtime.denoiser import TextContext
from salad_model.runtime.sampling import DiffusionConfig, make_scheduler, sample


class KnownX0:
    """v-prediction whose implied clean sample is ``base * (t + 1) / 1000``: a different x0 at every step."""

    def __init__(self, base: torch.Tensor, diffusion: DiffusionConfig | None = None):
        self.base = base
        self.abar = make_scheduler("ddim", diffusion).alphas_cumprod
        self.seen: list[int] = []

    def x0(self, t: int) -> torch.Tensor:
        return self.base * (t + 1) / 1000.0

    def __call__(self, x, t, ctx, len_mask):
        t = int(t)
        self.seen.append(t)
        a, s = self.abar[t].sqrt(), (1 - self.abar[t]).sqrt()
        return (a * x - self.x0(t)) / s  # x0 = a·x − s·v for v-prediction


@pytest.mark.parametrize("kind,steps", [("ddim", 5), ("dpm++", 5), ("dpm++", 12), ("ddim", 12)])
def test_the_last_step_returns_the_networks_last_clean_prediction(kind, steps):
    g = torch.Generator().manual_seed(0)
    den = KnownX0(torch.randn(1, 2, 7, 4, generator=g))
    out = sample(den, torch.randn(1, 2, 7, 4, generator=g), TextContext(torch.zeros(1, 2, 4), None, []), None,
                 guidance=1.0, steps=steps, scheduler=kind)
    assert len(den.seen) == steps
    torch.testing.assert_close(out, den.x0(den.seen[-1]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["ddim", "dpm++"])
def test_a_shorter_training_schedule_is_walked_on_its_own_grid(kind):
    d = DiffusionConfig(num_train_timesteps=500)
    s = make_scheduler(kind, d)
    s.set_timesteps(5)
    assert 0 <= int(s.timesteps.min()) and int(s.timesteps.max()) < 500
    assert len(s.alphas_cumprod) == 500
    g = torch.Generator().manual_seed(1)
    den = KnownX0(torch.randn(1, 2, 7, 4, generator=g), d)
    out = sample(den, torch.randn(1, 2, 7, 4, generator=g), TextContext(torch.zeros(1, 2, 4), None, []), None,
                 guidance=1.0, steps=5, scheduler=kind, diffusion=d)
    assert max(den.seen) < 500
    torch.testing.assert_close(out, den.x0(den.seen[-1]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("steps", [6, 20])
def test_dpm_solver_walks_the_second_order_multistep_update(steps):
    """Every DPM-Solver++ state equals the paper's 2M update (Lu et al. 2022, Alg. 2), computed here from
    ᾱ alone: first order at the first step and (σ = 0) the last, second order between. A third-order
    solver differs from the third step on. x0 predictions that change with t make the order visible.
    Tolerance 1e-4 relative (float32 through diffusers' float64 sigmas)."""
    torch.manual_seed(0)
    model = KnownX0(torch.randn(1, 4, 7, 8))
    sched = make_scheduler("dpm++")
    sched.set_timesteps(steps)
    abar = sched.alphas_cumprod.double()
    ts = [int(t) for t in sched.timesteps]

    def alpha_sigma(t: int | None) -> tuple[float, float]:
        return (1.0, 0.0) if t is None else (float(abar[t].sqrt()), float((1 - abar[t]).sqrt()))

    def lam(t: int) -> float:
        a, s = alpha_sigma(t)
        return float(torch.log(torch.tensor(a / s, dtype=torch.float64)))

    x = torch.randn(1, 4, 7, 8).double()
    ours = x.float().clone()
    m_prev = None
    for i, t in enumerate(ts):
        v = model(ours, t, None, None)
        ours = sched.step(v, t, ours).prev_sample
        t_next = ts[i + 1] if i + 1 < len(ts) else None
        a_s, s_s = alpha_sigma(t)
        m = (a_s * x - s_s * ((a_s * x - model.x0(t).double()) / s_s))  # x0 implied by the model at (x, t)
        if t_next is None:  # σ = 0: the first-order step lands on the last prediction
            x = m
        else:
            a_t, s_t = alpha_sigma(t_next)
            h = lam(t_next) - lam(t)
            if m_prev is None:
                d = m
            else:
                r = (lam(t) - lam(ts[i - 1])) / h
                d = m + (m - m_prev) / (2 * r)
            x = (s_t / s_s) * x - a_t * (torch.expm1(torch.tensor(-h, dtype=torch.float64))) * d
        m_prev = m
        assert torch.allclose(ours.double(), x, rtol=1e-4, atol=1e-5), f"step {i} (t={t}) differs"
