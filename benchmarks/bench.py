"""Benchmarks: ``python -m benchmarks.bench [--model official|demo|tiny|PATH] [--frames 196] ...``.

Prints FLOPs per denoising step (counted by torch's FlopCounterMode on one batched CFG forward), the
achieved GFLOP/s, the CPU matmul ceiling measured in the same run (interleaved with the workload, so both
see the same machine load), the FLOP-implied floor and our ratio to it; end-to-end latency of
generation (text encoding + 50 DDIM steps + VAE decode + joints) and of editing; and DPM-Solver++ at
10/20/25 steps against DDIM-50 (distance and speed).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from salad_model import CONFIGS_DIR  # noqa: E402


def timed(fn: Callable[[], object], repeat: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def matmul_gflops(tokens: int, d: int, ff: int, repeat: int = 10) -> float:
    """Best-case GFLOP/s of this network's largest GEMM shape (the FFN: [tokens, d] × [d, ff])."""
    x, w, b = torch.randn(tokens, d), torch.randn(ff, d), torch.randn(ff)
    with torch.inference_mode():
        t = statistics.median(timed(lambda: F.linear(x, w, b), repeat, warmup=3))
    return 2 * tokens * d * ff / t / 1e9


def step_flops(pipe, frames: int) -> float:
    """FLOPs of one batched CFG denoiser forward at ``frames``."""
    from torch.utils.flop_counter import FlopCounterMode

    from salad_model.runtime.denoiser import TextContext

    den = pipe.denoiser
    ctx = TextContext.cat([pipe._null(1), pipe.text_context(["a person walks forward and waves"])])
    z = torch.randn(2, frames // 4, 7, den.config.vae_dim)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        den(z, torch.tensor(500), ctx, None)
    return float(fc.get_total_flops())


def load(model: str, device: str):
    from salad_model.runtime.checkpoints import random_bundle
    from salad_model.runtime.pipeline import SaladPipeline

    if model in ("official", "tiny"):
        return SaladPipeline(random_bundle(model), device=device)
    if model == "demo-random":
        import json

        from salad_model.runtime.checkpoints import ModelBundle
        from salad_model.runtime.denoiser import Denoiser, DenoiserConfig
        from salad_model.runtime.sampling import DiffusionConfig
        from salad_model.runtime.vae import VAE, VAEConfig

        cfg = json.loads((CONFIGS_DIR / "demo.json").read_text())
        ref = random_bundle("tiny")
        b = ModelBundle(VAE(VAEConfig(**cfg["vae"])).eval(), Denoiser(DenoiserConfig(**cfg["denoiser"])).eval(),
                        ref.mean, ref.std, {"type": "tiny", "seed": 0, "dim": cfg["denoiser"]["text_dim"]},
                        DiffusionConfig(), {**cfg["info"], "name": "demo-config (random weights)"})
        return SaladPipeline(b, device=device)
    return SaladPipeline.from_pretrained(model, device=device, threads=torch.get_num_threads())  # main() sets them


def bench_generation(pipe, frames: int, steps: int, repeat: int) -> dict:
    prompt = "a person walks forward and waves with the right hand"
    den = pipe.denoiser
    flops = step_flops(pipe, frames)
    tokens = 2 * (frames // 4) * 7
    ceilings, gens, step_times = [], [], []
    from salad_model.runtime.denoiser import TextContext

    ctx = TextContext.cat([pipe._null(1), pipe.text_context([prompt])])
    z = torch.randn(2, frames // 4, 7, den.config.vae_dim)
    pipe.generate(prompt, frames=frames, seed=0, steps=2)  # warm-up
    for _ in range(repeat):  # interleave: ceiling, steps, full generation
        ceilings.append(matmul_gflops(tokens, den.config.latent_dim, den.config.ff_dim))
        with torch.inference_mode():
            step_times += timed(lambda: den(z, torch.tensor(500), ctx, None), 5)
        pipe.text_encoder.clear_cache()
        t0 = time.perf_counter()
        pipe.generate(prompt, frames=frames, seed=0, steps=steps)
        gens.append(time.perf_counter() - t0)
    ceiling = statistics.median(ceilings)
    step = statistics.median(step_times)
    gen = statistics.median(gens)
    floor = flops * steps / (ceiling * 1e9)
    return {"gflop_per_step": flops / 1e9, "ceiling_gflops": ceiling, "step_s": step,
            "achieved_gflops": flops / step / 1e9, "generate_s": gen, "floor_s": floor, "ratio": gen / floor,
            "step_ratio": step / (flops / (ceiling * 1e9))}


def bench_edit(pipe, frames: int, steps: int, gen_s: float) -> dict:
    """Edit latency as the product sees it (generation recorded its maps) and cold (source recomputed)."""
    src = "a person walks forward and waves with the right hand"
    kw = dict(frames=frames, seed=0, steps=steps)
    t0 = time.perf_counter()
    pipe.generate(src, record_maps=True, **kw)
    out = {"record_maps_generate": {"s": time.perf_counter() - t0, "ratio": (time.perf_counter() - t0) / gen_s}}
    cases = {"mirror": dict(mirror="all"), "mirror_attention": dict(mirror="all", mirror_method="attention"),
             "reweight": dict(word="waves", scale=2.0),
             "word_swap": dict(edit_prompt="a person runs forward and waves with the right hand"),
             "refine": dict(edit_prompt="a person walks forward slowly and waves with the right hand")}
    recorded, last = pipe._maps_cache, pipe._last_motion
    for name, extra in cases.items():
        pipe._maps_cache, pipe._last_motion = recorded, last
        t0 = time.perf_counter()
        pipe.edit(src, **kw, **extra)
        warm = time.perf_counter() - t0
        pipe.clear_cache()
        t0 = time.perf_counter()
        pipe.edit(src, **kw, **extra)
        cold = time.perf_counter() - t0
        out[name] = {"cached_s": warm, "cold_s": cold, "cached_ratio": warm / gen_s, "cold_ratio": cold / gen_s}
    return out


def bench_solvers(pipe, frames: int) -> dict:
    prompts = ["a person walks forward", "someone waves with the left hand", "a person runs"]
    ref = {p: pipe.generate(p, frames=frames, seed=1, steps=50) for p in prompts}
    other = {p: pipe.generate(p, frames=frames, seed=2, steps=50) for p in prompts}

    def err(a, b):
        return float(np.linalg.norm(a.joints - b.joints, axis=-1).mean())

    res = {"seed_to_seed_m": statistics.mean(err(ref[p], other[p]) for p in prompts)}
    for sched, steps in (("ddim", 25), ("dpm++", 10), ("dpm++", 20), ("dpm++", 25)):
        t0 = time.perf_counter()
        outs = {p: pipe.generate(p, frames=frames, seed=1, steps=steps, scheduler=sched) for p in prompts}
        dt = (time.perf_counter() - t0) / len(prompts)
        res[f"{sched}-{steps}"] = {"mpjpe_to_ddim50_m": statistics.mean(err(outs[p], ref[p]) for p in prompts),
                                   "seconds": dt}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="official", help="official | demo-random | tiny | demo | model folder")
    ap.add_argument("--frames", type=int, default=196)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip", nargs="*", default=[], choices=["edit", "solvers"])
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads or min(2, os.cpu_count() or 1))
    pipe = load(a.model, a.device)
    print(f"model {pipe.name} | {a.frames} frames | {a.steps} steps | CFG | threads {torch.get_num_threads()} "
          f"| torch {torch.__version__}")
    g = bench_generation(pipe, a.frames, a.steps, a.repeat)
    print(f"FLOPs per batched CFG step   {g['gflop_per_step']:.2f} GFLOP ({g['gflop_per_step'] * a.steps:.0f} "
          f"GFLOP for {a.steps} steps)")
    print(f"matmul ceiling (same run)    {g['ceiling_gflops']:.0f} GFLOP/s")
    print(f"one step                     {g['step_s'] * 1000:.1f} ms = {g['achieved_gflops']:.0f} GFLOP/s "
          f"({g['step_ratio']:.2f}x the FLOP floor)")
    print(f"generate (text→joints)       {g['generate_s']:.2f} s; floor {g['floor_s']:.2f} s; "
          f"ratio {g['ratio']:.2f}x")
    if "edit" not in a.skip:
        edits = bench_edit(pipe, a.frames, a.steps, g["generate_s"])
        rec = edits.pop("record_maps_generate")
        print(f"generate + record maps       {rec['s']:.2f} s ({rec['ratio']:.2f}x plain generation)")
        for name, e in edits.items():
            print(f"edit {name:16s}        {e['cached_s']:.2f} s ({e['cached_ratio']:.2f}x generation) after a "
                  f"recorded generation; {e['cold_s']:.2f} s ({e['cold_ratio']:.2f}x) cold")
    if "solvers" not in a.skip:
        s = bench_solvers(pipe, a.frames)
        print(f"solvers vs DDIM-50 (mean joint distance; different seed: {s.pop('seed_to_seed_m') * 100:.1f} cm)")
        for k, v in s.items():
            print(f"  {k:10s} {v['mpjpe_to_ddim50_m'] * 100:6.2f} cm   {v['seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
