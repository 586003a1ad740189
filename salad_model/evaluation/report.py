"""Evaluation reports: plain-text and model-card Markdown tables, and the JSON form of a report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .classifier import MotionClassifier


def pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def format_report(rep: dict) -> str:
    """Plain-text tables (also pasted into the model card)."""
    lines = []
    if "classifier" in rep:
        lines.append(f"classifier: {rep['classifier']['path']}")
    if "vae" in rep:
        v = rep["vae"]
        lines.append(f"VAE reconstruction (test, {v['clips']} clips, {v['frames']} frames): "
                     f"MPJPE {v['mpjpe_cm']:.2f} cm (per-clip mean {v['mpjpe_clip_mean_cm']:.2f} cm, "
                     f"p90 frame {v['mpjpe_p90_frame_cm']:.2f} cm)")
    vc = rep.get("vae_roundtrip_classification")
    if vc:
        lines.append("classifier on real test clips vs their VAE reconstructions: " + ", ".join(
            f"{k} {pct(vc['real'][k])} → {pct(vc['vae_roundtrip'][k])}" for k in vc["real"]))
    g = rep.get("generation")
    if g:
        gen, real, allr = g["generated"], g["real_same_clips"], g["real_test_all"]
        lines += [f"generated from held-out captions: {g['n']} test clips, {g['sampler']} {g['steps']} steps, "
                  f"guidance {g['guidance']:g}, {g['generation_seconds']:.0f}s",
                  f"{'metric':<28}{'generated':>12}{'real (same)':>14}{'real (all test)':>17}"]
        rec = g.get("vae_roundtrip_same_clips", {})
        lines[-1] += f"{'VAE round trip':>16}"
        for key, label in (("content_acc", "content accuracy"), ("style_acc", "style accuracy"),
                           ("style_acc_within_dataset", "style acc. (own dataset)"), ("lr_acc", "left/right (1-hand)")):
            lines.append(f"{label:<28}{pct(gen[key]):>12}{pct(real[key]):>14}{pct(allr[key]):>17}"
                         f"{pct(rec.get(key, float('nan'))):>16}")
        lines += [f"{'content / ceiling':<28}{g['content_ratio_to_ceiling']:>12.2f}",
                  f"{'style / ceiling':<28}{g['style_ratio_to_ceiling']:>12.2f}",
                  f"{'Fréchet distance (clf)':<28}{g['fid']:>12.3f}{'':>14}{g['fid_real_val_vs_test']:>17.3f}"
                  "  (real: val vs test)",
                  f"{'diversity':<28}{g['diversity_generated']:>12.3f}{'':>14}{g['diversity_real_test']:>17.3f}"]
    e = rep.get("edits")
    if e:
        guided = f", guidance on the first {e['guided_steps']}" if e.get("guided_steps") is not None else ""
        lines.append(f"editing ({e['seeds']} seeds, {e['frames']} frames, {e['sampler']} {e['steps']} steps{guided}):")
        for m in (e["mirror"], e.get("mirror_attention")):
            if m:
                lines.append(f"  mirror ({m.get('method', 'attention')}): left/right flip {pct(m['flip_rate'])} "
                             f"(given a correct source {pct(m['flip_rate_given_source_correct'])}); content kept "
                             f"{pct(m.get('content_kept', float('nan')))}; wrist-height flip "
                             f"{pct(m['wrist_flip_rate'])}")
        for s in e["style_swap"]:
            lines.append(f"  style swap '{s['source']}' → '{s['edit']}' ({s['mode']}): source is {s['source_style']} "
                         f"{pct(s['source_is_source_style'])}, style changed {pct(s['style_changed'])}, edit is "
                         f"{s['target_style']} {pct(s['edit_is_target_style'])}, content kept "
                         f"{pct(s['content_kept'])}, edit is {s['content']} {pct(s['edit_is_prompt_content'])}")
        for r in e["reweight"]:
            means = " ".join(f"{v:.3f}" for v in r["mean_by_scale"])
            lines.append(f"  reweight '{r['word']}' in '{r['prompt']}' → {r['quantity']}: Spearman mean "
                         f"{r['spearman_mean']:+.2f}, of means {r['spearman_of_means']:+.2f}, expected sign "
                         f"{r['expected_sign']:+d} in {pct(r['fraction_expected_direction'])} of seeds; "
                         f"means over scales {r['scales']}: {means}")
    return "\n".join(lines)


def format_markdown(rep: dict) -> str:
    """The generated-motion and editing tables of the model card, from a report."""
    out = []
    g = rep.get("generation")
    if g:
        gen, real, allr = g["generated"], g["real_same_clips"], g["real_test_all"]
        rec = g.get("vae_roundtrip_same_clips", {})
        out += [f"{g['n']} test clips, one held-out caption each, {g['sampler']} {g['steps']} steps, guidance "
                f"{g['guidance']:g}, seed {g['seed']} (generation took {g['generation_seconds'] / 60:.1f} min).", "",
                "| metric | generated | real, same clips (ceiling) | real, all test | VAE round trip, same clips |",
                "|---|---|---|---|---|"]
        for key, label in (("content_acc", "content accuracy"), ("style_acc", "style accuracy"),
                           ("style_acc_within_dataset", "style accuracy (own sub-dataset)"),
                           ("lr_acc", f"left/right, one-handed ({gen['lr_n']} clips)")):
            out.append(f"| {label} | **{pct(gen[key])}** | {pct(real[key])} | {pct(allr[key])} | "
                       f"{pct(rec.get(key, float('nan')))} |")
        out += [f"| content accuracy / ceiling | **{g['content_ratio_to_ceiling']:.2f}** (goal ≥ 0.80) | | | |",
                f"| style accuracy / ceiling | **{g['style_ratio_to_ceiling']:.2f}** | | | |",
                f"| Fréchet distance (classifier embedding, vs all real test clips) | **{g['fid']:.2f}** | | "
                f"{g['fid_real_val_vs_test']:.2f} (real val clips, same sample size) | |",
                f"| diversity (300 random pairs) | **{g['diversity_generated']:.2f}** | | "
                f"{g['diversity_real_test']:.2f} | |", ""]
    e = rep.get("edits")
    if e:
        ms = [m for m in (e["mirror"], e.get("mirror_attention")) if m]
        nan = float("nan")

        def row(label: str, key: str, bold: bool = False) -> str:
            cells = [pct(m.get(key, nan)) for m in ms]
            return f"| {label} | " + " | ".join(f"**{c}**" if bold else c for c in cells) + " |"

        guided = f", guidance on the first {e['guided_steps']}" if e.get("guided_steps") is not None else ""
        out += [f"{e['seeds']} seeds per statistic, {e['frames']} frames, {e['sampler']} {e['steps']} steps"
                f"{guided}.", "",
                "| mirror edit (`mirror=\"all\"`) on one-handed prompts | "
                + " | ".join(f"`mirror_method=\"{m.get('method', 'attention')}\"`" for m in ms) + " |",
                "|---|" + "---|" * len(ms),
                row("left/right classification flipped (goal ≥ 80%)", "flip_rate", True),
                row("… among sources generated on the prompted side", "flip_rate_given_source_correct"),
                row("content class kept (mirrored)", "content_kept", True),
                row("source on the prompted side", "source_side_correct"),
                row("edit on the mirrored side of the prompt", "edit_side_is_mirrored_prompt"),
                row("raised wrist flipped (geometry, no classifier)", "wrist_flip_rate"),
                "", "| style word swap | mode | source has its style | style changed | edit has target style | "
                "content class kept | edit has the prompt's content |", "|---|---|---|---|---|---|---|"]
        for sw in e["style_swap"]:
            out.append(f"| {sw['source']} → {sw['edit']} | {sw['mode']} | {pct(sw['source_is_source_style'])} "
                       f"({sw['source_style']}) | {pct(sw['style_changed'])} | {pct(sw['edit_is_target_style'])} "
                       f"({sw['target_style']}) | {pct(sw['content_kept'])} | {pct(sw['edit_is_prompt_content'])} |")
        out += ["", "| re-weighting (scales " + ", ".join(f"{x:g}" for x in e["reweight"][0]["scales"]) + ") | "
                "quantity | Spearman ρ (mean over seeds) | ρ of the means | seeds in the expected direction | "
                "mean quantity per scale |", "|---|---|---|---|---|---|"] if e["reweight"] else []
        for r in e["reweight"]:
            sign = "+" if r["expected_sign"] > 0 else "−"
            out.append(f"| '{r['word']}' in \"{r['prompt']}\" | {r['quantity']} (expected {sign}) "
                       f"| **{r['spearman_mean']:+.2f}** | {r['spearman_of_means']:+.2f} | "
                       f"{pct(r['fraction_expected_direction'])} | "
                       + " / ".join(f"{v:.2f}" for v in r["mean_by_scale"]) + " |")
    return "\n".join(out)


def to_jsonable(x):
    if isinstance(x, dict):
        return {k: to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def classifier_summary(clf: MotionClassifier, folder: Path) -> dict:
    cfg = json.loads((Path(folder) / "config.json").read_text())
    t = cfg.get("training", {}).get("test", {})
    return {"path": str(folder), "contents": clf.config.contents, "styles": clf.config.styles,
            "test_ceiling": {k: t.get(k) for k in ("content_acc", "style_acc", "style_acc_within_dataset", "lr_acc")}}
