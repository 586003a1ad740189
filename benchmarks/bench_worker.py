"""Benchmark: what the worker process costs compared with calling the pipeline in-process.

    python -m benchmarks.bench_worker [--model PATH] [--runs 20] [--frames 40 196] [--steps 1]

Reports, with a tiny random model unless ``--model`` is given:

- cold start: spawn → ``hello`` answered (no torch yet), spawn → model loaded;
- warm request overhead: the same generate request through the client versus in-process, medians of
  ``--runs`` interleaved runs; the target is < 50 ms. The split shows where the time goes: the
  worker's own compute (its ``elapsed``) versus transport (JSON + base64 + pipes + threads);
- cancel latency at the model's real step time: cancel → ``cancelled`` event, in ms and in steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _client(**kw):
    from salad_blender.client import WorkerClient

    return WorkerClient(env={"OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}, **kw)


def bench_cold(model: str, device: str, runs: int) -> dict:
    hello, loaded = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        c = _client()
        try:
            c.start().wait(60)
            hello.append(time.perf_counter() - t0)
            c.call("load", model=model, device=device, timeout=300)
            loaded.append(time.perf_counter() - t0)
        finally:
            c.close()
    return {"hello_s": statistics.median(hello), "loaded_s": statistics.median(loaded)}


def bench_warm(model: str, device: str, frames: int, steps: int, runs: int) -> dict:
    import torch

    from salad_model.runtime.pipeline import SaladPipeline
    from salad_model.serving.worker import physical_cores

    torch.set_num_threads(physical_cores())  # what the worker uses
    pipe = SaladPipeline.from_pretrained(model, device=device, threads=torch.get_num_threads())
    c = _client()
    try:
        c.start().wait(60)
        c.call("load", model=model, device=device, timeout=300)
        req = {"op": "generate", "prompt": "a person walks forward", "frames": frames, "steps": steps}
        for _ in range(3):  # warm both paths (allocator, text-feature cache)
            pipe.generate(req["prompt"], frames=frames, steps=steps)
            c.submit(req).wait(60)
        local, remote, inside = [], [], []
        for _ in range(runs):  # interleaved, so background load hits both alike
            t0 = time.perf_counter()
            pipe.generate(req["prompt"], frames=frames, steps=steps)
            local.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            data = c.submit(req).wait(60)
            remote.append(time.perf_counter() - t0)
            inside.append(data["elapsed"])
        payload = sum(data[k].nbytes for k in ("joints", "features", "contacts"))
    finally:
        c.close()
    med = statistics.median
    over = [r - s for r, s in zip(remote, local, strict=True)]
    transport = [r - i for r, i in zip(remote, inside, strict=True)]
    return {"in_process_s": med(local), "worker_s": med(remote), "overhead_s": med(over),
            "transport_s": med(transport), "ratio": med(remote) / med(local), "payload_bytes": payload}


def bench_cancel(model: str, device: str, runs: int) -> dict:
    c = _client()
    lat, worker_steps, late_events = [], [], []
    try:
        c.start().wait(60)
        c.call("load", model=model, device=device, timeout=300)
        stamps: list[float] = []
        c.submit({"op": "generate", "prompt": "a person walks", "frames": 196, "steps": 21},
                 on_progress=lambda j: stamps.append(time.perf_counter())).wait(60)
        step_s = (stamps[-1] - stamps[0]) / 20
        for _ in range(runs):
            job = c.submit({"op": "generate", "prompt": "a person walks", "frames": 196, "steps": 1000})
            while job.step < 3:
                job.poll()
                time.sleep(0.0005)
            t0 = time.perf_counter()
            job.cancel()
            late = 0
            while not job.done:
                late += sum(ev["event"] == "progress" for ev in job.poll())
                time.sleep(0.0005)
            lat.append(time.perf_counter() - t0)
            late_events.append(late)
            ev = job.error.event
            worker_steps.append(ev["step"] - ev["cancel_seen_step"])
    finally:
        c.close()
    return {"step_s": step_s, "latency_s": statistics.median(lat), "latency_max_s": max(lat),
            "worker_steps_max": max(worker_steps), "late_progress_max": max(late_events)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_worker", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model folder or 'demo' (default: a tiny random model)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--frames", type=int, nargs="+", default=[40, 196])
    ap.add_argument("--steps", type=int, default=1)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model = a.model
        if model is None:
            from salad_model.runtime.checkpoints import random_bundle, save_model

            model = str(save_model(random_bundle("tiny", seed=0), Path(tmp) / "tiny"))
        print(f"model {model if a.model else 'tiny random'} | device {a.device} | python {sys.version.split()[0]}")
        cold = bench_cold(model, a.device, a.cold_runs)
        print(f"cold start (median of {a.cold_runs}): spawn → hello {cold['hello_s'] * 1000:.0f} ms, "
              f"spawn → model loaded {cold['loaded_s']:.2f} s")
        for frames in a.frames:
            w = bench_warm(model, a.device, frames, a.steps, a.runs)
            verdict = "OK" if w["overhead_s"] < 0.05 else "OVER TARGET"
            print(f"warm generate {frames} frames, {a.steps} step(s), median of {a.runs}: in-process "
                  f"{w['in_process_s'] * 1000:.1f} ms, via worker {w['worker_s'] * 1000:.1f} ms → overhead "
                  f"{w['overhead_s'] * 1000:.1f} ms (transport {w['transport_s'] * 1000:.1f} ms, "
                  f"ratio {w['ratio']:.2f}×, payload {w['payload_bytes'] / 1024:.0f} KiB) [{verdict}: < 50 ms]")
        cn = bench_cancel(model, a.device, max(5, a.runs // 2))
        print(f"cancel at 196 frames (step {cn['step_s'] * 1000:.1f} ms): cancel → cancelled median "
              f"{cn['latency_s'] * 1000:.1f} ms (max {cn['latency_max_s'] * 1000:.1f} ms); steps run after the "
              f"worker saw it ≤ {cn['worker_steps_max']}; progress events after the cancel ≤ "
              f"{cn['late_progress_max']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
