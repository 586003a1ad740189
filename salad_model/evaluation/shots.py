"""Issue #13's measurements: ``python -m salad_model.evaluation.eval shots --model demo [--timelines 30]``.

* **Seams** of three-segment timelines made of held-out captions of test clips: mean joint jerk and foot
  sliding during contact within ±0.5 s of each seam (where a window's generated frames meet its held
  context) against the same measures inside segments (all other frames); the largest per-frame root
  displacement at seams against the 99th percentile inside.
* **Content per segment**: the shipped classifier on each segment's frames (from where its prompt takes
  over to where the next one does) against the same captions generated as single clips of that length.
* **Continuation and in-between** of real test clips (encoded through the inversion path's VAE step):
  the same seam measures at the joins (both ends of an in-between).
* **Part regeneration**: generated walks whose arms are regenerated from held-out captions of arm actions;
  kept joints' root-aligned distance to the source, and whether the asked wrists rise above the neck
  (the geometric check), next to the rate on the sources themselves and on real clips of those actions.
* **Cost**: a 60 s timeline against windows × one window's generation time (medians, same process).

Pure metric functions are tested on synthetic motion with known answers
(tests/salad_model/evaluation/test_shot_metrics.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

SEAM_SECONDS = 0.5
NECK = 12
WRISTS = {"left": 20, "right": 21}
ARM_CONTENTS = {  # content label → wrists that must rise above the neck
    "raise-up-both-hands": ("left", "right"), "raise-up-left-hand": ("left",),
    "raise-up-right-hand": ("right",), "wave-both-hands": ("left", "right"),
    "wave-left-hand": ("left",), "wave-right-hand": ("right",),
}


# ------------------------------------------------------------------------------------------------
# Per-frame measures (numpy; joints [T, J, 3] metres, features [T, D] with contacts in the last 4 channels)


def jerk(joints: np.ndarray, fps: float = 20.0) -> np.ndarray:
    """Mean joint jerk magnitude (m/s³) per frame [T]; frame t gets the third difference centred on it."""
    j = np.asarray(joints, np.float64)
    out = np.full(len(j), np.nan)
    if len(j) >= 4:
        d3 = np.linalg.norm(np.diff(j, n=3, axis=0), axis=-1).mean(-1) * fps ** 3  # [T-3], centred at t+1.5
        out[1:-2] = d3  # assign to frame t+1 (the earlier centre frame)
    return out


def foot_sliding(joints: np.ndarray, contacts: np.ndarray, contact_joints: tuple[int, ...] = (7, 10, 8, 11),
                 fps: float = 20.0) -> np.ndarray:
    """Horizontal speed (m/s) of feet in contact, averaged over the feet in contact per frame [T] (nan: none)."""
    j = np.asarray(joints, np.float64)[:, list(contact_joints)][:, :, [0, 2]]
    v = np.zeros(j.shape[:2])
    v[:-1] = np.linalg.norm(np.diff(j, axis=0), axis=-1) * fps
    v[-1] = v[-2] if len(v) > 1 else 0.0
    c = np.asarray(contacts, bool)[: len(v)]
    n = c.sum(-1)
    return np.where(n > 0, (v * c).sum(-1) / np.maximum(n, 1), np.nan)


def root_displacement(joints: np.ndarray) -> np.ndarray:
    """Per-frame root displacement (m) [T]: |root(t) − root(t−1)|, frame 0 = nan."""
    r = np.asarray(joints, np.float64)[:, 0]
    return np.concatenate([[np.nan], np.linalg.norm(np.diff(r, axis=0), axis=-1)])


def seam_mask(frames: int, seams: list[int], fps: float = 20.0, seconds: float = SEAM_SECONDS) -> np.ndarray:
    """Frames within ±``seconds`` of any seam."""
    t = np.arange(frames)
    m = np.zeros(frames, bool)
    for s in seams:
        m |= np.abs(t - s) <= seconds * fps
    return m


def seam_measures(clips: list[tuple], fps: float = 20.0, contact_joints: tuple[int, ...] = (7, 10, 8, 11)) -> dict:
    """Pooled seam vs inside statistics over clips of (joints, contacts, seams[, eligible]).

    ``eligible`` (bool [T]) limits which frames away from seams count as "inside" (e.g. only generated
    frames, when the rest of a clip is real motion).
    """
    js, jm, ss, sm, rs, rm, per_seam = [], [], [], [], [], [], []
    for clip in clips:
        joints, contacts, seams = clip[:3]
        m = seam_mask(len(joints), seams, fps)
        inside = ~m if len(clip) < 4 else (~m & np.asarray(clip[3], bool))
        jk, sl, rd = jerk(joints, fps), foot_sliding(joints, contacts, contact_joints, fps), root_displacement(joints)
        js.append(jk[m])
        jm.append(jk[inside])
        ss.append(sl[m])
        sm.append(sl[inside])
        rs.append(rd[m])
        rm.append(rd[inside])
        for s in seams:
            one = seam_mask(len(joints), [s], fps)
            per_seam.append(float(np.nanmax(rd[one])) if np.isfinite(rd[one]).any() else float("nan"))
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
    js, jm, ss, sm, rs, rm = map(cat, (js, jm, ss, sm, rs, rm))
    p99 = float(np.nanpercentile(rm, 99))
    per_seam_arr = np.array(per_seam)
    out = {
        "seams": len(per_seam), "frames_at_seams": int(np.isfinite(js).sum()),
        "frames_inside": int(np.isfinite(jm).sum()),
        "jerk_seam": float(np.nanmean(js)), "jerk_inside": float(np.nanmean(jm)),
        "sliding_seam": float(np.nanmean(ss)), "sliding_inside": float(np.nanmean(sm)),
        "root_disp_seam_max": float(np.nanmax(rs)), "root_disp_inside_p99": p99,
        "root_disp_seam_pass_fraction": float(np.mean(per_seam_arr <= 1.5 * p99)) if len(per_seam) else float("nan"),
    }
    out["jerk_ratio"] = out["jerk_seam"] / out["jerk_inside"]
    out["sliding_ratio"] = out["sliding_seam"] / out["sliding_inside"]
    out["root_ratio"] = out["root_disp_seam_max"] / p99
    out["pass"] = bool(out["jerk_ratio"] <= 1.25 and out["sliding_ratio"] <= 1.25 and out["root_ratio"] <= 1.5)
    return out


def kept_joints(regenerated_parts: tuple[int, ...], skeleton) -> list[int]:
    """Joints that belong to no regenerated latent part (through the 22 → 12 → 7 part tables)."""
    from ..motion.skeleton import PART7_GROUPS

    touched: set[int] = set()
    for p in regenerated_parts:
        for g in PART7_GROUPS[p]:
            touched.update(skeleton.part12_groups[g])
    return [j for j in range(skeleton.num_joints) if j not in touched]


def kept_distance(out: np.ndarray, src: np.ndarray, joints: list[int]) -> float:
    """Mean root-aligned distance (m) of ``joints`` between two motions of equal length."""
    a = out[:, joints] - out[:, :1]
    b = src[:, joints] - src[:, :1]
    return float(np.linalg.norm(a - b, axis=-1).mean())


def wrists_raised(joints: np.ndarray, sides: tuple[str, ...]) -> bool:
    """The geometric check for raising / waving: each asked wrist's 95th-percentile height above the neck's."""
    j = np.asarray(joints)
    return all(np.percentile(j[:, WRISTS[s], 1] - j[:, NECK, 1], 95) > 0 for s in sides)


# ------------------------------------------------------------------------------------------------
# The evaluation


def _heldout(captions: dict, clip) -> list[str]:
    c = captions.get(clip.name, {})
    return c.get("heldout") or c.get("train") or [clip.content]


def _classify(clf, feats: list[np.ndarray]) -> list[str]:
    prob = clf.predict(feats)["content_prob"]
    return [clf.config.contents[int(i)] for i in prob.argmax(-1)]


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def shot_statistics(pipe, clf, data_dir: Path, timelines: int = 30, steps: int = 50, resample: int = 0,
                    context_seconds: float | None = None, seed: int = 0, joins: int | None = None,
                    parts: int | None = None, cost: bool = True, log=print, handover: str | None = None,
                    text_blend: str | None = None, draws: int = 1, singles_cache: Path | None = None,
                    overhang: int | None = None, order: list[int] | None = None, reweight: float | None = None,
                    free_guidance: bool = False, trim_last: bool | None = None) -> dict:
    """All of issue #13's measurements on one model (see the module docstring).

    ``timelines`` 0 skips the timelines (the parts can run in separate processes; each draws its own clips).
    ``draws``: each timeline composed with that many seeds (the content numerator's draws per segment);
    ``text_blend`` "START,RAMP" / "off" / None (the shipped one); ``singles_cache``: a JSON file of single-clip
    labels keyed by the model's weights sha256, steps, frames, seed and prompt (reused across runs of the same
    weights and classifier; other weights exported into the same folder get their own).
    ``order`` (a permutation of 0, 1, 2): each timeline's drawn segments composed in that order, each with the
    seed it has in the drawn order (a control: does a caption's rate follow its position or the caption?).
    ``reweight`` (a scale) and ``free_guidance``: the after-seam options of :class:`ShotDirector` (off: None, False);
    ``trim_last``: its option that ends the last segment's window with the shot (None: the director's default,
    on where it applies; the report's settings give what ran).
    """
    from ..runtime.shot_reweight import ContentReweight
    from ..runtime.shot_text_blend import DEFAULT_TEXT_BLEND, TextBlend
    from ..runtime.shots import (
        DEFAULT_CONTEXT_SECONDS,
        DEFAULT_HANDOVER,
        DEFAULT_OVERHANG_FRAMES,
        Segment,
        ShotDirector,
        derive_seed,
    )
    from .classifier import load_split

    data_dir = Path(data_dir)
    captions = json.loads((data_dir / "captions.json").read_text())
    test = [c for c in load_split(data_dir, "test") if len(c.features) >= 44]
    rng = random.Random(seed)
    fps = pipe.fps
    context_seconds = DEFAULT_CONTEXT_SECONDS if context_seconds is None else context_seconds
    handover = DEFAULT_HANDOVER if handover is None else handover
    blend = DEFAULT_TEXT_BLEND if text_blend is None else parse_text_blend(text_blend, TextBlend)
    overhang = DEFAULT_OVERHANG_FRAMES if overhang is None else overhang
    if order is not None and sorted(order) != [0, 1, 2]:
        raise SystemExit(f"--order must be a permutation of 0,1,2, got {order}")
    if order is not None and draws > 1:
        raise SystemExit("--order takes one draw per timeline")
    d = ShotDirector(pipe, context_seconds=context_seconds, resample=resample, steps=steps, handover=handover,
                     text_blend=blend, overhang=overhang, free_guidance=free_guidance, trim_last=trim_last,
                     reweight=None if reweight is None else ContentReweight(reweight))
    contact = tuple(pipe.vae.skeleton.contact_joints)
    rep: dict = {"settings": {"timelines": timelines, "steps": steps, "resample": resample,
                              "context_seconds": context_seconds, "seed": seed, "guidance": d.guidance,
                              "handover": handover, "draws": draws, "overhang_latent_frames": overhang,
                              "order": order, "reweight": reweight, "free_guidance": free_guidance,
                              "trim_last": d.trim_last,
                              "text_blend": None if blend is None else [blend.start, blend.ramp],
                              "decoder_reach_latent_frames": d.reach}}
    t_start = time.time()

    # -- timelines --------------------------------------------------------------------------------
    # Content: each segment of each draw against single clips of its caption as long as the frames classified
    # for the segment (from where its prompt takes over to where the next one does: the first segment's are
    # 0.8 s longer than its nominal length, the last one's 0.8 s shorter; the classifier sees as many frames
    # on both sides). The single clips are drawn twice per segment draw — with the segment's seed and with its
    # first window's seed (the noise seed the segment itself starts from) — and pooled: neither shares the
    # segment's noise rows (the window's new frames sit after its held context), so both are independent draws
    # of the same caption, and their mean halves the seed noise of the denominator (one seed alone moved it by
    # ±5 points).
    tl_clips, seg_true, seg_pred, singles, spans = [], [], [], [], []
    for k in range(timelines):
        picks = rng.sample(test, 3)
        segs = [Segment(rng.choice(_heldout(captions, c)), float(rng.choice((3, 4, 5)))) for c in picks]
        for r in range(draws):
            c_seed = seed * 1000 + k + DRAW_STRIDE * r
            if order is not None:
                picks, segs = [picks[i] for i in order], reorder_segments(segs, order, c_seed)
            m = d.compose(segs, seed=c_seed)
            sh = m.meta["shot"]
            tl_clips.append((m.joints, m.features[:, -4:] > 0.5, sh["seams"]))
            for c, s, sm in zip(picks, segs, sh["segments"], strict=True):
                seg_true.append(c.content)
                seg_pred.append(m.features[sm["content_start"]:sm["content_end"]])
                spans.append([sm["content_start"], sm["content_end"]])
                frames = sm["content_end"] - sm["content_start"]  # as many frames as the classifier sees there
                singles.append([(s.prompt, frames, sm["seed"]), (s.prompt, frames, derive_seed(sm["seed"], 0))])
        log(f"  timeline {k + 1}/{timelines} ({time.time() - t_start:.0f}s)")
    if timelines:
        labels = _single_labels(pipe, clf, [j for pair in singles for j in pair], steps, singles_cache,
                                model=_model_digest(pipe, clf) if singles_cache is not None else "")
        seg_labels = _classify(clf, seg_pred)
        seg_hits = np.array([p == t for p, t in zip(seg_labels, seg_true, strict=True)], float)
        single_hits = np.array([[labels[j] == t for j in pair]
                                for pair, t in zip(singles, seg_true, strict=True)], float)  # [N, 2]
        # [timeline, draw, position] and [timeline, draw, position, single seed]
        seg_hits, single_hits = seg_hits.reshape(timelines, draws, 3), single_hits.reshape(timelines, draws, 3, 2)
        acc, acc_single = float(seg_hits.mean()), float(single_hits.mean())
        by_seed = single_hits.mean((0, 1, 2))
        rep["timelines"] = {**seam_measures(tl_clips, fps, contact), "segments": len(seg_true),
                            "content_acc_segments": acc, "content_acc_single_clips": acc_single,
                            "content_ratio": acc / acc_single if acc_single else float("nan"),
                            "content_ratio_interval90": ratio_interval(seg_hits, single_hits),
                            "content_acc_by_position": seg_hits.mean((0, 1)).tolist(),
                            "content_acc_single_by_position": single_hits.mean((0, 1, 3)).tolist(),
                            # the two single-clip draws apart (segment seed, first window's seed)
                            "content_acc_single_clips_by_seed": by_seed.tolist(),
                            "content_ratio_by_single_seed": (acc / by_seed).tolist(),
                            "segment_hits": seg_hits.tolist(), "single_hits": single_hits.tolist(),
                            "segment_labels": seg_labels, "segment_contents": seg_true, "segment_spans": spans,
                            "single_clip_frames": [pair[0][1] for pair in singles]}
        rep["timelines"]["content_pass"] = bool(rep["timelines"]["content_ratio"] >= 0.9)
        log(f"timelines: {json.dumps({k: v for k, v in rep['timelines'].items() if 'hits' not in k}, default=float)}")

    # -- continuation and in-between of real clips -----------------------------------------------
    joins = timelines if joins is None else joins
    cont, inb = [], []
    for k in range(joins):
        a, b, cap = rng.sample(test, 3)
        prompt = rng.choice(_heldout(captions, cap))
        m = d.continue_motion(d.source(features=a.features), prompt, 4.0, seed=seed * 1000 + k)
        gen = np.arange(len(m.joints)) >= m.meta["shot"]["source_frames"]
        cont.append((m.joints, m.features[:, -4:] > 0.5, m.meta["shot"]["seams"], gen))
        m = d.inbetween(d.source(features=a.features), d.source(features=b.features), prompt, 3.0,
                        seed=seed * 1000 + k)
        g0, g1 = m.meta["shot"]["gap"]
        gen = (np.arange(len(m.joints)) >= g0) & (np.arange(len(m.joints)) < g1)
        inb.append((m.joints, m.features[:, -4:] > 0.5, m.meta["shot"]["seams"], gen))
        log(f"  joins {k + 1}/{joins} ({time.time() - t_start:.0f}s)")
    if joins:
        # inside = all frames away from the joins (real source + generated), and generated frames only
        rep["continuation"] = seam_measures([c[:3] for c in cont], fps, contact)
        rep["continuation_vs_generated"] = seam_measures(cont, fps, contact)
        rep["inbetween"] = seam_measures([c[:3] for c in inb], fps, contact)
        rep["inbetween_vs_generated"] = seam_measures(inb, fps, contact)
        log(f"continuation: {rep['continuation']}\ninbetween: {rep['inbetween']}")

    # -- part regeneration ------------------------------------------------------------------------
    parts = timelines if parts is None else parts
    if parts:
        walks = [c for c in test if c.content == "walk"]
        arms = [c for c in test if c.content in ARM_CONTENTS]
        keep = kept_joints((4, 5), pipe.vae.skeleton)
        rows = []
        for k in range(parts):
            w, target = rng.choice(walks), rng.choice(arms)
            src = pipe.generate(rng.choice(_heldout(captions, w)), frames=100, seed=seed * 1000 + k, steps=steps)
            m = d.regenerate_parts(src, rng.choice(_heldout(captions, target)), "arms", seed=seed * 1000 + k)
            sides = ARM_CONTENTS[target.content]
            rows.append({"kept_cm": 100 * kept_distance(m.joints, src.joints, keep),
                         "reached": wrists_raised(m.joints, sides), "source_reached": wrists_raised(src.joints, sides),
                         "content": target.content})
            log(f"  parts {k + 1}/{parts} ({time.time() - t_start:.0f}s)")
        real_rate = float(np.mean([wrists_raised(_joints(pipe, c.features), ARM_CONTENTS[c.content]) for c in arms]))
        kept = np.array([r["kept_cm"] for r in rows])
        rep["parts"] = {"n": len(rows), "kept_joints": keep, "kept_cm_mean": float(kept.mean()),
                        "kept_cm_max": float(kept.max()), "kept_within_3cm_fraction": float(np.mean(kept <= 3.0)),
                        "reached_rate": float(np.mean([r["reached"] for r in rows])),
                        "source_rate": float(np.mean([r["source_reached"] for r in rows])),
                        "real_clips_rate": real_rate, "rows": rows}
        rep["parts"]["pass"] = bool(rep["parts"]["kept_cm_mean"] <= 3.0 and rep["parts"]["reached_rate"] >= 0.8)
        log(f"parts: { {k: v for k, v in rep['parts'].items() if k != 'rows'} }")

    # -- cost -------------------------------------------------------------------------------------
    if cost:
        segs = [Segment(p, 10.0) for p in ("A person walks forward.", "A person waves the right hand.",
                                            "A person runs.", "A person bows.", "A person walks backward.",
                                            "A person raises both hands.")]
        window = _median_time(lambda: pipe.generate("A person walks forward.", frames=pipe.max_frames, seed=1,
                                                    steps=steps), 3)
        t0 = time.perf_counter()
        m = d.compose(segs, seed=seed)
        total = time.perf_counter() - t0
        n_win = len(m.meta["shot"]["windows"])
        rep["cost"] = {"timeline_seconds": m.meta["shot"]["seconds"], "windows": n_win,
                       "timeline_time_s": total, "one_window_time_s": window,
                       "window_seconds": pipe.max_frames / fps,
                       "ratio": total / (n_win * window)}
        rep["cost"]["pass"] = bool(rep["cost"]["ratio"] <= 1.2)
        log(f"cost: {rep['cost']}")
    rep["seconds"] = round(time.time() - t_start, 1)
    return rep


def reorder_segments(segs: list, order: list[int], compose_seed: int) -> list:
    """``segs`` in ``order``, each with the seed compose would derive for its drawn index, so a caption moved to
    another position keeps its noise (identity order: the same motion as the unordered segments)."""
    from ..runtime.shots import Segment, derive_seed

    return [Segment(segs[i].prompt, segs[i].seconds,
                    derive_seed(compose_seed, "segment", i) if segs[i].seed is None else segs[i].seed)
            for i in order]


DRAW_STRIDE = 100_000  # compose seed of draw r: seed·1000 + timeline + r·DRAW_STRIDE (draw 0: the old seeds)


def parse_text_blend(spec: str, cls):
    """``"START,RAMP"`` (latent frames around the seam) → ``cls(start, ramp)``; ``"off"`` → None."""
    if spec == "off":
        return None
    try:
        start, ramp = (int(x) for x in spec.split(","))
    except ValueError:
        raise SystemExit(f"--text-blend must be START,RAMP (integers) or off, got {spec!r}") from None
    return cls(start, ramp)


def ratio_interval(seg_hits: np.ndarray, single_hits: np.ndarray, n: int = 2000, seed: int = 0) -> list[float]:
    """5th and 95th percentile of the content ratio over timelines resampled with replacement (paired: a
    resampled timeline brings its segments and their single clips)."""
    rng = np.random.default_rng(seed)
    a = seg_hits.reshape(len(seg_hits), -1).mean(1)
    b = single_hits.reshape(len(single_hits), -1).mean(1)
    idx = rng.integers(0, len(a), size=(n, len(a)))
    r = a[idx].mean(1) / np.maximum(b[idx].mean(1), 1e-9)
    return [float(np.percentile(r, 5)), float(np.percentile(r, 95))]


def _key(steps: int, prompt: str, frames: int, seed: int, model: str = "") -> str:
    return f"{model}|{steps}|{frames}|{seed}|{prompt}" if model else f"{steps}|{frames}|{seed}|{prompt}"


def _model_digest(pipe, clf=None) -> str:  # noqa: ANN001
    """The loaded model's weights sha256 (its folder's; "" when it came from no folder), and with ``clf`` the
    classifier's after a ``+`` (sha256 of its state in memory): a retrained classifier labels anew too."""
    from ..runtime.integrity import weights_digest

    source = pipe.info.get("source")
    model = weights_digest(Path(source)) if source else ""
    if clf is None:
        return model
    h = hashlib.sha256()
    for name, t in sorted(clf.state_dict().items()):
        h.update(name.encode() + b"\0" + t.detach().cpu().contiguous().numpy().tobytes())
    return f"{model}+{h.hexdigest()}"


def _single_labels(pipe, clf, jobs: list[tuple[str, int, int]], steps: int, cache: Path | None,
                   model: str = "") -> dict:
    """Classifier labels of single clips, by job (prompt, frames, seed); generated 16 at a time.

    With ``cache`` (a JSON file) labels are read from it and each batch's are added as soon as they exist;
    the batches run from a process-dependent starting point, so runs side by side split the work. ``model``
    (the weights' and the classifier's sha256, :func:`_model_digest`) is part of every key: other weights
    exported into the same model folder (or a retrained classifier) get labels of their own, never the old ones."""

    def read() -> dict:
        return json.loads(cache.read_text()) if cache is not None and cache.exists() else {}

    def key(job: tuple[str, int, int]) -> str:
        return _key(steps, *job, model=model)

    labels = read()
    todo = sorted({j for j in jobs if key(j) not in labels})
    chunks = [todo[b : b + 16] for b in range(0, len(todo), 16)]
    first = os.getpid() % len(chunks) if chunks and cache is not None else 0
    for chunk in chunks[first:] + chunks[:first]:
        labels = {**read(), **labels}
        chunk = [j for j in chunk if key(j) not in labels]
        if not chunk:
            continue
        out = pipe.generate_batch([p for p, _, _ in chunk], frames=[f for _, f, _ in chunk],
                                  seeds=[s for _, _, s in chunk], steps=steps)
        for j, lab in zip(chunk, _classify(clf, [o.features for o in out]), strict=True):
            labels[key(j)] = lab
        if cache is not None:  # another run may have added labels meanwhile; replace atomically
            labels = {**read(), **labels}
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(labels, indent=0, sort_keys=True))
            tmp.replace(cache)
    return {j: labels[key(j)] for j in jobs}


def _joints(pipe, feats: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return pipe._joints(np.asarray(feats, np.float32))


def format_shots_markdown(rep: dict) -> str:
    """The model card's table of issue #13's criteria."""
    s = rep["settings"]
    lines = [f"Shots (`python -m salad_model.evaluation.eval shots`): {s['timelines']} three-segment timelines of "
             f"held-out captions, DDIM-{s['steps']}, resample {s['resample']}, context {s['context_seconds']:g} s"
             f"{', hand-over ' + s['handover'] if s.get('handover') else ''}.", "",
             "| measure | at seams | inside | ratio | criterion | holds |", "|---|---|---|---|---|---|"]
    for key, name in (("timelines", "timelines"), ("continuation", "continuation"),
                      ("continuation_vs_generated", "continuation (inside = generated frames)"),
                      ("inbetween", "in-between"), ("inbetween_vs_generated", "in-between (inside = the gap)")):
        r = rep.get(key)
        if not r:
            continue
        lines += [
            f"| {name}: jerk (m/s³) | {r['jerk_seam']:.1f} | {r['jerk_inside']:.1f} | {r['jerk_ratio']:.2f} | ≤ 1.25 | "
            f"{'yes' if r['jerk_ratio'] <= 1.25 else 'no'} |",
            f"| {name}: foot sliding in contact (m/s) | {r['sliding_seam']:.3f} | {r['sliding_inside']:.3f} | "
            f"{r['sliding_ratio']:.2f} | ≤ 1.25 | {'yes' if r['sliding_ratio'] <= 1.25 else 'no'} |",
            f"| {name}: root displacement (m/frame), max at seams vs p99 inside | {r['root_disp_seam_max']:.3f} | "
            f"{r['root_disp_inside_p99']:.3f} | {r['root_ratio']:.2f} | ≤ 1.5 | "
            f"{'yes' if r['root_ratio'] <= 1.5 else 'no'} "
            f"({100 * r['root_disp_seam_pass_fraction']:.0f}% of {r['seams']} seams) |"]
    t = rep.get("timelines")
    if t is not None:
        draws = s.get("draws", 1)
        lines += ["", f"Content per segment: {100 * t['content_acc_segments']:.1f}% of {t['segments']} segments "
                  f"({draws} draw{'s' if draws > 1 else ''} per timeline) vs "
                  f"{100 * t['content_acc_single_clips']:.1f}% for the same captions as single clips, two seeds "
                  f"each (ratio {t['content_ratio']:.2f}; criterion ≥ 0.90: "
                  f"{'holds' if t['content_pass'] else 'does not hold'})."]
        if "content_ratio_interval90" in t:
            lo, hi = t["content_ratio_interval90"]
            by_pos = " / ".join(f"{100 * x:.1f}%" for x in t["content_acc_by_position"])
            single_pos = " / ".join(f"{100 * x:.1f}%" for x in t["content_acc_single_by_position"])
            seeds = " and ".join(f"{100 * x:.1f}%" for x in t["content_acc_single_clips_by_seed"])
            ratios = " and ".join(f"{x:.2f}" for x in t["content_ratio_by_single_seed"])
            lines += [f"Ratio over timelines resampled with replacement: 90% within {lo:.2f}–{hi:.2f}. By position "
                      f"in the timeline: {by_pos} (single clips {single_pos}; the 1st segment holds no context). "
                      f"The single clips by seed (the segment's, its first window's): {seeds} (ratios {ratios})."]
    if "parts" in rep:
        p = rep["parts"]
        lines += [f"Arms regenerated on {p['n']} generated walks: kept joints {p['kept_cm_mean']:.2f} cm mean "
                  f"root-aligned (max {p['kept_cm_max']:.2f}; criterion ≤ 3 cm), asked wrists above the neck in "
                  f"{100 * p['reached_rate']:.0f}% (sources {100 * p['source_rate']:.0f}%, real clips of those actions "
                  f"{100 * p['real_clips_rate']:.0f}%; criterion ≥ 80%)."]
    if "cost" in rep:
        c = rep["cost"]
        lines += [f"Cost: a {c['timeline_seconds']:.0f} s timeline took {c['timeline_time_s']:.1f} s for "
                  f"{c['windows']} "
                  f"windows; one {c['window_seconds']:.1f} s window {c['one_window_time_s']:.2f} s → ratio "
                  f"{c['ratio']:.2f} (criterion ≤ 1.2)."]
    return "\n".join(lines)


def add_arguments(p) -> None:
    from .eval import DEFAULT_DATA

    p.add_argument("--model", default="demo")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--classifier", type=Path, default=None)
    p.add_argument("--timelines", type=int, default=30)
    p.add_argument("--joins", type=int, default=None, help="continuations and in-betweens (default --timelines)")
    p.add_argument("--parts", type=int, default=None, help="part regenerations (default --timelines)")
    p.add_argument("--no-cost", action="store_true", help="skip the 60 s timeline timing")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--resample", type=int, default=0)
    p.add_argument("--context", type=float, default=None, help="conditioning window (s; default the shipped one)")
    p.add_argument("--handover", choices=("spill", "nominal"), default=None,
                   help="where a segment's prompt takes over (default the shipped one; runtime/shot_handover.py)")
    p.add_argument("--text-blend", default=None,
                   help="prompt blend across seams, START,RAMP latent frames or off (default the shipped one)")
    p.add_argument("--overhang", type=int, default=None,
                   help="latent frames each window generates past what it keeps (default the shipped one)")
    p.add_argument("--order", type=lambda x: [int(i) for i in x.split(",")], default=None,
                   help="compose each timeline's drawn segments in this order, e.g. 0,2,1 (each keeps its seed)")
    p.add_argument("--reweight", type=float, default=None,
                   help="after a seam, scale the new prompt's content words on the new frames (shot_reweight.py)")
    p.add_argument("--free-guidance", action="store_true",
                   help="after a seam, the unconditional branch does not see the held context (shot_free_guidance.py)")
    p.add_argument("--trim-last", action=argparse.BooleanOptionalAction, default=None,
                   help="the last segment's window ends with the shot, no cut spill (ShotDirector trim_last; "
                        "default on where it applies; --no-trim-last: the rows from before it was the default)")
    p.add_argument("--draws", type=int, default=1, help="compose seeds per timeline (content numerator draws)")
    p.add_argument("--singles-cache", type=Path, default=None, help="JSON cache of single-clip labels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--markdown", type=Path, default=None)


def run(a) -> int:
    """``eval shots``: :func:`shot_statistics` through eval's model runner (report JSON and Markdown)."""
    from .eval import run_with_model

    return run_with_model(a, "shots", lambda pipe, clf, log: shot_statistics(
        pipe, clf, a.data, a.timelines, a.steps, a.resample, a.context, a.seed, a.joins, a.parts, not a.no_cost,
        log=log, handover=a.handover, text_blend=a.text_blend, draws=a.draws, singles_cache=a.singles_cache,
        overhang=a.overhang, order=a.order, reweight=a.reweight, free_guidance=a.free_guidance,
        trim_last=a.trim_last),
        format_shots_markdown)
