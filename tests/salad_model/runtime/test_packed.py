"""oneDNN-packed linear layers (runtime/packed.py): same numbers as F.linear, a cache that follows the weights,
the plain path wherever packing does not apply."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from salad_model.runtime import packed
from salad_model.runtime.denoiser import Denoiser, DenoiserConfig

pytestmark = pytest.mark.skipif(not packed.available(), reason="torch without oneDNN's packed linear")

TOL = 1e-5  # float reassociation between two GEMM kernels (measured ≤ 1e-6 at these sizes)


@pytest.fixture(autouse=True)
def _enabled():
    packed.ENABLED = True
    yield
    packed.ENABLED = True


def _linear(n_in: int = 24, n_out: int = 40, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(n_in, n_out)


@pytest.mark.parametrize("activation", [None, "gelu", "relu"])
def test_packed_linear_matches_linear_then_activation(activation) -> None:
    lin = _linear()
    x = torch.randn(3, 5, 24)
    with torch.inference_mode():
        got = packed.module_linear(lin, x, activation)
        plain = lin(x)
    expected = plain if activation is None else getattr(F, activation)(plain)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= TOL
    if activation is not None:  # the activation really is applied (a skipped one differs by far more)
        assert (got - plain).abs().max().item() > 0.1


def test_cache_follows_weights_loaded_in_place_and_replaced() -> None:
    lin, other, third = _linear(seed=0), _linear(seed=1), _linear(seed=2)
    x = torch.randn(7, 24)
    with torch.no_grad():
        packed.module_linear(lin, x)  # fills the cache
        lin.load_state_dict(other.state_dict())  # in place: same tensors, new version
        assert (packed.module_linear(lin, x) - other(x)).abs().max().item() <= TOL
        lin.weight = nn.Parameter(third.weight.detach().clone())  # a new tensor
        lin.bias = nn.Parameter(third.bias.detach().clone())
        assert (packed.module_linear(lin, x) - third(x)).abs().max().item() <= TOL


def test_plain_path_under_autograd_keeps_gradients() -> None:
    lin = _linear()
    x = torch.randn(4, 24)
    packed.module_linear(lin, x, "gelu").sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_denoiser_step_same_with_and_without_packing() -> None:
    torch.manual_seed(0)
    cfg = DenoiserConfig(latent_dim=32, n_heads=4, n_layers=3, ff_dim=64, text_dim=16, vae_dim=8)
    den = Denoiser(cfg).eval()
    z = torch.randn(2, 6, 7, 8)
    with torch.inference_mode():
        ctx = den.encode_text(torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool))
        fast = den(z, torch.tensor(300), ctx)
        packed.ENABLED = False
        plain = den(z, torch.tensor(300), ctx)
    assert (fast - plain).abs().max().item() <= TOL


def test_gemm_threads_only_runs_small_ops_on_one_thread_and_gemms_on_all(monkeypatch) -> None:
    """Inside the step the packed GEMMs get the caller's threads back; everything else runs on one; the
    caller's count is restored on the way out, also after an error."""
    lin = _linear()
    real = torch.ops.mkldnn._linear_pointwise
    seen = []

    def spy(*args):
        seen.append(torch.get_num_threads())
        return real(*args)

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.inference_mode():
            with packed.gemm_threads_only():
                inside = torch.get_num_threads()
                packed.module_linear(lin, torch.randn(5, 24))
                after_gemm = torch.get_num_threads()
            assert (inside, seen, after_gemm, torch.get_num_threads()) == (1, [2], 1, 2)
            with pytest.raises(RuntimeError), packed.gemm_threads_only():
                raise RuntimeError("a failing step")
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
