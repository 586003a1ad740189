"""Issue #3 metrics of generated motion: one motion per test clip from a held-out caption, classified."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from .classifier import MotionClassifier, center_crop, classification_report, generation_frames, load_split
from .metrics import diversity, frechet_distance, geometric_side, vae_roundtrip


def sample_test_clips(data_dir: Path, limit: int | None, seed: int, split: str = "test") -> list:
    """A seeded sample of test clips (all when ``limit`` is None or larger than the split)."""
    test = load_split(data_dir, split)
    if limit is None or limit >= len(test):
        return test
    rng = random.Random(seed)
    return [test[i] for i in sorted(rng.sample(range(len(test)), limit))]


def generate_for_clips(pipe, clips: list, captions: dict, steps: int, sampler: str, batch: int, seed: int,
                       guidance: float | None = None, log=print, guided_steps: int | None = None,
                       guider: dict | str | None = None) -> tuple[list, list[dict]]:
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
                                  scheduler=sampler, guided_steps=guided_steps, guider=guider)
        for i, m in zip(idx, out, strict=True):
            motions[i] = m
        log(f"  generated {min(b + batch, len(order))}/{len(order)} ({time.time() - t0:.0f}s)")
    return motions, jobs


def generated_metrics(pipe, clf: MotionClassifier, data_dir: Path, limit: int | None = 150, steps: int = 50,
                      sampler: str = "ddim", batch: int = 16, seed: int = 0, guidance: float | None = None,
                      log=print, split: str = "test", guided_steps: int | None = None,
                      guider: dict | str | None = None) -> dict:
    """Issue #3 metrics on motions generated from held-out captions of (a sample of) the test clips.

    ``split="val"`` measures on validation clips instead: that is where settings such as the guidance
    scale are chosen, so the test numbers stay untouched by the choice.
    """
    data_dir = Path(data_dir)
    captions = json.loads((data_dir / "captions.json").read_text())
    all_test = load_split(data_dir, split)
    clips = sample_test_clips(data_dir, limit, seed, split)
    t0 = time.time()
    motions, jobs = generate_for_clips(pipe, clips, captions, steps, sampler, batch, seed, guidance, log,
                                       guided_steps, guider)
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
        "guider": motions[0].meta.get("guider") if motions else None,
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
