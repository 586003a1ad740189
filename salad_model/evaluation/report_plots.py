"""Model-card figures: training losses and cost from a run's log.csv, report accuracies, edits, classifier history."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .plots import pyplot
from .report import pct


def read_log(path: Path) -> dict[str, np.ndarray]:
    """A training log.csv as columns (missing cells → nan; the header may gain columns mid-file)."""
    with open(path) as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return {}
    head = rows[0]
    cols: dict[str, list[float]] = {h: [] for h in head}
    for r in rows[1:]:
        for k, h in enumerate(head):
            try:
                cols[h].append(float(r[k]) if k < len(r) and r[k] != "" else float("nan"))
            except ValueError:
                cols[h].append(float("nan"))
    extra = [r[len(head)] for r in rows[1:] if len(r) > len(head)]
    if extra:  # rows written with a column (val_mpjpe_m) that the first row's header lacks
        cols["val_mpjpe_m"] = [float(r[len(head)]) if len(r) > len(head) else float("nan") for r in rows[1:]]
    return {k: np.array(v) for k, v in cols.items()}


def training_cost(cols: dict[str, np.ndarray]) -> dict:
    """Iterations and wall-clock seconds of a (possibly resumed) run: ``sec`` restarts at each resume,
    so the time is the sum of each segment's last value (time after the last log row is not counted)."""
    it, sec = cols.get("iter", np.zeros(0)), cols.get("sec", np.zeros(0))
    if not len(it):
        return {"iterations": 0, "seconds": 0.0, "segments": 0}
    total, seg_max, segments = 0.0, 0.0, 1
    for k in range(len(sec)):
        if k and sec[k] < sec[k - 1]:
            total += seg_max
            seg_max, segments = 0.0, segments + 1
        seg_max = max(seg_max, float(sec[k]))
    total += seg_max
    return {"iterations": int(np.nanmax(it)), "seconds": round(total, 1), "segments": segments,
            "seconds_per_iteration": round(total / max(int(np.nanmax(it)), 1), 3)}


def plot_losses(run: Path, img: Path) -> list[Path]:
    """Loss curves of the VAE (with validation MPJPE) and the denoiser."""
    plt = pyplot()
    out = []
    for stage in ("vae", "denoiser"):
        log = Path(run) / stage / "log.csv"
        if not log.is_file():
            continue
        cols = read_log(log)
        if not len(cols.get("iter", ())):
            continue  # a run that has not logged yet
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        it = cols["iter"]
        ax.plot(it, cols["loss"], lw=0.8, alpha=0.5, label="loss")
        if "loss_ema" in cols:
            ax.plot(it, cols["loss_ema"], lw=1.5, label="loss (EMA)")
        for k in ("recon", "pos", "vel"):
            if k in cols:
                ax.plot(it, cols[k], lw=0.8, label=k)
        sec = cols.get("sec", np.zeros(0))
        for k in range(1, len(sec)):
            if sec[k] < sec[k - 1]:  # a resume: the run may have restarted with changed code
                ax.axvline(it[k - 1], color="grey", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("iteration (dotted: resumed)")
        ax.set_ylabel("training loss")
        if "val_mpjpe_m" in cols and np.isfinite(cols["val_mpjpe_m"]).any():
            ax2 = ax.twinx()
            ok = np.isfinite(cols["val_mpjpe_m"])
            ax2.plot(it[ok], cols["val_mpjpe_m"][ok] * 100, "k.-", label="val MPJPE (cm)")
            ax2.set_ylabel("val MPJPE (cm)")
            ax2.legend(loc="upper center", fontsize=8)
        cost = training_cost(cols)
        ax.set_title(f"{stage} training ({cost['iterations']} iterations, "
                     f"{cost['seconds'] / 3600:.1f} h wall-clock on CPU)")
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        path = Path(img) / f"loss_{stage}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    return out


def _stamp(fig, rep: dict) -> None:
    """Lay out the figure and write which model (and iteration) the numbers are for in its corner."""
    it = rep.get("model", {}).get("trained_iterations")
    text = rep.get("label") or (f"{rep.get('model', {}).get('name', '')} {it or ''}").strip()
    fig.tight_layout(rect=(0, 0.03, 1, 1) if text else None)
    if text:
        fig.text(0.995, 0.005, text, ha="right", va="bottom", fontsize=7, color="grey")


def plot_report(rep: dict, img: Path) -> list[Path]:
    """Per-class accuracy bars, confusion matrix, editing statistics from a metrics report."""
    plt = pyplot()
    out: list[Path] = []
    g = rep.get("generation")
    clf_names = rep.get("classifier", {}).get("contents")
    if g:
        for kind in ("content", "style"):
            real, gen = g["real_test_all"][f"per_{kind}"], g["generated"][f"per_{kind}"]
            names = sorted(real)
            x = np.arange(len(names))
            fig, ax = plt.subplots(figsize=(max(6.4, 0.42 * len(names) + 1.5), 3.8))
            ax.bar(x - 0.2, [real[n] for n in names], 0.4, label="real test clips (ceiling)")
            ax.bar(x + 0.2, [gen.get(n, np.nan) for n in names], 0.4, label="generated (held-out captions)")
            ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
            ax.set_ylim(0, 1.05)
            ax.set_ylabel("accuracy")
            ax.set_title(f"{kind} accuracy per class", pad=22)
            ax.legend(fontsize=8, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
            _stamp(fig, rep)
            path = Path(img) / f"accuracy_{kind}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            out.append(path)
        if clf_names:
            fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
            panels = (("real test clips", "real_test_all"), ("generated", "generated"))
            keep = sum(np.array(g[key]["confusion"]).sum(1) for _, key in panels) > 0  # same rows in both
            for ax, (title, key) in zip(axes, panels, strict=True):
                conf = np.array(g[key]["confusion"], float)[keep]
                rows = conf / np.maximum(conf.sum(1, keepdims=True), 1)
                ax.imshow(rows, cmap="Blues", vmin=0, vmax=1, aspect="auto")
                ax.set_yticks(range(int(keep.sum())), [n for n, k in zip(clf_names, keep, strict=True) if k],
                              fontsize=7)
                ax.set_xticks(range(len(clf_names)), clf_names, rotation=90, fontsize=7)
                ax.set_xlabel("predicted content")
                ax.set_title(f"content confusion: {title}")
            _stamp(fig, rep)
            path = Path(img) / "confusion_content.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            out.append(path)
    e = rep.get("edits")
    if e:
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
        ms = [m for m in (e["mirror"], e.get("mirror_attention")) if m]
        keys = (("flip_rate", "flip (classifier)"), ("wrist_flip_rate", "flip (wrist height)"),
                ("content_kept", "content kept"))
        for j, m in enumerate(ms):
            vals = [m.get(k, np.nan) for k, _ in keys]
            xs = np.arange(len(keys)) + (j - (len(ms) - 1) / 2) * 0.38
            axes[0].bar(xs, vals, 0.38, label=m.get("method", "attention"))
            for x_, v in zip(xs, vals, strict=True):
                axes[0].text(x_, (0 if np.isnan(v) else v) + 0.02, pct(v), ha="center", fontsize=7)
        axes[0].axhline(0.8, ls="--", c="k", lw=0.8)
        axes[0].set_xticks(range(len(keys)), [lab for _, lab in keys], fontsize=8)
        axes[0].set_ylim(0, 1.12)
        axes[0].legend(fontsize=7, title="mirror method", title_fontsize=7)
        axes[0].set_title(f"mirror edit ({ms[0]['n']} seeds)")
        sw = e["style_swap"]
        x = np.arange(len(sw))
        bars = (("source_is_source_style", "source has its style"), ("edit_is_target_style", "edit has target style"),
                ("content_kept", "content class kept"), ("edit_is_prompt_content", "edit has prompt's content"))
        for k, (key, lab) in enumerate(bars):
            axes[1].bar(x + (k - 1.5) * 0.2, [s.get(key, np.nan) for s in sw], 0.2, label=lab)
        axes[1].set_xticks(x, [f"→ {s['target_style']}" for s in sw], fontsize=8)
        axes[1].set_ylim(0, 1.05)
        axes[1].legend(fontsize=7)
        axes[1].set_title(f"style word swap ({sw[0]['n'] if sw else 0} seeds each)")
        for r in e["reweight"]:
            mean = np.array(r["mean_by_scale"])
            base = mean[r["scales"].index(1.0)] if 1.0 in r["scales"] else mean.mean()
            axes[2].errorbar(r["scales"], mean / base, yerr=np.array(r["std_by_scale"]) / base / np.sqrt(r["n"]),
                             marker="o", capsize=2,
                             label=f"'{r['word']}' → {r['quantity']} (ρ̄={r['spearman_mean']:+.2f})")
        axes[2].set_xlabel("re-weight scale")
        axes[2].set_ylabel("quantity / value at scale 1")
        axes[2].legend(fontsize=7)
        axes[2].set_title("re-weighting (mean ± s.e.)")
        _stamp(fig, rep)
        path = Path(img) / "editing.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    return out


def plot_classifier_history(folder: Path, img: Path) -> list[Path]:
    """Validation accuracy of the classifier during training (from its config.json)."""
    cfile = Path(folder) / "config.json"
    if not cfile.is_file():
        return []
    hist = json.loads(cfile.read_text()).get("training", {}).get("history") or []
    if not hist:
        return []
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([h["step"] for h in hist], [h["val_content_acc"] for h in hist], label="content (val)")
    ax.plot([h["step"] for h in hist], [h["val_style_acc"] for h in hist], label="style (val)")
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    ax.set_title("motion classifier training")
    fig.tight_layout()
    path = Path(img) / "classifier_val.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
