"""Where a denoising step's time goes: ``python -m benchmarks.profile_step [--model official] [--threads 1]``.

Load-robust by construction (the machine is shared): everything is CPU time of this process
(``time.process_time``), not wall time. The step's matrix products (every addmm / bmm / fused attention
call, found with torch.profiler's recorded shapes) are replayed one shape at a time in isolation; their sum
is the step's GEMM time, the rest of the step (layer norms, softmax, GELU, FiLM, copies, Python) is the
difference. Each shape's rate is set against the isolated FFN-shape GEMM (the benchmark's ceiling) in the
same run. Then torch.profiler's self time by op for the non-GEMM ops (wall time: indicative only when
other processes share the cores). The step is profiled as one batched forward (``runtime/halves.py`` off: the
profiler records the calling thread only, so a split step would show half its work); each CFG half's share
is about what ``--threads 1`` shows for the whole batch.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import collections  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

PACKED = "mkldnn::_linear_pointwise"  # runtime/packed.py: a Linear through a oneDNN-packed weight
GEMM_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm",
            "aten::_scaled_dot_product_flash_attention_for_cpu", PACKED)


def cpu_time(fn: Callable[[], object], repeat: int = 7) -> float:
    """Median CPU seconds of ``fn`` (all threads of this process) after one warm-up call."""
    fn()
    out = []
    for _ in range(repeat):
        c0 = time.process_time()
        fn()
        out.append(time.process_time() - c0)
    return statistics.median(out)


def gemm_flops(op: str, shapes: list) -> int:
    """FLOPs of one matrix-product call from its recorded input shapes (2 per multiply-add)."""
    if op == "aten::addmm":  # bias, [m, k], [k, n]
        (m, k), (_, n) = shapes[1], shapes[2]
        return 2 * m * k * n
    if op == "aten::mm":
        (m, k), (_, n) = shapes[0], shapes[1]
        return 2 * m * k * n
    if op == PACKED:  # x [..., k], weight [n, k]
        x, (n, k) = shapes[0], shapes[1]
        return 2 * (math.prod(x) // k) * k * n
    if op in ("aten::bmm", "aten::baddbmm"):  # baddbmm: bias first
        a, b = (shapes[0], shapes[1]) if op == "aten::bmm" else (shapes[1], shapes[2])
        return 2 * a[0] * a[1] * a[2] * b[2]
    if op == "aten::_scaled_dot_product_flash_attention_for_cpu":  # q [B, H, Lq, D], k [B, H, Lk, D]
        q, k = shapes[0], shapes[1]
        return 4 * q[0] * q[1] * q[2] * q[3] * k[2]
    raise ValueError(f"not a matrix product: {op}")


def replay(op: str, shapes: list) -> Callable[[], torch.Tensor]:
    """The same call on random inputs of the recorded shapes."""
    t = [torch.randn(s) if s else None for s in shapes]
    if op == "aten::addmm":
        return lambda: torch.addmm(t[0], t[1], t[2])
    if op == "aten::mm":
        return lambda: torch.mm(t[0], t[1])
    if op == "aten::bmm":
        return lambda: torch.bmm(t[0], t[1])
    if op == "aten::baddbmm":
        return lambda: torch.baddbmm(t[0], t[1], t[2])
    if op == PACKED:
        w = torch.ops.mkldnn._reorder_linear_weight(t[1], math.prod(shapes[0][:-1]))
        return lambda: torch.ops.mkldnn._linear_pointwise(t[0], w, t[2], "none", [], "")
    mask = None if len(shapes) < 6 or not shapes[5] else torch.zeros(shapes[5])
    return lambda: F.scaled_dot_product_attention(t[0], t[1], t[2], attn_mask=mask)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.bench import load
    from salad_model.runtime import halves
    from salad_model.runtime.denoiser import TextContext

    ap = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="official")
    ap.add_argument("--frames", type=int, default=196)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    halves.ENABLED = False  # one batched forward on this thread (see the docstring)
    pipe = load(a.model, "cpu")
    den = pipe.denoiser
    ctx = TextContext.cat([pipe._null(1), pipe.text_context(["a person walks forward and waves"])])
    z = torch.randn(2, a.frames // 4, 7, den.config.vae_dim)
    with torch.inference_mode():
        def step() -> torch.Tensor:
            return den(z, torch.tensor(500), ctx, None)

        step()  # warm-up: packed weights and folded text built outside the profile
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
            step()
        calls = collections.Counter((e.name, repr(e.input_shapes)) for e in prof.events() if e.name in GEMM_OPS)
        tokens = 2 * (a.frames // 4) * 7
        x, w, b = torch.randn(tokens, den.config.latent_dim), torch.randn(den.config.ff_dim, den.config.latent_dim), \
            torch.randn(den.config.ff_dim)
        ceiling = 2 * tokens * den.config.latent_dim * den.config.ff_dim / cpu_time(lambda: F.linear(x, w, b), 20)
        rows, gemm_s, flops = [], 0.0, 0
        for (op, sh), n in calls.items():
            shapes = eval(sh)  # noqa: S307 - our own profiler's repr of nested int lists
            fn = replay(op, shapes)
            t = cpu_time(lambda fn=fn: [fn() for _ in range(10)]) / 10
            f = gemm_flops(op, shapes)
            rows.append((t * n, n, op, sh, f / t / 1e9))
            gemm_s += t * n
            flops += f * n
        step_s = cpu_time(step)
    print(f"model {pipe.name} | {a.frames} frames | batched CFG step (halves off) | threads {a.threads} | "
          "CPU time of this process")
    print(f"GEMM ceiling (isolated FFN shape) {ceiling / 1e9:.0f} GFLOP/s; step matmul FLOPs {flops / 1e9:.2f} GFLOP "
          f"→ floor {flops / ceiling * 1e3:.1f} ms")
    print(f"step {step_s * 1e3:.1f} ms = {step_s / (flops / ceiling):.2f}x the floor; matrix products replayed "
          f"{gemm_s * 1e3:.1f} ms ({gemm_s / step_s:.0%}); everything else {(step_s - gemm_s) * 1e3:.1f} ms")
    for t, n, op, sh, rate in sorted(rows, reverse=True):
        print(f"  {t * 1e3:7.2f} ms  x{n:<3d} {rate:6.1f} GFLOP/s  {op.removeprefix('aten::')} {sh}")
    other = collections.Counter()
    for e in prof.key_averages():
        if e.key not in GEMM_OPS and e.self_cpu_time_total > 0:
            other[e.key] += e.self_cpu_time_total
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    print("non-GEMM ops by profiler self time (wall; share of the profiled step):")
    for k, v in other.most_common(12):
        print(f"  {v / total:6.1%}  {k}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
