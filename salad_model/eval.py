"""Evaluation of a SALAD model trained on Bandai-Namco: ``python -m salad_model.eval [metrics|...]``.

Subcommands (``metrics`` is the default)::

    python -m salad_model.eval train-classifier [--data data_cache/bandai] [--out salad_model/assets/classifier]
    python -m salad_model.eval [metrics] --model demo [--limit 150] [--steps 50] [--sampler ddim|dpm++]
                                [--edits] [--edit-seeds 20] [--out report.json]
    python -m salad_model.eval vae --run runs/demo          # VAE reconstruction only, from a training checkpoint
    python -m salad_model.eval plots --run runs/demo [--report report.json] [--img docs/img]
    python -m salad_model.eval real --model demo [--limit 24]   # issue #7: real clips through inversion
    python -m salad_model.eval shots --model demo [--timelines 30]  # issue #13: timelines, joins, parts, cost

What ``metrics`` measures (issue #3): for a seeded sample of test clips, one motion per clip generated
from one of the clip's *held-out* captions at the clip's length; the shipped classifier
(:mod:`salad_model.classifier`) then gives content / style / left-right accuracy against the clip's
labels, next to the same classifier's accuracy on the real clips (the ceiling); a Fréchet distance and
the diversity on classifier embeddings; and VAE reconstruction MPJPE on all test clips.
``--edits`` adds the editing statistics of issue #4 (mirror, style word swap, re-weighting).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from .classifier import (  # noqa: E402
    CLASSIFIER_DIR,
    MotionClassifier,
    canonical_style,
    center_crop,
    classification_report,
    generation_frames,
    load_classifier,
    load_split,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / "data_cache" / "bandai"
DEFAULT_IMG = REPO_ROOT / "docs" / "img"
REWEIGHT_SCALES = (-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0)

# ------------------------------------------------------------------------------------------------
# Metric functions (pure numpy, tested on synthetic data with known answers)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D] (FID formula).

    tr sqrt(Σa Σb) is computed as tr sqrt(Σa^½ Σb Σa^½) with symmetric eigendecompositions: stable for
    the rank-deficient covariances that a few hundred samples give, no complex round-off.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    ra = _sqrt_psd(ca)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(ra @ cb @ ra), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * cross)


def diversity(feats: np.ndarray, n_pairs: int = 300, seed: int = 0) -> float:
    """Mean distance between random pairs of distinct samples (T2M protocol: 300 pairs)."""
    feats = np.asarray(feats, np.float64)
    n = len(feats)
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n  # j ≠ i
    return float(np.linalg.norm(feats[i] - feats[j], axis=-1).mean())


def root_aligned_mpjpe(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame mean joint error [T] after subtracting each frame's root (joint 0) position."""
    p = pred - pred[..., :1, :]
    t = target - target[..., :1, :]
    return np.linalg.norm(p - t, axis=-1).mean(-1)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); nan when either side is constant."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def root_speed(joints: np.ndarray, fps: float = 20.0) -> float:
    """Mean horizontal root speed (m/s)."""
    d = np.diff(joints[:, 0, [0, 2]], axis=0)
    return float(np.linalg.norm(d, axis=-1).mean() * fps) if len(d) else 0.0


def wrist_height(joints: np.ndarray, side: str = "left") -> float:
    """Peak wrist height above the floor (m): the 95th percentile over time, robust to single-frame spikes."""
    j = 20 if side == "left" else 21
    return float(np.percentile(joints[:, j, 1], 95))


def geometric_side(joints: np.ndarray) -> float:
    """Classifier-free side cue (m): the 95th plus the 5th percentile of left − right wrist height.

    Raising the left hand pushes the 95th percentile up while the 5th stays near 0 (and vice versa for
    the right), so the sign says which hand went up; symmetric motions score near 0.
    """
    d = joints[:, 20, 1] - joints[:, 21, 1]
    return float(np.percentile(d, 95) + np.percentile(d, 5))


# ------------------------------------------------------------------------------------------------
# VAE reconstruction


@torch.no_grad()
def vae_reconstruction(vae, mean: torch.Tensor, std: torch.Tensor, clips: list[np.ndarray]) -> dict:
    """Root-aligned MPJPE of mean-latent reconstructions (features → joints on both sides), metres.

    Mean over joints and frames of all clips (frame-weighted), plus the per-clip mean; clips are cut
    to a multiple of 4 frames (the VAE's unit).
    """
    from .features import recover_from_ric

    vae.eval()
    mean, std = mean.float().cpu(), std.float().cpu()
    errs, per_clip = [], []
    for f in clips:
        t = (len(f) // 4) * 4
        if t < 4:
            continue
        x = (torch.from_numpy(np.array(f[:t], dtype=np.float32)) - mean) / std
        _, mu, _ = vae.encode(x[None], sample=False)
        rec = vae.decode(mu)[0] * std + mean
        nj = vae.skeleton.num_joints
        e = root_aligned_mpjpe(recover_from_ric(rec, nj).numpy(), recover_from_ric(x * std + mean, nj).numpy())
        errs.append(e)
        per_clip.append(float(e.mean()))
    allf = np.concatenate(errs) if errs else np.zeros(0)
    return {"clips": len(per_clip), "frames": int(len(allf)),
            "mpjpe_m": float(allf.mean()) if len(allf) else float("nan"),
            "mpjpe_cm": float(allf.mean() * 100) if len(allf) else float("nan"),
            "mpjpe_clip_mean_cm": float(np.mean(per_clip) * 100) if per_clip else float("nan"),
            "mpjpe_p90_frame_cm": float(np.percentile(allf, 90) * 100) if len(allf) else float("nan")}


@torch.no_grad()
def vae_roundtrip(vae, mean: torch.Tensor, std: torch.Tensor, clips: list[np.ndarray]) -> list[np.ndarray]:
    """De-normalised features after encode (mean latent) → decode; clips cut to ×4 frames (min 4)."""
    vae.eval()
    mean, std = mean.float().cpu(), std.float().cpu()
    out = []
    for f in clips:
        t = max((len(f) // 4) * 4, 4)
        x = (torch.from_numpy(np.array(f[:t], dtype=np.float32)) - mean) / std
        if len(x) < t:  # shorter than one latent frame: repeat the last frame
            x = torch.cat([x, x[-1:].expand(t - len(x), -1)])
        _, mu, _ = vae.encode(x[None], sample=False)
        out.append((vae.decode(mu)[0] * std + mean).numpy())
    return out


# ------------------------------------------------------------------------------------------------
# Generated-motion metrics


def sample_test_clips(data_dir: Path, limit: int | None, seed: int, split: str = "test") -> list:
    """A seeded sample of test clips (all when ``limit`` is None or larger than the split)."""
    test = load_split(data_dir, split)
    if limit is None or limit >= len(test):
        return test
    rng = random.Random(seed)
    return [test[i] for i in sorted(rng.sample(range(len(test)), limit))]


def generate_for_clips(pipe, clips: list, captions: dict, steps: int, sampler: str, batch: int, seed: int,
                       guidance: float | None = None, log=print) -> tuple[list, list[dict]]:
    """One motion per clip from a held-out caption (seeded choice) at the clip's length; batched by length."""
    rng = random.Random(seed)
    jobs = []
    for k, c in enumerate(clips):
        held = captions.get(c.name, {}).get("heldout") or captions.get(c.name, {}).get("train") or [c.content]
        jobs.append({"name": c.name, "caption": rng.choice(held), "seed": seed * 100_000 + k,
                     "frames": generation_frames(len(c.features) + 1, pipe.min_frames, pipe.max_frames)})
    order = sorted(range(len(jobs)), key=lambda i: jobs[i]["frames"])
    motions: list = [None] * len(jobs)
    t0 = time.time()
    for b in range(0, len(order), batch):
        idx = order[b:b + batch]
        out = pipe.generate_batch([jobs[i]["caption"] for i in idx], frames=[jobs[i]["frames"] for i in idx],
                                  seeds=[jobs[i]["seed"] for i in idx], guidance=guidance, steps=steps,
                                  scheduler=sampler)
        for i, m in zip(idx, out, strict=True):
            motions[i] = m
        log(f"  generated {min(b + batch, len(order))}/{len(order)} ({time.time() - t0:.0f}s)")
    return motions, jobs


def generated_metrics(pipe, clf: MotionClassifier, data_dir: Path, limit: int | None = 150, steps: int = 50,
                      sampler: str = "ddim", batch: int = 16, seed: int = 0, guidance: float | None = None,
                      log=print, split: str = "test") -> dict:
    """Issue #3 metrics on motions generated from held-out captions of (a sample of) the test clips.

    ``split="val"`` measures on validation clips instead: that is where settings such as the guidance
    scale are chosen, so the test numbers stay untouched by the choice.
    """
    data_dir = Path(data_dir)
    captions = json.loads((data_dir / "captions.json").read_text())
    all_test = load_split(data_dir, split)
    clips = sample_test_clips(data_dir, limit, seed, split)
    t0 = time.time()
    motions, jobs = generate_for_clips(pipe, clips, captions, steps, sampler, batch, seed, guidance, log)
    gen_seconds = time.time() - t0
    max_f = pipe.max_frames
    pred_gen = clf.predict([m.features for m in motions])
    real_crops = [center_crop(c.features, generation_frames(len(c.features) + 1, pipe.min_frames, max_f))
                  for c in clips]
    pred_real = clf.predict(real_crops)
    all_crops = [center_crop(c.features, generation_frames(len(c.features) + 1, pipe.min_frames, max_f))
                 for c in all_test]
    pred_all = clf.predict(all_crops)
    labels = ([c.content for c in clips], [c.style for c in clips], [c.dataset for c in clips])
    gen = classification_report(clf, pred_gen, *labels)
    real = classification_report(clf, pred_real, *labels)
    real_all = classification_report(clf, pred_all, [c.content for c in all_test], [c.style for c in all_test],
                                     [c.dataset for c in all_test])
    # Diagnostic: the same real crops after a VAE round trip (what the decoder alone costs the evaluator).
    pred_rec = clf.predict(vae_roundtrip(pipe.vae, pipe.mean, pipe.std, real_crops))
    rec = classification_report(clf, pred_rec, *labels)
    # Noise floor of the Fréchet distance at this sample size: real validation clips vs real test clips.
    val = load_split(data_dir, "val" if split == "test" else "test")
    rng = random.Random(seed + 1)
    val = [val[i] for i in sorted(rng.sample(range(len(val)), min(len(clips), len(val))))]
    pred_val = clf.predict([center_crop(c.features, generation_frames(len(c.features) + 1, pipe.min_frames, max_f))
                            for c in val])
    emb_gen, emb_test = pred_gen["embedding"], pred_all["embedding"]
    cs = clf.config
    per_sample = []
    for j, m, c, pc, ps, sd in zip(jobs, motions, clips, pred_gen["content_prob"], pred_gen["style_prob"],
                                   clf.side_scores(pred_gen["content_prob"]), strict=True):
        per_sample.append({**j, "content": c.content, "style": c.style, "dataset": c.dataset,
                           "pred_content": cs.contents[int(pc.argmax())], "pred_style": cs.styles[int(ps.argmax())],
                           "side_score": round(float(sd), 4),
                           "wrist_side_m": round(geometric_side(m.joints), 4)})
    ratio = gen["content_acc"] / real["content_acc"] if real["content_acc"] else float("nan")
    return {
        "n": len(clips), "split": split, "steps": steps, "sampler": sampler, "seed": seed,
        "guidance": pipe.default_guidance if guidance is None else guidance,
        "generation_seconds": round(gen_seconds, 1),
        "generated": gen, "real_same_clips": real, "real_test_all": real_all, "vae_roundtrip_same_clips": rec,
        "content_ratio_to_ceiling": ratio,
        "style_ratio_to_ceiling": gen["style_acc"] / real["style_acc"] if real["style_acc"] else float("nan"),
        "fid": frechet_distance(emb_gen, emb_test) if len(emb_gen) > 1 else float("nan"),
        "fid_real_val_vs_test": frechet_distance(pred_val["embedding"], emb_test) if len(val) > 1 else float("nan"),
        "diversity_generated": diversity(emb_gen, seed=seed),
        "diversity_real_test": diversity(emb_test, seed=seed),
        "samples": per_sample,
    }


# ------------------------------------------------------------------------------------------------
# Editing statistics (issue #4)

MIRROR_PROMPTS = ("A person waves the left hand.", "A person waves the right hand.",
                  "A person raises the left hand.", "A person raises the right hand.")
STYLE_SWAPS = (  # (source, edit, source style, target style, content): training-caption wording, dataset-2 styles
    ("An elderly person walks forward.", "An energetic person walks forward.", "old", "active", "walk"),
    ("A tired person raises both hands.", "A young person raises both hands.", "tired", "youthful",
     "raise-up-both-hands"),
    ("A masculine person waves both hands.", "A feminine person waves both hands.", "masculinity", "feminine",
     "wave-both-hands"),
)
REWEIGHTS = (  # (prompt, word, quantity, expected sign of the Spearman correlation with the scale)
    ("A person runs very fast.", "fast", "root_speed", +1),
    ("An elderly person walks forward.", "elderly", "root_speed", -1),
    ("A person waves the left hand.", "left hand", "wrist_side", +1),
    ("A person raises the left hand.", "raises", "left_wrist_height", +1),
)


def _quantity(name: str, joints: np.ndarray, fps: float) -> float:
    if name == "root_speed":
        return root_speed(joints, fps)
    if name == "left_wrist_height":
        return wrist_height(joints, "left")
    if name == "wrist_side":
        return geometric_side(joints)
    raise ValueError(name)


def _classify_one(clf: MotionClassifier, feats: list[np.ndarray]) -> dict:
    p = clf.predict(feats)
    return {"content": [clf.config.contents[i] for i in p["content_prob"].argmax(-1)],
            "style": [clf.config.styles[i] for i in p["style_prob"].argmax(-1)],
            "side": clf.side_scores(p["content_prob"]).tolist()}


def mirror_statistics(pipe, clf: MotionClassifier, seeds: int, frames: int, steps: int, sampler: str,
                      method: str) -> dict:
    """Mirror edits (``mirror="all"``) of one-handed prompts, cycling over four prompts; flips and content kept.

    A flip is a change of the classifier's left/right decision between source and edit; content is kept
    when the edit's content class is the mirrored source class (wave-left-hand → wave-right-hand).
    """
    from .data.captions import mirror_content
    from .motion_process import mirror_features

    rows = []
    for s in range(seeds):
        prompt = MIRROR_PROMPTS[s % len(MIRROR_PROMPTS)]
        edit, src = pipe.edit(prompt, frames=frames, seed=s, mirror="all", mirror_method=method, steps=steps,
                              scheduler=sampler, return_source=True)
        c = _classify_one(clf, [src.features, edit.features, mirror_features(src.features)])
        rows.append({"prompt": prompt, "seed": s, "side_source": c["side"][0], "side_edit": c["side"][1],
                     "side_exact_mirror": c["side"][2], "wrist_source": geometric_side(src.joints),
                     "wrist_edit": geometric_side(edit.joints), "content_source": c["content"][0],
                     "content_edit": c["content"][1]})
    prompt_left = np.array(["left" in r["prompt"] for r in rows])
    ss = np.array([r["side_source"] > 0 for r in rows])
    se = np.array([r["side_edit"] > 0 for r in rows])
    sm = np.array([r["side_exact_mirror"] > 0 for r in rows])
    ws = np.array([r["wrist_source"] > 0 for r in rows])
    we = np.array([r["wrist_edit"] > 0 for r in rows])
    return {"method": method, "n": len(rows), "flip_rate": float(np.mean(ss != se)),
            "source_side_correct": float(np.mean(ss == prompt_left)),
            "edit_side_is_mirrored_prompt": float(np.mean(se != prompt_left)),
            "flip_rate_given_source_correct": float(np.mean((ss != se)[ss == prompt_left]))
            if (ss == prompt_left).any() else float("nan"),
            "content_kept": float(np.mean([r["content_edit"] == mirror_content(r["content_source"]) for r in rows])),
            "exact_feature_mirror_flip_rate": float(np.mean(ss != sm)),
            "wrist_flip_rate": float(np.mean(ws != we)), "rows": rows}


def edit_statistics(pipe, clf: MotionClassifier, seeds: int = 20, frames: int = 100, steps: int = 50,
                    sampler: str = "ddim", scales: tuple[float, ...] = REWEIGHT_SCALES, log=print) -> dict:
    """Mirror flips, style swaps and re-weighting monotonicity, each over ``seeds`` seeds.

    Mirror: :func:`mirror_statistics` for the default geometric mirror and for the paper's attention mirror.
    """
    fps = pipe.fps
    t0 = time.time()
    frames = pipe.check_frames(frames)
    mirror = mirror_statistics(pipe, clf, seeds, frames, steps, sampler, "geometric")
    mirror_attn = mirror_statistics(pipe, clf, seeds, frames, steps, sampler, "attention")
    log(f"  mirror: flip {mirror['flip_rate']:.2f} geometric, {mirror_attn['flip_rate']:.2f} attention "
        f"({time.time() - t0:.0f}s)")
    # --- style swap
    swaps = []
    for src_p, edit_p, src_style, target, content in STYLE_SWAPS:
        recs = []
        for s in range(seeds):
            edit, src = pipe.edit(src_p, frames=frames, seed=s, edit_prompt=edit_p, steps=steps, scheduler=sampler,
                                  return_source=True)
            c = _classify_one(clf, [src.features, edit.features])
            recs.append({"seed": s, "style_source": c["style"][0], "style_edit": c["style"][1],
                         "content_source": c["content"][0], "content_edit": c["content"][1],
                         "mode": edit.meta["edits"][0]["mode"]})
        swaps.append({
            "source": src_p, "edit": edit_p, "source_style": src_style, "target_style": target, "content": content,
            "n": len(recs), "mode": recs[0]["mode"] if recs else "",
            "source_is_source_style": float(np.mean([r["style_source"] == canonical_style(src_style) for r in recs])),
            "style_changed": float(np.mean([r["style_source"] != r["style_edit"] for r in recs])),
            "edit_is_target_style": float(np.mean([r["style_edit"] == canonical_style(target) for r in recs])),
            "content_kept": float(np.mean([r["content_source"] == r["content_edit"] for r in recs])),
            "edit_is_prompt_content": float(np.mean([r["content_edit"] == content for r in recs])),
            "source_is_prompt_content": float(np.mean([r["content_source"] == content for r in recs])),
            "rows": recs})
        log(f"  style swap {src_p!r} → {edit_p!r}: changed {swaps[-1]['style_changed']:.2f}, "
            f"content kept {swaps[-1]['content_kept']:.2f} ({time.time() - t0:.0f}s)")
    # --- re-weighting
    rew = []
    for prompt, word, qty, sign in REWEIGHTS:
        values = np.zeros((seeds, len(scales)))
        for s in range(seeds):
            for k, sc in enumerate(scales):
                m = pipe.edit(prompt, frames=frames, seed=s, word=word, scale=float(sc), steps=steps,
                              scheduler=sampler)
                values[s, k] = _quantity(qty, m.joints, fps)
        rho = np.array([spearman(np.array(scales), v) for v in values])
        ok = rho[np.isfinite(rho)]
        rew.append({"prompt": prompt, "word": word, "quantity": qty, "expected_sign": sign, "scales": list(scales),
                    "n": seeds, "mean_by_scale": values.mean(0).tolist(), "std_by_scale": values.std(0).tolist(),
                    "spearman_mean": float(ok.mean()) if len(ok) else float("nan"),
                    "spearman_median": float(np.median(ok)) if len(ok) else float("nan"),
                    "spearman_pooled": spearman(np.tile(scales, seeds), values.ravel()),
                    "spearman_of_means": spearman(np.array(scales), values.mean(0)),
                    "fraction_expected_direction": float(np.mean(np.sign(ok) == sign)) if len(ok) else float("nan"),
                    "values": values.round(5).tolist()})
        log(f"  reweight {word!r} in {prompt!r}: mean rho {rew[-1]['spearman_mean']:+.2f} "
            f"({time.time() - t0:.0f}s)")
    return {"seeds": seeds, "frames": frames, "steps": steps, "sampler": sampler, "seconds": round(time.time() - t0, 1),
            "mirror": mirror, "mirror_attention": mirror_attn, "style_swap": swaps, "reweight": rew}


# ------------------------------------------------------------------------------------------------
# Report printing


def _pct(x: float) -> str:
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
            f"{k} {_pct(vc['real'][k])} → {_pct(vc['vae_roundtrip'][k])}" for k in vc["real"]))
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
            lines.append(f"{label:<28}{_pct(gen[key]):>12}{_pct(real[key]):>14}{_pct(allr[key]):>17}"
                         f"{_pct(rec.get(key, float('nan'))):>16}")
        lines += [f"{'content / ceiling':<28}{g['content_ratio_to_ceiling']:>12.2f}",
                  f"{'style / ceiling':<28}{g['style_ratio_to_ceiling']:>12.2f}",
                  f"{'Fréchet distance (clf)':<28}{g['fid']:>12.3f}{'':>14}{g['fid_real_val_vs_test']:>17.3f}"
                  "  (real: val vs test)",
                  f"{'diversity':<28}{g['diversity_generated']:>12.3f}{'':>14}{g['diversity_real_test']:>17.3f}"]
    e = rep.get("edits")
    if e:
        lines.append(f"editing ({e['seeds']} seeds, {e['frames']} frames, {e['sampler']} {e['steps']} steps):")
        for m in (e["mirror"], e.get("mirror_attention")):
            if m:
                lines.append(f"  mirror ({m.get('method', 'attention')}): left/right flip {_pct(m['flip_rate'])} "
                             f"(given a correct source {_pct(m['flip_rate_given_source_correct'])}); content kept "
                             f"{_pct(m.get('content_kept', float('nan')))}; wrist-height flip "
                             f"{_pct(m['wrist_flip_rate'])}")
        for s in e["style_swap"]:
            lines.append(f"  style swap '{s['source']}' → '{s['edit']}' ({s['mode']}): source is {s['source_style']} "
                         f"{_pct(s['source_is_source_style'])}, style changed {_pct(s['style_changed'])}, edit is "
                         f"{s['target_style']} {_pct(s['edit_is_target_style'])}, content kept "
                         f"{_pct(s['content_kept'])}, edit is {s['content']} {_pct(s['edit_is_prompt_content'])}")
        for r in e["reweight"]:
            means = " ".join(f"{v:.3f}" for v in r["mean_by_scale"])
            lines.append(f"  reweight '{r['word']}' in '{r['prompt']}' → {r['quantity']}: Spearman mean "
                         f"{r['spearman_mean']:+.2f}, of means {r['spearman_of_means']:+.2f}, expected sign "
                         f"{r['expected_sign']:+d} in {_pct(r['fraction_expected_direction'])} of seeds; "
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
            out.append(f"| {label} | **{_pct(gen[key])}** | {_pct(real[key])} | {_pct(allr[key])} | "
                       f"{_pct(rec.get(key, float('nan')))} |")
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
            cells = [_pct(m.get(key, nan)) for m in ms]
            return f"| {label} | " + " | ".join(f"**{c}**" if bold else c for c in cells) + " |"

        out += [f"{e['seeds']} seeds per statistic, {e['frames']} frames, {e['sampler']} {e['steps']} steps.", "",
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
            out.append(f"| {sw['source']} → {sw['edit']} | {sw['mode']} | {_pct(sw['source_is_source_style'])} "
                       f"({sw['source_style']}) | {_pct(sw['style_changed'])} | {_pct(sw['edit_is_target_style'])} "
                       f"({sw['target_style']}) | {_pct(sw['content_kept'])} | {_pct(sw['edit_is_prompt_content'])} |")
        out += ["", "| re-weighting (scales " + ", ".join(f"{x:g}" for x in e["reweight"][0]["scales"]) + ") | "
                "quantity | Spearman ρ (mean over seeds) | ρ of the means | seeds in the expected direction | "
                "mean quantity per scale |", "|---|---|---|---|---|---|"] if e["reweight"] else []
        for r in e["reweight"]:
            sign = "+" if r["expected_sign"] > 0 else "−"
            out.append(f"| '{r['word']}' in \"{r['prompt']}\" | {r['quantity']} (expected {sign}) "
                       f"| **{r['spearman_mean']:+.2f}** | {r['spearman_of_means']:+.2f} | "
                       f"{_pct(r['fraction_expected_direction'])} | "
                       + " / ".join(f"{v:.2f}" for v in r["mean_by_scale"]) + " |")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------
# Plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    plt = _plt()
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
    plt = _plt()
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
                axes[0].text(x_, (0 if np.isnan(v) else v) + 0.02, _pct(v), ha="center", fontsize=7)
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
    plt = _plt()
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


# ------------------------------------------------------------------------------------------------
# CLI


def _to_jsonable(x):
    if isinstance(x, dict):
        return {k: _to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_jsonable(v) for v in x]
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


def run_metrics(a: argparse.Namespace) -> dict:
    from .pipeline import SaladPipeline

    clf_dir = Path(a.classifier) if a.classifier else CLASSIFIER_DIR
    clf = load_classifier(clf_dir)
    pipe = SaladPipeline.from_pretrained(a.model, device=a.device)
    info = pipe.info
    rep: dict = {"model": {"name": pipe.name, "source": str(info.get("source", a.model)),
                           "trained_iterations": info.get("trained_iterations")},
                 "data": str(a.data), "classifier": classifier_summary(clf, clf_dir),
                 "command": "python -m salad_model.eval " + " ".join(sys.argv[1:])}
    if a.label:
        rep["label"] = a.label
    print(f"model {pipe.name} ({info.get('trained_iterations')}), classifier {clf_dir}", flush=True)
    test = load_split(Path(a.data), "test")
    rep["vae"] = vae_reconstruction(pipe.vae, pipe.mean, pipe.std,
                                    [c.features for c in (test if a.vae_limit is None else test[: a.vae_limit])])
    print(f"VAE MPJPE {rep['vae']['mpjpe_cm']:.2f} cm", flush=True)
    if not a.no_generation:
        rep["generation"] = generated_metrics(pipe, clf, Path(a.data), a.limit, a.steps, a.sampler, a.batch,
                                              a.seed, a.guidance, log=lambda s: print(s, flush=True), split=a.split)
    if a.edits:
        rep["edits"] = edit_statistics(pipe, clf, a.edit_seeds, a.edit_frames, a.edit_steps or a.steps, a.sampler,
                                       log=lambda s: print(s, flush=True))
    return rep


def run_vae(a: argparse.Namespace) -> dict:
    """VAE reconstruction straight from a training checkpoint (no denoiser needed)."""
    from .train import load_config, load_stage

    cfg = load_config(a.config)
    vae = load_stage(cfg, a.run, "vae")
    it = torch.load(Path(a.run) / "vae" / "latest.pt", map_location="cpu", weights_only=False)["iter"]
    mean = torch.from_numpy(np.load(Path(a.data) / "mean.npy"))
    std = torch.from_numpy(np.load(Path(a.data) / "std.npy"))
    test = load_split(Path(a.data), "test")
    r = vae_reconstruction(vae, mean, std, [c.features for c in test])
    rep: dict = {"vae": {**r, "checkpoint": str(Path(a.run) / "vae" / "latest.pt"), "iteration": it}}
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


def run_real(a: argparse.Namespace) -> int:
    from .eval_real import format_real_markdown, real_statistics
    from .pipeline import SaladPipeline

    clf = load_classifier(Path(a.classifier) if a.classifier else CLASSIFIER_DIR)
    pipe = SaladPipeline.from_pretrained(a.model, device=a.device)
    rep = {"model": {"name": pipe.name, "trained_iterations": pipe.info.get("trained_iterations")},
           "command": "python -m salad_model.eval " + " ".join(sys.argv[1:]),
           "real": real_statistics(pipe, clf, a.data, a.limit, a.steps, a.null_text_iters, a.seed,
                                   log=lambda s: print(s, flush=True), split=a.split,
                                   null_text_limit=a.null_text_limit)}
    md = format_real_markdown(rep["real"])
    print(md)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(_to_jsonable(rep), indent=1) + "\n")
    if a.markdown:
        a.markdown.write_text(md + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["convert-glove"] or any(x == "--benchmark" or x.startswith("--benchmark=") for x in argv):
        from .t2m_eval.__main__ import main as t2m_eval_main  # HumanML3D / KIT-ML benchmark (issue #8)

        return t2m_eval_main(argv)
    commands = ("metrics", "train-classifier", "vae", "plots", "real", "shots")
    if not argv or argv[0] not in commands + ("-h", "--help"):
        argv = ["metrics"] + argv
    ap = argparse.ArgumentParser(prog="python -m salad_model.eval", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("metrics", help="classifier-based metrics of generated motion (default)")
    m.add_argument("--model", default="demo", help="demo, or a model folder (ours or official)")
    m.add_argument("--data", type=Path, default=DEFAULT_DATA)
    m.add_argument("--classifier", type=Path, default=None, help=f"classifier folder (default {CLASSIFIER_DIR})")
    m.add_argument("--limit", type=int, default=150, help="test clips to generate for (0 = all)")
    m.add_argument("--steps", type=int, default=50)
    m.add_argument("--sampler", default="ddim", choices=["ddim", "dpm++"])
    m.add_argument("--guidance", type=float, default=None)
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
    from .eval_shots import add_arguments as shots_arguments

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
        print(f"test (ceiling): content {_pct(t['content_acc'])}, style {_pct(t['style_acc'])} "
              f"(own dataset {_pct(t['style_acc_within_dataset'])}), left/right {_pct(t['lr_acc'])}; saved to {a.out}")
        return 0
    torch.set_num_threads(a.threads or min(2, os.cpu_count() or 1))
    if a.cmd == "real":
        return run_real(a)
    if a.cmd == "shots":
        from .eval_shots import run as run_shots

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
        a.out.write_text(json.dumps(_to_jsonable(rep), indent=1) + "\n")
        print(f"wrote {a.out}")
    if getattr(a, "markdown", None):
        a.markdown.write_text(format_markdown(rep) + "\n")
        print(f"wrote {a.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
