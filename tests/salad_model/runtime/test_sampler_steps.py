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
