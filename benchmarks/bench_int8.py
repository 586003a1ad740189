"""Dynamic int8 quantisation of the denoiser's large linear layers: ``python -m benchmarks.bench_int8 [--model demo]``.

Quantises the FFN, attention output and skip projections (the GEMMs that do not go through the fused Q/K/V
or FiLM weights) with ``torch.ao.quantization.quantize_dynamic``, then prints, alternating fp32 and int8
steps in one run: the step time ratio (median and best-of), the relative error of one step, and the mean
joint distance of a DDIM-50 generation to the fp32 one beside that of another seed. Measurement only: int8
is not an option of the product (README, "Speed").
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import copy  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks.bench import load  # noqa: E402
from salad_model.runtime.denoiser import TextContext  # noqa: E402

QUANTISED = ("ffn_linear1", "ffn_linear2", ".Wo")


def quantised_copy(den: nn.Module) -> nn.Module:
    q = copy.deepcopy(den)
    names = {n for n, m in q.named_modules()
             if isinstance(m, nn.Linear) and (n.endswith(QUANTISED) or "skip_blocks" in n)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        spec = {n: torch.ao.quantization.default_dynamic_qconfig for n in names}
        return torch.ao.quantization.quantize_dynamic(q, spec, dtype=torch.qint8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_int8", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="official", help="official | demo | model folder")
    ap.add_argument("--frames", type=int, default=196)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    pipe = load(a.model, "cpu")
    den = pipe.denoiser
    q = quantised_copy(den)
    ctx = TextContext.cat([pipe._null(1), pipe.text_context(["a person walks forward and waves"])])
    z = torch.randn(2, a.frames // 4, 7, den.config.vae_dim)
    tf: list[float] = []
    tq: list[float] = []
    with torch.inference_mode():
        ref, out = den(z, torch.tensor(500), ctx, None), q(z, torch.tensor(500), ctx, None)
        for r in range(a.rounds):
            order = ((den, tf), (q, tq)) if r % 2 == 0 else ((q, tq), (den, tf))
            for m, acc in order:
                m(z, torch.tensor(500), ctx, None)
                t0 = time.perf_counter()
                m(z, torch.tensor(500), ctx, None)
                acc.append(time.perf_counter() - t0)
    print(f"model {pipe.name} | {a.frames} frames | threads {a.threads}")
    print(f"one step: relative error {float((ref - out).norm() / ref.norm()):.4f}")
    print(f"int8/fp32 step time: median {statistics.median(tq) / statistics.median(tf):.2f}, "
          f"best-of {min(tq) / min(tf):.2f} (same run, alternating)")
    prompt = "a person walks forward"
    m1 = pipe.generate(prompt, frames=a.frames, seed=1)
    pipe.denoiser = q
    m2 = pipe.generate(prompt, frames=a.frames, seed=1)
    pipe.denoiser = den
    m3 = pipe.generate(prompt, frames=a.frames, seed=2)

    def dist(x, y) -> float:
        return float(np.linalg.norm(x.joints - y.joints, axis=-1).mean())

    print(f"DDIM-50 mean joint distance int8 vs fp32 {dist(m1, m2) * 100:.2f} cm (another seed: "
          f"{dist(m1, m3) * 100:.2f} cm)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
