"""Benchmarks: ``python -m benchmarks.bench [--model official|demo|tiny|PATH] [--frames 196] ...``.

Prints FLOPs per denoising step (counted by torch's FlopCounterMode on one batched CFG forward), the
achieved GFLOP/s, the CPU matmul ceiling measured in the same run (interleaved with the workload, so both
see the same machine load), the FLOP-implied floor and our ratio to it; end-to-end latency of
generation (text encoding + 50 DDIM steps + VAE decode + joints) and of editing; and DPM-Solver++ at
10/20/25 steps against DDIM-50 (distance and speed).

In the same run, alternating with ours, it times a straightforward baseline of the same network with the
same weights (benchmarks/baseline.py: the reference's way of computing it), checks that both give the same
motion, and prints ``cpu_baseline_ratio=`` (the same in process CPU time), ``student_ratio=<a step-distilled
student's sampling (4 unguided DDIM steps, training/distill.py) on this network / baseline DDIM-50>``,
``fast_ratio=<fast mode / baseline DDIM-50>`` and, as the last line,
``baseline_ratio=<ours / baseline>``. The machine is shared: absolute times are noisy, only ratios measured
in the same run mean anything.
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
from salad_model.runtime.requests import FAST_PRESET  # noqa: E402
from salad_model.training.distill import STUDENT_STEPS  # noqa: E402

# Ours and the baseline compute the same network in a different order: the joints of a 50-step generation
# agree to ~1e-5 m (measured on the official-size random network and the demo model); 1 mm fails the run.
PARITY_M = 1e-3


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
    """Best-case GFLOP/s of this network's largest GEMM shape (the FFN: [tokens, d] × [d, ff]), best of
    ``repeat`` (a ceiling: on a shared machine the best call is the one least disturbed) and best of the two
    GEMMs torch offers here: ``F.linear`` and, where the step uses it, the oneDNN-packed linear. The step runs
    the packed one (faster at these shapes), so a ceiling from ``F.linear`` alone would flatter the ratio."""
    from salad_model.runtime import packed

    x, w, b = torch.randn(tokens, d), torch.randn(ff, d), torch.randn(ff)
    owner = torch.nn.Module()
    calls = [lambda: F.linear(x, w, b)]
    if packed.available():
        calls.append(lambda: packed.linear(x, w, b, owner))
    with torch.inference_mode():
        t = min(min(timed(call, repeat, warmup=3)) for call in calls)
    return 2 * tokens * d * ff / t / 1e9


def step_flops(pipe, frames: int) -> float:
    """FLOPs of one batched CFG denoiser forward at ``frames`` (counted on the plain F.linear path: the same
    products, which FlopCounterMode sees)."""
    from torch.utils.flop_counter import FlopCounterMode

    from salad_model.runtime import packed
    from salad_model.runtime.denoiser import TextContext

    den = pipe.denoiser
    ctx = TextContext.cat([pipe._null(1), pipe.text_context(["a person walks forward and waves"])])
    z = torch.randn(2, frames // 4, 7, den.config.vae_dim)
    enabled, packed.ENABLED = packed.ENABLED, False  # the counter does not see oneDNN's packed linear calls
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as fc:
            den(z, torch.tensor(500), ctx, None)
    finally:
        packed.ENABLED = enabled
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


def bench_generation(pipe, frames: int, steps: int, repeat: int, baseline: bool = True) -> dict:
    """Ours, the straightforward baseline (benchmarks/baseline.py) and fast mode, alternating in one run.

    Each round measures the GEMM ceiling, a few denoiser steps and then the generations in an order that
    alternates between rounds (ours first, then baseline first, …), so every figure sees the same load;
    only the in-run ratios are meant to be compared (the machine is shared).
    """
    from benchmarks import baseline as base
    from salad_model.runtime.denoiser import TextContext

    prompt = "a person walks forward and waves with the right hand"
    den = pipe.denoiser
    flops = step_flops(pipe, frames)
    tokens = 2 * (frames // 4) * 7
    times: dict[str, list[float]] = {"ours": [], "baseline": [], "fast": [], "student": []}
    cpu: dict[str, list[float]] = {k: [] for k in times}  # process CPU time, all threads
    ceilings, step_times = [], []
    ctx = TextContext.cat([pipe._null(1), pipe.text_context([prompt])])
    z = torch.randn(2, frames // 4, 7, den.config.vae_dim)
    from salad_model.runtime import traced

    pipe.generate(prompt, frames=frames, seed=0, steps=2)  # warm-up (and the samplers imported)
    trace_s = 0.0
    if traced.ENABLED:  # first use of a shape traces the halves' graph (runtime/traced.py): its cost
        one = []
        for fresh in (True, False):
            if fresh:
                traced.forward_of(den).graphs.clear()
            t0 = time.perf_counter()
            pipe.generate(prompt, frames=frames, seed=0, steps=1)
            one.append(time.perf_counter() - t0)
        trace_s = one[0] - one[1]
    pipe.generate(prompt, frames=frames, seed=0, steps=2, scheduler="dpm++")

    def ours() -> None:
        pipe.text_encoder.clear_cache()
        pipe.generate(prompt, frames=frames, seed=0, steps=steps)

    def fast() -> None:
        pipe.text_encoder.clear_cache()
        pipe.generate(prompt, frames=frames, seed=0, fast=True)

    def student() -> None:  # a distilled student's work: its steps, conditional half only (weights: this network's)
        pipe.text_encoder.clear_cache()
        pipe.generate(prompt, frames=frames, seed=0, steps=STUDENT_STEPS, guidance=1.0)

    runs = {"ours": ours, "fast": fast, "student": student}
    if baseline:
        runs["baseline"] = lambda: base.generate(pipe, prompt, frames, seed=0, steps=steps,
                                                 guidance=pipe.default_guidance)
    for r in range(repeat):
        ceilings.append(matmul_gflops(tokens, den.config.latent_dim, den.config.ff_dim))
        with torch.inference_mode():
            step_times += timed(lambda: den(z, torch.tensor(500), ctx, None), 5)
        for name in (list(runs) if r % 2 == 0 else list(reversed(runs))):
            t0, c0 = time.perf_counter(), time.process_time()
            runs[name]()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    # Ratios are medians of per-round ratios: the two figures of a round were measured back to back.
    ceiling = statistics.median(ceilings)
    step = statistics.median(step_times)
    gen = statistics.median(times["ours"])
    floor = flops * steps / (ceiling * 1e9)
    floor_ratios = [g / (flops * steps / (c * 1e9)) for g, c in zip(times["ours"], ceilings, strict=True)]
    out = {"gflop_per_step": flops / 1e9, "ceiling_gflops": ceiling, "step_s": step,
           "achieved_gflops": flops / step / 1e9, "generate_s": gen, "floor_s": floor,
           "ratio": statistics.median(floor_ratios), "floor_ratios": floor_ratios,
           "step_ratio": step / (flops / (ceiling * 1e9)), "fast_s": statistics.median(times["fast"]),
           "fast_vs_ours": statistics.median(f / o for f, o in zip(times["fast"], times["ours"], strict=True)),
           "rounds": times, "cpu_rounds": cpu, "trace_s": trace_s}
    if baseline:
        b = statistics.median(times["baseline"])
        ref = base.generate(pipe, prompt, frames, seed=0, steps=steps, guidance=pipe.default_guidance)
        pipe.text_encoder.clear_cache()
        ours_joints = pipe.generate(prompt, frames=frames, seed=0, steps=steps).joints
        rounds = [o / x for o, x in zip(times["ours"], times["baseline"], strict=True)]
        fast_rounds = [f / x for f, x in zip(times["fast"], times["baseline"], strict=True)]
        student_rounds = [s / x for s, x in zip(times["student"], times["baseline"], strict=True)]
        cpu_rounds = [o / x for o, x in zip(cpu["ours"], cpu["baseline"], strict=True)]
        out.update(baseline_s=b, baseline_ratio=statistics.median(rounds),
                   fast_ratio=statistics.median(fast_rounds), parity_m=float(np.abs(ours_joints - ref).max()),
                   round_ratios=rounds, fast_round_ratios=fast_rounds,
                   student_ratio=statistics.median(student_rounds), student_round_ratios=student_rounds,
                   cpu_round_ratios=cpu_rounds, cpu_baseline_ratio=statistics.median(cpu_rounds))
    return out


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
    ap.add_argument("--skip", nargs="*", default=[], choices=["edit", "solvers", "baseline"])
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads or min(2, os.cpu_count() or 1))
    pipe = load(a.model, a.device)
    print(f"model {pipe.name} | {a.frames} frames | {a.steps} steps | CFG | threads {torch.get_num_threads()} "
          f"| torch {torch.__version__}")
    g = bench_generation(pipe, a.frames, a.steps, a.repeat, baseline="baseline" not in a.skip)
    print(f"FLOPs per batched CFG step   {g['gflop_per_step']:.2f} GFLOP ({g['gflop_per_step'] * a.steps:.0f} "
          f"GFLOP for {a.steps} steps)")
    print(f"matmul ceiling (same run)    {g['ceiling_gflops']:.0f} GFLOP/s (isolated FFN-shape GEMM, hot cache)")
    print(f"one step                     {g['step_s'] * 1000:.1f} ms = {g['achieved_gflops']:.0f} GFLOP/s "
          f"({g['step_ratio']:.2f}x the FLOP floor)")
    print(f"generate (text→joints)       {g['generate_s']:.2f} s; floor {g['floor_s']:.2f} s; "
          f"ours/floor {g['ratio']:.2f}x (per round: {' '.join(f'{x:.2f}' for x in g['floor_ratios'])})")
    if "baseline_s" in g:
        print(f"baseline (reference's way)   {g['baseline_s']:.2f} s (two forwards per step, 77 text keys "
              f"recomputed per step, per-joint VAE loops); max joint difference to ours {g['parity_m']:.1e} m "
              f"(tolerance {PARITY_M:g} m)")
        print("per-round ours/baseline      " + " ".join(f"{x:.2f}" for x in g["round_ratios"]))
        print("per-round fast/baseline      " + " ".join(f"{x:.3f}" for x in g["fast_round_ratios"]))
        print("per-round student/baseline   " + " ".join(f"{x:.3f}" for x in g["student_round_ratios"]))
        print("per-round ours/baseline CPU  " + " ".join(f"{x:.2f}" for x in g["cpu_round_ratios"])
              + "  (process CPU time: steadier than wall time when other processes share the cores)")
        if g["parity_m"] > PARITY_M:
            raise SystemExit(f"ours and the baseline disagree by {g['parity_m']:.3g} m > {PARITY_M} m")
    if g["trace_s"]:
        print(f"tracing the step (first use of a shape; runtime/traced.py)  {g['trace_s']:.2f} s")
    fast = ", ".join(f"{k} {v}" for k, v in FAST_PRESET.items())
    print(f"fast mode ({fast})  {g['fast_s']:.2f} s ({g['fast_vs_ours']:.2f}x ours DDIM-{a.steps})")
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
    if "baseline_s" in g:
        print(f"cpu_baseline_ratio={g['cpu_baseline_ratio']:.3f}")
        print(f"student_ratio={g['student_ratio']:.3f}")
        print(f"fast_ratio={g['fast_ratio']:.3f}")
        print(f"baseline_ratio={g['baseline_ratio']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
