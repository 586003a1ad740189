"""The CFG halves as TorchScript graphs (runtime/traced.py): eager's numbers, one graph per shape and weights,
retraced when the weights change, eager again when tracing fails or a controller watches the attention."""

import threading

import numpy as np
import pytest
import torch

from salad_model.runtime import halves, packed, traced
from salad_model.runtime.attention import ControlledAttnProcessor
from salad_model.runtime.denoiser import Denoiser, DenoiserConfig

pytestmark = pytest.mark.skipif(not packed.available(), reason="torch without oneDNN's packed linear")

TOL = 1e-5  # the same ops in the same order on the same rows: float rounding only (measured ≤ 1e-6)


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    halves.ENABLED = traced.ENABLED = True
    yield
    halves.ENABLED = traced.ENABLED = True
    torch.set_num_threads(before)


def _setup(batch: int = 4, heads: int = 4):
    torch.manual_seed(0)
    cfg = DenoiserConfig(latent_dim=32, n_heads=heads, n_layers=3, ff_dim=64, text_dim=16, vae_dim=8)
    den = Denoiser(cfg).eval()
    z = torch.randn(batch, 6, 7, 8)
    valid = torch.arange(5)[None] < torch.tensor([5, 2, 4, 3])[:batch, None]
    frames = torch.arange(6)[None] < torch.tensor([6, 4, 5, 3])[:batch, None]
    with torch.inference_mode():
        ctx = den.encode_text(torch.randn(batch, 5, 16), valid)
    return den, z, ctx, frames


def _eager(den, *args):
    traced.ENABLED = False
    try:
        return den(*args)
    finally:
        traced.ENABLED = True


def test_traced_halves_give_eager_numbers_on_two_threads_with_one_graph(monkeypatch) -> None:
    """Per-row timesteps, prompts of different lengths and a frame mask all reach the graph as inputs; both
    halves run the same graph, one on the worker thread; the next step (other timesteps) reuses it. (The
    first call of a shape runs eagerly in the thread that traces it.)"""
    den, z, ctx, frames = _setup()
    threads = []
    real = torch.jit.ScriptModule.__call__
    monkeypatch.setattr(torch.jit.ScriptModule, "__call__",
                        lambda self, *a: threads.append(threading.current_thread()) or real(self, *a))
    with torch.inference_mode():
        for ts in (torch.tensor([300, 300, 700, 700]), torch.tensor(500)):
            want = _eager(den, z, ts, ctx, frames)
            got = den(z, ts, ctx, frames)
            assert (got - want).abs().max().item() <= TOL
    graphs = traced.forward_of(den).graphs
    assert len(graphs) == 2 and all(g is not None for g in graphs.values())  # per-row FiLM [2, ...] vs shared [1, ...]
    threads.clear()
    with torch.inference_mode():
        want = _eager(den, z, torch.tensor(100), ctx, frames)
        got = den(z, torch.tensor(100), ctx, frames)
    assert (got - want).abs().max().item() <= TOL
    assert len(graphs) == 2
    assert len(threads) == 2 and {t is threading.main_thread() for t in threads} == {True, False}


def test_the_official_sampler_path_matches_eager() -> None:
    """A whole DDIM run through the sampler's FiLM table (the graph takes the looked-up pairs as inputs)."""
    from salad_model.runtime.sampling import sample

    den, _, _, _ = _setup(2)
    torch.manual_seed(1)
    with torch.inference_mode():
        ctx = den.encode_text(torch.randn(1, 4, 16), None)
        null = den.encode_text(torch.zeros(1, 4, 16), None)
        runs = []
        for on in (False, True):
            traced.ENABLED = on
            runs.append(sample(den, torch.randn(1, 6, 7, 8, generator=torch.Generator().manual_seed(2)), ctx, null,
                               guidance=4.0, steps=10))
    assert len(traced.forward_of(den).graphs) == 1
    np.testing.assert_allclose(runs[1].numpy(), runs[0].numpy(), atol=5e-5)


def test_weights_changed_in_place_retrace() -> None:
    den, z, ctx, frames = _setup()
    with torch.inference_mode():
        before = den(z, torch.tensor(300), ctx, frames)
    with torch.no_grad():
        den.transformer.middle_block.ffn_linear2.weight.mul_(3.0)
    with torch.inference_mode():
        want = _eager(den, z, torch.tensor(300), ctx, frames)
        got = den(z, torch.tensor(300), ctx, frames)
    assert (want - before).abs().max().item() > 1e-3  # the change shows
    assert (got - want).abs().max().item() <= TOL
    assert len(traced.forward_of(den).graphs) == 2


def test_a_failed_trace_runs_that_shape_eagerly(monkeypatch) -> None:
    den, z, ctx, frames = _setup()

    def refuse(*a, **k):
        raise RuntimeError("cannot trace")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    with torch.inference_mode():
        want = _eager(den, z, torch.tensor(300), ctx, frames)
        got = den(z, torch.tensor(300), ctx, frames)
    assert (got - want).abs().max().item() <= TOL
    assert list(traced.forward_of(den).graphs.values()) == [None]


def test_a_controller_or_autograd_keeps_the_eager_forward(monkeypatch) -> None:
    den, z, ctx, frames = _setup()
    seen = []
    den.set_attn_processor(ControlledAttnProcessor(lambda p, kind, layer: seen.append(kind) or p))
    with torch.inference_mode():
        den(z, torch.tensor(300), ctx, frames)
    assert seen and not traced.forward_of(den).graphs
    assert not traced.applies(den, z)  # autograd on: training keeps eager
    den.set_attn_processor(ControlledAttnProcessor.__mro__[1]())
    with torch.no_grad():
        assert traced.applies(den, z)


def test_small_steps_split_only_when_traced(monkeypatch) -> None:
    """Eager halves below MIN_WORK repeat Python dispatch under one GIL (demo model 1.42x CPU for 0.96x
    wall); traced ones hold no GIL, so any size splits (demo model: 0.60x wall, README)."""
    den, z, ctx, frames = _setup()
    monkeypatch.setattr(halves, "MIN_WORK", 1 << 40)
    with torch.inference_mode():
        assert halves.applies(den, z, ctx)
        traced.ENABLED = False
        assert not halves.applies(den, z, ctx)


def test_graphs_are_bounded(monkeypatch) -> None:
    den, _, _, _ = _setup(2)
    monkeypatch.setattr(traced, "MAX_GRAPHS", 2)
    with torch.inference_mode():
        for frames in (4, 5, 6):
            z = torch.randn(2, frames, 7, 8)
            ctx = den.encode_text(torch.randn(1, 3, 16), None)
            den(z, torch.tensor(300), ctx, None)
    graphs = traced.forward_of(den).graphs
    assert len(graphs) == 2 and [k[0][0][1] for k in graphs] == [5, 6]


def test_prompts_of_nearby_lengths_share_one_graph_and_keep_eager_numbers() -> None:
    """Prompts are padded with masked words up to a multiple of TEXT_BUCKET (9 and 14 words: one graph of 16);
    the padding is exactly neutral, so the result is eager's on the unpadded prompt."""
    den, z, _, _ = _setup(2)
    with torch.inference_mode():
        for words in (9, 14):
            ctx = den.encode_text(torch.randn(1, words, 16), None)
            want = _eager(den, z, torch.tensor(300), ctx, None)
            got = den(z, torch.tensor(300), ctx, None)
            assert (got - want).abs().max().item() <= TOL
    assert len(traced.forward_of(den).graphs) == 1


def test_the_graph_keeps_the_packed_gemms_with_their_fused_activation() -> None:
    """Packed weights are graph inputs (opaque tensors cannot be constants): the graph calls oneDNN's packed
    linear with the FFN's GELU inside, as the eager step does, not F.linear and a separate GELU pass."""
    den, z, ctx, frames = _setup()
    with torch.inference_mode():
        den(z, torch.tensor(300), ctx, frames)
    (graph, slots), = traced.forward_of(den).graphs.values()
    code = str(graph.inlined_graph)
    assert code.count("mkldnn::_linear_pointwise") >= 3 * 4 and '"gelu"' in code and "aten::gelu" not in code
    assert len(slots) == len(packed.slots(den)) > 0


def test_a_graph_that_raises_falls_back_to_eager_for_good(monkeypatch) -> None:
    den, z, ctx, frames = _setup()
    with torch.inference_mode():
        den(z, torch.tensor(300), ctx, frames)  # traced
        forward = traced.forward_of(den)
        (key, (graph, slots)), = forward.graphs.items()

        class Broken:
            def __call__(self, *a):
                raise RuntimeError("graph input mismatch")

        forward.graphs[key] = (Broken(), slots)
        want = _eager(den, z, torch.tensor(300), ctx, frames)
        got = den(z, torch.tensor(300), ctx, frames)
    assert (got - want).abs().max().item() <= TOL
    assert forward.graphs[key] is None
