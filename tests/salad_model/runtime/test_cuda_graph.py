"""The GPU path: a captured CUDA graph of the step under autocast. No GPU here: those tests skip with an
``optional:`` reason (CI has none either); what runs everywhere is the refusal on the wrong device."""

import pytest
import torch

from salad_model.runtime.checkpoints import random_bundle
from salad_model.runtime.cuda_graph import GraphedDenoiser
from salad_model.runtime.pipeline import SaladPipeline

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="optional: needs a CUDA GPU")


def test_graphs_refuse_a_cpu_denoiser():
    den = random_bundle("tiny").denoiser
    with pytest.raises(ValueError, match="CUDA device"):
        GraphedDenoiser(den)


@needs_cuda
def test_graphed_step_matches_eager_under_the_same_autocast():
    pipe = SaladPipeline(random_bundle("official"), device="cuda")
    ctx = pipe.text_context(["a person walks forward"])
    g = GraphedDenoiser(pipe.denoiser, torch.float16)
    z = torch.randn(1, 49, 7, 32, device="cuda")
    with torch.inference_mode():
        eager = g._forward(z, torch.tensor([500], device="cuda"), ctx, None)
        for t in (900, 500):  # the second call replays the captured graph with new inputs
            out = g(z, t, ctx, None)
        ref = g._forward(z, torch.tensor([500], device="cuda"), ctx, None)
    assert g.captured == 1
    assert (out - ref).abs().max() <= 1e-2 * ref.abs().max()  # fp16: relative 1e-2
    assert not torch.equal(eager, g(z, 900, ctx, None))
    with pytest.raises(ValueError, match="float16, bfloat16 or float32"):
        GraphedDenoiser(pipe.denoiser, torch.int8)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_graphed_generation_follows_the_eager_one(dtype):
    pipe = SaladPipeline(random_bundle("official"), device="cuda")
    eager = pipe.generate("a person walks forward", frames=80, seed=3, steps=20).joints
    pipe.use_cuda_graphs(dtype)
    graphed = pipe.generate("a person walks forward", frames=80, seed=3, steps=20).joints
    other = pipe.generate("a person runs backward", frames=80, seed=3, steps=20).joints  # new prompt, same shape
    tol = 1e-4 if dtype == torch.float32 else 0.05  # metres; bf16 keeps 8 bits of mantissa
    assert abs(graphed - eager).max() < tol
    assert abs(other - graphed).max() > tol
    assert pipe._graphed.captured == 1
