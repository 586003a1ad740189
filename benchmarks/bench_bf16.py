"""bfloat16 autocast on the CPU (opt-in ``SaladPipeline.use_cpu_bf16``): ``python -m benchmarks.bench_bf16
[--model demo|official] [--repeat 3]``.

Alternating fp32 and bf16 generations in one run (DDIM-50 and fast mode), it prints the ratios of their
process CPU time and wall time (medians of per-round ratios), and the mean joint distance of each bf16
clip to its fp32 twin beside that of another seed (what "the same motion" has to beat). bf16 GEMMs use
oneDNN; they are fast on CPUs with AMX or AVX512-BF16 and may be slower elsewhere.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.bench import load  # noqa: E402

PROMPTS = ("a person walks forward", "someone waves with the left hand", "a person runs")


def dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=-1).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_bf16", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--frames", type=int, default=196)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads or min(2, os.cpu_count() or 1))
    pipe = load(a.model, "cpu")
    flags = [f for f in ("amx_bf16", "avx512_bf16") if f in open("/proc/cpuinfo").read()] \
        if os.path.exists("/proc/cpuinfo") else []
    print(f"model {pipe.name} | {a.frames} frames | threads {torch.get_num_threads()} | CPU bf16 support: "
          f"{', '.join(flags) or 'none found'}")
    for label, kw in (("DDIM-50", dict(steps=50)), ("fast", dict(fast=True))):
        cpu: dict[bool, list[float]] = {False: [], True: []}
        wall: dict[bool, list[float]] = {False: [], True: []}
        for r in range(a.repeat + 1):
            for bf in ((False, True) if r % 2 == 0 else (True, False)):
                pipe.use_cpu_bf16(bf)
                t0, c0 = time.perf_counter(), time.process_time()
                pipe.generate(PROMPTS[0], frames=a.frames, seed=0, **kw)
                if r:  # round 0 warms both up
                    wall[bf].append(time.perf_counter() - t0)
                    cpu[bf].append(time.process_time() - c0)
        rc = [b / f for f, b in zip(cpu[False], cpu[True], strict=True)]
        rw = [b / f for f, b in zip(wall[False], wall[True], strict=True)]
        errs, seeds = [], []
        for p in PROMPTS:
            pipe.use_cpu_bf16(False)
            ref, other = (pipe.generate(p, frames=a.frames, seed=s, **kw) for s in (1, 2))
            pipe.use_cpu_bf16(True)
            errs.append(dist(pipe.generate(p, frames=a.frames, seed=1, **kw).joints, ref.joints))
            seeds.append(dist(other.joints, ref.joints))
        pipe.use_cpu_bf16(False)
        print(f"{label}: bf16/fp32 CPU time {statistics.median(rc):.2f} (rounds {' '.join(f'{x:.2f}' for x in rc)}), "
              f"wall {statistics.median(rw):.2f} (rounds {' '.join(f'{x:.2f}' for x in rw)}); mean joint distance "
              f"to fp32 {statistics.mean(errs) * 100:.2f} cm (per prompt {' '.join(f'{e * 100:.2f}' for e in errs)}; "
              f"another seed {statistics.mean(seeds) * 100:.1f} cm)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
