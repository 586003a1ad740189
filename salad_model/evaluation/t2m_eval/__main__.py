"""``python -m salad_model.evaluation.t2m_eval``: score a model on HumanML3D / KIT-ML with the official T2M evaluator.

    python -m salad_model.evaluation.t2m_eval --benchmark t2m --data dataset/humanml3d --evaluator . --model MODEL_DIR
    python -m salad_model.evaluation.t2m_eval convert-glove glove/            # once: pickled vocabulary → JSON

``--evaluator`` is the reference repository root (``checkpoints/`` and ``glove/`` inside), a ``checkpoints``
folder or ``checkpoints/<ds>``. Writes ``<out>/eval_steps<N>_scale<w>.log`` (the reference's log format) and
``<out>/metrics.json`` (keys: see `protocol.SUMMARY_KEYS`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .wordvec import convert_glove


def _glove_dir(a: argparse.Namespace) -> Path:
    if a.glove:
        return Path(a.glove)
    candidates = [Path(a.evaluator) / "glove", Path(a.evaluator).parent / "glove",
                  Path(a.data).parent.parent / "glove"]
    for c in candidates:
        if (c / "our_vab_data.npy").is_file():
            return c
    raise SystemExit("GloVe vocabulary (our_vab_data.npy) not found in " + ", ".join(map(str, candidates))
                     + "; pass --glove DIR")


def evaluate(a: argparse.Namespace):
    """Build evaluator, dataset, loader and generator from the CLI options, then run the protocol."""
    import torch

    from ...runtime.pipeline import SaladPipeline
    from ...training.data.humanml3d import find_stats
    from .dataset import EvalDataset, EvalLoader
    from .networks import MIN_MOTION_LEN, find_evaluator_files, load_evaluator
    from .protocol import SaladGenerator, run_protocol
    from .wordvec import WordVectorizer

    device = a.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    evaluator = load_evaluator(a.evaluator, a.benchmark, device, allow_pickle=a.allow_pickle)
    tar, _ = find_evaluator_files(a.evaluator, a.benchmark)
    stats = a.stats or tar.parent.parent.parent / "Comp_v6_KLD005" / "meta"
    mean, std = find_stats(a.data, a.benchmark, stats)
    wv = WordVectorizer(_glove_dir(a), allow_pickle=a.allow_pickle)
    ds = EvalDataset(a.data, a.split, MIN_MOTION_LEN[a.benchmark], wv, mean, std, seed=a.seed, limit=a.limit,
                     unit_length=evaluator.config.unit_length, max_text_len=evaluator.config.max_text_len)
    loader = EvalLoader(ds, a.batch_size, seed=a.seed)
    text_encoder = None
    if a.text_encoder:
        from ...runtime.text import load_text_encoder

        text_encoder = load_text_encoder(json.loads(a.text_encoder), device=device)
    pipe = SaladPipeline.from_pretrained(a.model, device=device, text_encoder=text_encoder,
                                         threads=torch.get_num_threads())  # as set in main()
    gen = SaladGenerator(pipe, mean, std, steps=a.steps, guidance=a.guidance, seed=a.seed)
    out = Path(a.out) if a.out else Path("runs") / "t2m_eval" / f"{a.benchmark}_{pipe.name}"
    out.mkdir(parents=True, exist_ok=True)
    log_file = out / f"eval_steps{a.steps}_scale{a.guidance:g}.log"
    print(f"{a.benchmark} {a.split}: {len(ds)} items, {len(loader)} batches of {a.batch_size}, "
          f"{a.repeats} repetitions, model {pipe.name}, evaluator epoch {getattr(evaluator, 'epoch', '?')}",
          flush=True)
    t0 = time.time()
    res = run_protocol(evaluator, loader, gen, ds.inv_transform, repeat_time=a.repeats, cal_mm=a.mm,
                       mm_repeats=a.mm_repeats, mm_times=a.mm_times, numpy_seed=a.seed, log_file=log_file,
                       echo=lambda s: print(s, flush=True), diversity_times=a.diversity_times)
    report = {"benchmark": a.benchmark, "split": a.split, "model": str(a.model), "items": len(ds),
              "samples_per_repetition": res.per_repetition[0]["samples"], "repetitions": a.repeats,
              "batch_size": a.batch_size, "steps": a.steps, "guidance": a.guidance, "seed": a.seed,
              "multimodality_computed": a.mm, "seconds": round(time.time() - t0, 1), **res.to_dict()}
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {log_file} and {out / 'metrics.json'}", flush=True)
    return res


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m salad_model.evaluation.t2m_eval",
                                 description="T2M-evaluator benchmark (R-precision, FID, MM-Dist, Diversity, "
                                             "MultiModality) with the reference's repetition protocol.")
    ap.add_argument("--benchmark", choices=["t2m", "kit"], required=True)
    ap.add_argument("--data", type=Path, required=True, help="dataset folder (dataset/humanml3d or dataset/kit-ml)")
    ap.add_argument("--evaluator", type=Path, required=True,
                    help="folder holding checkpoints/<ds>/text_mot_match and Comp_v6_KLD005 (repo root or checkpoints)")
    ap.add_argument("--model", required=True, help="model folder (our format or official checkpoint) or 'demo'")
    ap.add_argument("--glove", type=Path, default=None, help="folder with our_vab_* (default: next to --evaluator)")
    ap.add_argument("--allow-pickle", action="store_true",
                    help="read pickled vocabulary files (our_vab_*.pkl; prefer `convert-glove` once) and a "
                         "finest.tar that does not load weights-only")
    ap.add_argument("--stats", type=Path, default=None, help="folder with mean.npy/std.npy (default: evaluator meta)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--mm", action="store_true", help="compute MultiModality (off in the reference test script)")
    ap.add_argument("--mm-repeats", type=int, default=30)
    ap.add_argument("--mm-times", type=int, default=10)
    ap.add_argument("--diversity-times", type=int, default=None,
                    help="pairs for Diversity (default: the reference's 300, or 100 for ≤ 300 samples)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--limit", type=int, default=None, help="only the first N ids of the split (smoke runs)")
    ap.add_argument("--text-encoder", default=None, help="JSON text-encoder config overriding the model's")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="output folder (default runs/t2m_eval/<bench>_<model>)")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "convert-glove":
        cp = argparse.ArgumentParser(prog="python -m salad_model.evaluation.t2m_eval convert-glove",
                                     description="Convert our_vab_words.pkl / our_vab_idx.pkl to JSON once "
                                                 "(read with a loader that refuses anything but plain data).")
        cp.add_argument("folder", type=Path)
        cp.add_argument("--out", type=Path, default=None, help="write here instead of next to the pickles")
        c = cp.parse_args(argv[1:])
        print(f"converted vocabulary written to {convert_glove(c.folder, c.out)}")
        return 0
    a = build_parser().parse_args(argv)
    import torch

    torch.set_num_threads(a.threads or min(2, os.cpu_count() or 1))
    evaluate(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
