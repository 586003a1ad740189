"""The GEMM ceiling the floor is measured against is the faster of the GEMMs the step may use.

The step runs its Linear layers through oneDNN-packed weights (runtime/packed.py), which beat ``F.linear`` at
the network's shapes; a ceiling timed with ``F.linear`` alone would make ``ours / floor`` look better than it is.
"""

import pytest

from benchmarks import bench
from salad_model.runtime import packed


@pytest.mark.skipif(not packed.available(), reason="torch without oneDNN's packed linear")
def test_the_ceiling_is_the_faster_gemm(monkeypatch):
    calls = []

    def fake_timed(fn, repeat, warmup=1):  # the packed call is the second: make it twice as fast
        calls.append(fn)
        return [2.0] if len(calls) == 1 else [1.0]

    monkeypatch.setattr(bench, "timed", fake_timed)
    flops = 2 * 8 * 4 * 16
    assert bench.matmul_gflops(8, 4, 16) == pytest.approx(flops / 1.0 / 1e9)
    assert len(calls) == 2
    monkeypatch.setattr(packed, "ENABLED", True)
    monkeypatch.setattr(packed, "_available", False)  # no oneDNN: F.linear only
    calls.clear()
    assert bench.matmul_gflops(8, 4, 16) == pytest.approx(flops / 2.0 / 1e9)
    assert len(calls) == 1


@pytest.mark.skipif(not packed.available(), reason="torch without oneDNN's packed linear")
def test_the_packed_ceiling_call_computes_the_product():
    import torch

    x, w, b = torch.randn(5, 4), torch.randn(3, 4), torch.randn(3)
    with torch.inference_mode():
        assert torch.allclose(packed.linear(x, w, b, torch.nn.Module()), x @ w.T + b, atol=1e-5)
