"""Evaluation of a SALAD model trained on Bandai-Namco: ``python -m salad_model.evaluation.eval [metrics|...]``.

Subcommands (``metrics`` is the default)::

    python -m salad_model.evaluation.eval train-classifier [--data data_cache/bandai]
                                          [--out salad_model/assets/classifier]
    python -m salad_model.evaluation.eval [metrics] --model demo [--limit 150] [--steps 50] [--sampler ddim|dpm++]
                                          [--edits] [--edit-seeds 20] [--out report.json]
    python -m salad_model.evaluation.eval vae --run runs/demo    # VAE reconstruction only, from a training checkpoint
    python -m salad_model.evaluation.eval plots --run runs/demo [--report report.json] [--img docs/img]
    python -m salad_model.evaluation.eval real --model demo [--limit 24]   # issue #7: real clips through inversion
    python -m salad_model.evaluation.eval shots --model demo [--timelines 30]  # issue #13: seams, joins, parts, cost

The work lives in small modules: ``metrics`` (pure metric functions, VAE reconstruction), ``generated``
(issue #3), ``edit_stats`` (issue #4), ``eval_real`` (issue #7), ``shots`` (issue #13), ``report`` (tables),
``report_plots`` (figures).

What ``metrics`` measures (issue #3): for a seeded sample of test clips, one motion per clip generated
from one of the clip's *held-out* captions at the clip's length; the shipped classifier
(:mod:`salad_model.evaluation.classifier`) then gives content / style / left-right accuracy against the clip's
labels, next to the same classifier's accuracy on the real clips (the ceiling); a Fréchet distance and
the diversity on classifier embeddings; and VAE reconstruction MPJPE on all test clips.
``--edits`` adds the editing statistics of issue #4 (mirror, style word swap, re-weighting).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from .classifier import (  # noqa: E402
    CLASSIFIER_DIR,
    center_crop,
    classification_report,
    generation_frames,
    load_classifier,
    load_split,
)
from .edit_stats import edit_statistics  # noqa: E402
from .generated import generated_metrics  # noqa: E402
from .metrics import vae_reconstruction, vae_roundtrip  # noqa: E402
from .report import classifier_summary, format_markdown, format_report, pct, to_jsonable  # noqa: E402
from .report_plots import plot_classifier_history, plot_losses, plot_report, read_log, training_cost  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT / "data_cache" / "bandai"
DEFAULT_IMG = REPO_ROOT / "docs" / "img"


def run_metrics(a: argparse.Namespace) -> dict:
    from ..runtime.pipeline import SaladPipeline

    clf_dir = Path(a.classifier) if a.classifier else CLASSIFIER_DIR
    clf = load_classifier(clf_dir)
    pipe = SaladPipeline.from_pretrained(a.model, device=a.device, threads=torch.get_num_threads())  # as set above
    info = pipe.info
    if getattr(a, "bf16", False):
        pipe.use_cpu_bf16(True)
    rep: dict = {"model": {"name": pipe.name, "source": str(info.get("source", a.model)),
                           "trained_iterations": info.get("trained_iterations")},
                 "data": str(a.data), "classifier": classifier_summary(clf, clf_dir),
                 "command": "python -m salad_model.evaluation.eval " + " ".join(sys.argv[1:])}
    if a.label:
        rep["label"] = a.label
    print(f"model {pipe.name} ({info.get('trained_iterations')}), classifier {clf_dir}", flush=True)
    test = load_split(Path(a.data), "test")
    rep["vae"] = vae_reconstruction(pipe.vae, pipe.mean, pipe.std,
                                    [c.features for c in (test if a.vae_limit is None else test[: a.vae_limit])])
    print(f"VAE MPJPE {rep['vae']['mpjpe_cm']:.2f} cm", flush=True)
    if not a.no_generation:
        steps, sampler, guided = a.steps, a.sampler, a.guided_steps
        if a.fast:
            steps, sampler, guided = (pipe.fast_preset[k] for k in ("steps", "scheduler", "guided_steps"))
        rep["generation"] = generated_metrics(pipe, clf, Path(a.data), a.limit, steps, sampler, a.batch,
                                              a.seed, a.guidance, log=lambda s: print(s, flush=True), split=a.split,
                                              guided_steps=guided, guider=a.guider)
    if a.edits:
        steps, sampler, guided = a.edit_steps or a.steps, a.sampler, a.guided_steps
        if a.fast:  # edits of fast generations: the same preset for source and edit
            steps, sampler, guided = (pipe.fast_preset[k] for k in ("steps", "scheduler", "guided_steps"))
        rep["edits"] = edit_statistics(pipe, clf, a.edit_seeds, a.edit_frames, steps, sampler,
                                       log=lambda s: print(s, flush=True), guided_steps=guided)
    return rep


def run_vae(a: argparse.Namespace) -> dict:
    """VAE reconstruction straight from a training checkpoint (no denoiser needed)."""
    from ..training.checkpoint_state import load_checkpoint
    from ..training.train import load_config, load_stage

    cfg = load_config(a.config)
    vae = load_stage(cfg, a.run, "vae")
    it = load_checkpoint(Path(a.run) / "vae" / "latest.pt")["iter"]
    mean = torch.from_numpy(np.load(Path(a.data) / "mean.npy"))
    std = torch.from_numpy(np.load(Path(a.data) / "std.npy"))
    test = load_split(Path(a.data), "test")
    r = vae_reconstruction(vae, mean, std, [c.features for c in test])
    rep: dict = {"vae": {**r, "checkpoint": str(Path(a.run) / "vae" / "latest.pt"), "iteration": it}}
    for extra in getattr(a, "extra_data", None) or ():  # e.g. the DeepMimic clips (issue 19), every clip
        from ..training.data.bandai import clip_arrays, load_dataset

        clips, joints, feats = load_dataset(extra)
        per = {c["name"]: vae_reconstruction(vae, mean, std, [clip_arrays(c, joints, feats)[1]])["mpjpe_cm"]
               for c in clips}
        rep.setdefault("vae_extra", {})[str(extra)] = {
            **vae_reconstruction(vae, mean, std, [clip_arrays(c, joints, feats)[1] for c in clips]),
            "per_clip_cm": per}
        print(f"VAE MPJPE on {extra}: {rep['vae_extra'][str(extra)]['mpjpe_cm']:.2f} cm "
              f"(test split of --data: {r['mpjpe_cm']:.2f} cm)", flush=True)
    clf_dir = Path(a.classifier) if a.classifier else CLASSIFIER_DIR
    if (clf_dir / "config.json").is_file():  # what the VAE alone costs the evaluator (upper bound for generation)
        clf = load_classifier(clf_dir)
        crops = [center_crop(c.features, generation_frames(len(c.features) + 1)) for c in test]
        labels = ([c.content for c in test], [c.style for c in test], [c.dataset for c in test])
        real = classification_report(clf, clf.predict(crops), *labels)
        rec = classification_report(clf, clf.predict(vae_roundtrip(vae, mean, std, crops)), *labels)
        keys = ("content_acc", "style_acc", "style_acc_within_dataset", "lr_acc")
        rep["vae_roundtrip_classification"] = {"real": {k: real[k] for k in keys},
                                               "vae_roundtrip": {k: rec[k] for k in keys}}
    return rep


def run_with_model(a: argparse.Namespace, key: str, statistics, markdown) -> int:
    """Load the classifier and ``a.model``, put ``statistics(pipe, clf, log)`` under ``key`` and write the report.

    The runner of the evaluations that generate with a model (``real``, ``shots``): the report JSON (``--out``)
    and its Markdown tables (``--markdown``, also printed) come from ``markdown(report[key])``.
    """
    from ..runtime.pipeline import SaladPipeline

    clf = load_classifier(Path(a.classifier) if a.classifier else CLASSIFIER_DIR)
    pipe = SaladPipeline.from_pretrained(a.model, device=a.device, threads=torch.get_num_threads())  # as set above
    rep = {"model": {"name": pipe.name, "trained_iterations": pipe.info.get("trained_iterations")},
           "command": "python -m salad_model.evaluation.eval " + " ".join(sys.argv[1:]),
           key: statistics(pipe, clf, lambda s: print(s, flush=True))}
    md = markdown(rep[key])
    print(md)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(to_jsonable(rep), indent=1) + "\n")
    if a.markdown:
        a.markdown.write_text(md + "\n")
    return 0


def run_real(a: argparse.Namespace) -> int:
    from .eval_real import format_real_markdown, real_statistics

    return run_with_model(a, "real", lambda pipe, clf, log: real_statistics(
        pipe, clf, a.data, a.limit, a.steps, a.null_text_iters, a.seed, log=log, split=a.split,
        null_text_limit=a.null_text_limit), format_real_markdown)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["convert-glove"] or any(x == "--benchmark" or x.startswith("--benchmark=") for x in argv):
        from .t2m_eval.__main__ import main as t2m_eval_main  # HumanML3D / KIT-ML benchmark (issue #8)

        return t2m_eval_main(argv)
    commands = ("metrics", "train-classifier", "vae", "plots", "real", "shots")
    if not argv or argv[0] not in commands + ("-h", "--help"):
        argv = ["metrics"] + argv
    ap = argparse.ArgumentParser(prog="python -m salad_model.evaluation.eval", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("metrics", help="classifier-based metrics of generated motion (default)")
    m.add_argument("--model", default="demo", help="demo, or a model folder (ours or official)")
    m.add_argument("--data", type=Path, default=DEFAULT_DATA)
    m.add_argument("--classifier", type=Path, default=None, help=f"classifier folder (default {CLASSIFIER_DIR})")
    m.add_argument("--limit", type=int, default=150, help="test clips to generate for (0 = all)")
    m.add_argument("--steps", type=int, default=50)
    m.add_argument("--sampler", default="ddim", choices=["ddim", "dpm++"])
    m.add_argument("--guidance", type=float, default=None)
    m.add_argument("--guided-steps", type=int, default=None,
                   help="guidance on the first N steps only, the conditional half alone after (fast mode)")
    m.add_argument("--guider", default=None,
                   help="how guided halves combine (salad_model.runtime.guiders), e.g. cfg, "
                        "'apg:eta=0,norm_threshold=2', 'rescale:phi=0.7', 'interval:start_at=0.2,stop_at=0.8,outside=1'"
                        " (default: the model's info.guider, else plain CFG)")
    m.add_argument("--fast", action="store_true", help="the fast-mode preset (replaces --steps/--sampler)")
    m.add_argument("--bf16", action="store_true", help="generations under CPU bfloat16 autocast (use_cpu_bf16)")
    m.add_argument("--split", default="test", choices=["test", "val"],
                   help="clips to generate for: test (report) or val (choose settings such as --guidance)")
    m.add_argument("--batch", type=int, default=16)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--vae-limit", type=int, default=None, help="test clips for VAE MPJPE (default all)")
    m.add_argument("--no-generation", action="store_true", help="skip the generated-motion metrics")
    m.add_argument("--edits", action="store_true", help="also run the editing statistics (issue #4)")
    m.add_argument("--edit-seeds", type=int, default=20)
    m.add_argument("--edit-frames", type=int, default=100)
    m.add_argument("--edit-steps", type=int, default=None, help="steps for edits (default --steps)")
    m.add_argument("--label", default=None, help="free text stored in the report (e.g. 'interim, iteration N')")
    m.add_argument("--device", default="cpu")
    m.add_argument("--threads", type=int, default=None)
    m.add_argument("--out", type=Path, default=None, help="write the report JSON here")
    m.add_argument("--markdown", type=Path, default=None, help="write the model-card tables (Markdown) here")
    t = sub.add_parser("train-classifier", help="train and save the evaluation classifier")
    t.add_argument("--data", type=Path, default=DEFAULT_DATA)
    t.add_argument("--out", type=Path, default=CLASSIFIER_DIR)
    t.add_argument("--max-steps", type=int, default=4000)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1, help="1 by default: leave cores to model training")
    v = sub.add_parser("vae", help="VAE reconstruction MPJPE from a training checkpoint")
    v.add_argument("--run", type=Path, default=Path("runs/demo"))
    v.add_argument("--config", default="demo")
    v.add_argument("--data", type=Path, default=DEFAULT_DATA)
    v.add_argument("--classifier", type=Path, default=None)
    v.add_argument("--threads", type=int, default=None)
    v.add_argument("--out", type=Path, default=None)
    v.add_argument("--extra-data", type=Path, action="append", default=None,
                   help="also every clip of this built dataset (e.g. data_cache/deepmimic), per clip")
    r = sub.add_parser("real", help="issue #7: reconstruction MPJPE and edits of real test clips via inversion")
    r.add_argument("--model", default="demo")
    r.add_argument("--data", type=Path, default=DEFAULT_DATA)
    r.add_argument("--classifier", type=Path, default=None)
    r.add_argument("--limit", type=int, default=0, help="a seeded sample of N dataset-2 clips (0: all of them)")
    r.add_argument("--steps", type=int, default=50)
    r.add_argument("--null-text-iters", type=int, default=10)
    r.add_argument("--null-text-limit", type=int, default=24,
                   help="null-text inversion on the seeded sample of this many clips (the --limit N run's clips)")
    r.add_argument("--split", default="test", choices=["test", "val"])
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="cpu")
    r.add_argument("--threads", type=int, default=None)
    r.add_argument("--out", type=Path, default=None)
    r.add_argument("--markdown", type=Path, default=None)
    from .shots import add_arguments as shots_arguments

    shots_arguments(sub.add_parser("shots", help="issue #13: seams, per-segment content, joins, parts, cost"))
    p = sub.add_parser("plots", help="figures for the model card")
    p.add_argument("--run", type=Path, default=Path("runs/demo"))
    p.add_argument("--report", type=Path, default=None, help="report JSON from `metrics --out`")
    p.add_argument("--classifier", type=Path, default=CLASSIFIER_DIR)
    p.add_argument("--img", type=Path, default=DEFAULT_IMG)
    a = ap.parse_args(argv)

    if a.cmd == "plots":
        a.img.mkdir(parents=True, exist_ok=True)
        for stage in ("vae", "denoiser"):
            log = a.run / stage / "log.csv"
            if log.is_file() and len(read_log(log).get("iter", ())):
                cols = read_log(log)
                extra = ""
                if "val_mpjpe_m" in cols and np.isfinite(cols["val_mpjpe_m"]).any():
                    ok = np.isfinite(cols["val_mpjpe_m"])
                    extra = f", last val MPJPE {cols['val_mpjpe_m'][ok][-1] * 100:.2f} cm"
                print(f"{stage}: {training_cost(cols)}{extra}")
        paths = plot_losses(a.run, a.img) + plot_classifier_history(a.classifier, a.img)
        if a.report:
            paths += plot_report(json.loads(a.report.read_text()), a.img)
        print("\n".join(str(x) for x in paths))
        return 0
    if a.cmd == "train-classifier":
        from .classifier import train_classifier

        _, s = train_classifier(a.data, a.out, max_steps=a.max_steps, seed=a.seed, threads=a.threads,
                                log=lambda x: print(x, flush=True))
        t = s["test"]
        print(f"test (ceiling): content {pct(t['content_acc'])}, style {pct(t['style_acc'])} "
              f"(own dataset {pct(t['style_acc_within_dataset'])}), left/right {pct(t['lr_acc'])}; saved to {a.out}")
        return 0
    torch.set_num_threads(a.threads or min(2, os.cpu_count() or 1))
    if a.cmd == "real":
        return run_real(a)
    if a.cmd == "shots":
        from .shots import run as run_shots

        return run_shots(a)
    if a.cmd == "vae":
        rep = run_vae(a)
    else:
        if a.limit == 0:
            a.limit = None
        rep = run_metrics(a)
    print(format_report(rep))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(to_jsonable(rep), indent=1) + "\n")
        print(f"wrote {a.out}")
    if getattr(a, "markdown", None):
        a.markdown.write_text(format_markdown(rep) + "\n")
        print(f"wrote {a.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
