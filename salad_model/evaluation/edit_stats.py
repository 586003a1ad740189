"""Issue #4 editing statistics of generated motion: mirror flips, style word swaps, re-weighting monotonicity."""

from __future__ import annotations

import time

import numpy as np

from .classifier import MotionClassifier, canonical_style
from .metrics import geometric_side, root_speed, spearman, wrist_height

REWEIGHT_SCALES = (-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
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
                      method: str, guided_steps: int | None = None) -> dict:
    """Mirror edits (``mirror="all"``) of one-handed prompts, cycling over four prompts; flips and content kept.

    A flip is a change of the classifier's left/right decision between source and edit; content is kept
    when the edit's content class is the mirrored source class (wave-left-hand → wave-right-hand).
    """
    from ..motion.motion_process import mirror_features
    from ..training.data.captions import mirror_content

    rows = []
    for s in range(seeds):
        prompt = MIRROR_PROMPTS[s % len(MIRROR_PROMPTS)]
        edit, src = pipe.edit(prompt, frames=frames, seed=s, mirror="all", mirror_method=method, steps=steps,
                              scheduler=sampler, return_source=True, guided_steps=guided_steps)
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
                    sampler: str = "ddim", scales: tuple[float, ...] = REWEIGHT_SCALES, log=print,
                    guided_steps: int | None = None) -> dict:
    """Mirror flips, style swaps and re-weighting monotonicity, each over ``seeds`` seeds.

    Mirror: :func:`mirror_statistics` for the default geometric mirror and for the paper's attention mirror.
    ``guided_steps``: the sources' guidance on the first that many steps only (fast mode; the edits are guided
    on every step, as :meth:`SaladPipeline.edit` samples them).
    """
    g = {} if guided_steps is None else {"guided_steps": guided_steps}
    fps = pipe.fps
    t0 = time.time()
    frames = pipe.check_frames(frames)
    mirror = mirror_statistics(pipe, clf, seeds, frames, steps, sampler, "geometric", guided_steps)
    mirror_attn = mirror_statistics(pipe, clf, seeds, frames, steps, sampler, "attention", guided_steps)
    log(f"  mirror: flip {mirror['flip_rate']:.2f} geometric, {mirror_attn['flip_rate']:.2f} attention "
        f"({time.time() - t0:.0f}s)")
    # --- style swap
    swaps = []
    for src_p, edit_p, src_style, target, content in STYLE_SWAPS:
        recs = []
        for s in range(seeds):
            edit, src = pipe.edit(src_p, frames=frames, seed=s, edit_prompt=edit_p, steps=steps, scheduler=sampler,
                                  return_source=True, **g)
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
                              scheduler=sampler, **g)
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
    return {"seeds": seeds, "frames": frames, "steps": steps, "sampler": sampler, **g,
            "seconds": round(time.time() - t0, 1),
            "mirror": mirror, "mirror_attention": mirror_attn, "style_swap": swaps, "reweight": rew}
