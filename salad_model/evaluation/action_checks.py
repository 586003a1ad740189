"""Geometric checks for the DeepMimic actions (issue 19): was the asked-for action generated?

One take per action is too little to train the evaluation classifier on, so each new action gets a check on
the joints (HumanML3D space: metres, Y up, the body faces +Z at frame 0, left = +X). A check returns the
measured values and whether they pass; the thresholds sit between the action's own DeepMimic clip and a
walk (tests/salad_model/evaluation/test_action_checks.py runs every check on its clip and on the walk).

    python -m salad_model.evaluation.action_checks real                      # every check on the real clips
    python -m salad_model.evaluation.action_checks generate --seeds 10      # plain prompts → pass rates

``generate`` asks the model for each action with plain prompts ("a person jumps", "someone does a
cartwheel", …) over seeds and reports the share of seeds that pass, per action (issue goal: ≥ 80%).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..motion.motion_process import facing_angle

PELVIS, L_ANKLE, R_ANKLE, SPINE3, L_FOOT, R_FOOT, NECK = 0, 7, 8, 9, 10, 11, 12
L_HIP, R_HIP, L_SHOULDER, R_SHOULDER, L_WRIST, R_WRIST = 1, 2, 16, 17, 20, 21
FEET = (L_ANKLE, R_ANKLE, L_FOOT, R_FOOT)
FPS = 20.0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def trunk_tilt(j: np.ndarray) -> np.ndarray:
    """Angle (degrees) of the pelvis → neck direction from straight up, per frame."""
    up = _unit(j[:, NECK] - j[:, PELVIS])[:, 1]
    return np.degrees(np.arccos(np.clip(up, -1.0, 1.0)))


def feet_clearance(j: np.ndarray) -> np.ndarray:
    """Height of the lowest ankle/toe joint per frame (both feet off the ground when > a few cm)."""
    return j[:, list(FEET), 1].min(axis=1)


def speed(j: np.ndarray) -> float:
    """Mean horizontal pelvis speed along its path (m/s)."""
    step = np.linalg.norm(np.diff(j[:, PELVIS][:, [0, 2]], axis=0), axis=-1)
    return float(step.mean() * FPS) if len(step) else 0.0


def heading_turn(j: np.ndarray) -> float:
    """Largest spread of the unwrapped heading (degrees) over the clip."""
    h = np.degrees(np.unwrap(facing_angle(j)))
    return float(h.max() - h.min())


def chest_forward_y(j: np.ndarray) -> np.ndarray:
    """Vertical component of the chest's facing direction per frame (−1: face down, +1: face up)."""
    trunk = _unit(j[:, NECK] - j[:, PELVIS])
    across = _unit((j[:, R_SHOULDER] - j[:, L_SHOULDER]) + (j[:, R_HIP] - j[:, L_HIP]))
    return _unit(np.cross(trunk, across))[:, 1]


def _over(j: np.ndarray) -> np.ndarray:
    return trunk_tilt(j) > 90.0


def _first_tip_backward(j: np.ndarray) -> float:
    """Z of the trunk direction just before it first passes horizontal (< 0: tipping backward)."""
    tilt = trunk_tilt(j)
    over = np.nonzero(tilt > 90.0)[0]
    if not len(over):
        return 0.0
    pre = [k for k in range(over[0]) if 45.0 < tilt[k] <= 90.0][-3:] or [max(over[0] - 1, 0)]
    return float(_unit(j[pre, NECK] - j[pre, PELVIS])[:, 2].mean())


@dataclass(frozen=True)
class Check:
    """What passing means (for the report) and the function that measures it."""

    rule: str
    measure: Callable[[np.ndarray], dict[str, float]]
    passes: Callable[[dict[str, float]], bool]


def _m_jump(j):
    pel = j[:, PELVIS, 1]
    return {"pelvis_rise_m": float(pel.max() - np.median(pel)), "feet_off_ground_m": float(feet_clearance(j).max())}


def _m_crawl(j):
    return {"pelvis_p90_m": float(np.percentile(j[:, PELVIS, 1], 90)), "speed_mps": speed(j)}


def _m_flip(j):
    over = _over(j)
    wr = j[over][:, [L_WRIST, R_WRIST], 1].min() if over.any() else np.inf
    feet = feet_clearance(j)[over].max() if over.any() else 0.0
    return {"max_tilt_deg": float(trunk_tilt(j).max()), "feet_off_ground_inverted_m": float(feet),
            "lowest_wrist_inverted_m": float(wr), "tip_z": _first_tip_backward(j),
            "pelvis_min_m": float(j[:, PELVIS, 1].min())}


def _m_turn(j):
    return {"turn_deg": heading_turn(j), "max_tilt_deg": float(trunk_tilt(j).max()),
            "ankle_above_pelvis_m": float((j[:, [L_ANKLE, R_ANKLE], 1].max(1) - j[:, PELVIS, 1]).max())}


def _m_move(j):
    return {"speed_mps": speed(j), "feet_off_ground_m": float(feet_clearance(j).max()),
            "pelvis_median_m": float(np.median(j[:, PELVIS, 1]))}


def _m_getup(j):
    q = max(1, len(j) // 4)
    low = j[:, PELVIS, 1] < 0.45
    face = float(chest_forward_y(j)[low].mean()) if low.any() else 0.0
    return {"pelvis_min_first_quarter_m": float(j[:q, PELVIS, 1].min()),
            "pelvis_max_last_quarter_m": float(j[-q:, PELVIS, 1].max()), "chest_facing_y_when_low": face}


def _m_zombie(j):
    sh = j[:, [L_SHOULDER, R_SHOULDER], 1].mean(1)
    fwd = np.minimum(j[:, L_WRIST, 2] - j[:, SPINE3, 2], j[:, R_WRIST, 2] - j[:, SPINE3, 2])
    return {"speed_mps": speed(j), "both_wrists_forward_median_m": float(np.median(fwd)),
            "lower_wrist_below_shoulders_median_m": float(np.median(sh - j[:, [L_WRIST, R_WRIST], 1].min(1)))}


def _m_kick(j):
    return {"ankle_above_pelvis_m": float((j[:, [L_ANKLE, R_ANKLE], 1].max(1) - j[:, PELVIS, 1]).max())}


def _m_punch(j):
    sh = j[:, [L_SHOULDER, R_SHOULDER], 1].mean(1)
    # forward = +Z, the facing at frame 0: a cross punch turns hips and shoulders away from its target
    arm = np.linalg.norm(j[:, L_WRIST] - j[:, L_SHOULDER], axis=-1).max()  # the arm at its straightest
    reach = 0.0
    for w, s in ((L_WRIST, L_SHOULDER), (R_WRIST, R_SHOULDER)):
        ahead = j[:, w, 2] - j[:, SPINE3, 2]
        # arm nearly straight with the fist at shoulder height (a raised hand passes that band bent or high)
        ok = (np.abs(j[:, w, 1] - sh) < 0.2) & (np.linalg.norm(j[:, w] - j[:, s], axis=-1) > 0.9 * arm)
        if ok.any():
            reach = max(reach, float(ahead[ok].max()))
    return {"straight_arm_reach_at_shoulder_height_m": reach}


# Thresholds: between the action's own clip and a walk (values of both in the tests' docstrings).
CHECKS: dict[str, Check] = {
    "jump": Check("pelvis rises ≥ 0.15 m above its median and both feet leave the ground (≥ 0.10 m)", _m_jump,
                  lambda m: m["pelvis_rise_m"] >= 0.15 and m["feet_off_ground_m"] >= 0.10),
    "crawl": Check("pelvis below 0.5 m (90th percentile) while moving (≥ 0.1 m/s)", _m_crawl,
                   lambda m: m["pelvis_p90_m"] < 0.5 and m["speed_mps"] >= 0.1),
    "backflip": Check("trunk past 90°, tipping backward, feet ≥ 0.3 m off the ground while over", _m_flip,
                      lambda m: m["max_tilt_deg"] > 90 and m["tip_z"] < 0 and m["feet_off_ground_inverted_m"] >= 0.3),
    "sideflip": Check("trunk past 90°, feet ≥ 0.3 m up and no hand near the floor (≥ 0.4 m) while over",
                      _m_flip, lambda m: m["max_tilt_deg"] > 90 and m["feet_off_ground_inverted_m"] >= 0.3
                      and m["lowest_wrist_inverted_m"] >= 0.4),
    "cartwheel": Check("trunk past 90° with a hand within 0.3 m of the floor while over", _m_flip,
                       lambda m: m["max_tilt_deg"] > 90 and m["lowest_wrist_inverted_m"] < 0.3),
    "roll": Check("trunk past 90° with the pelvis below 0.5 m at some point", _m_flip,
                  lambda m: m["max_tilt_deg"] > 90 and m["pelvis_min_m"] < 0.5),
    "spin": Check("heading turns ≥ 300°", _m_turn, lambda m: m["turn_deg"] >= 300),
    "dance-spin": Check("heading turns ≥ 300° with the trunk upright (< 60°)", _m_turn,
                        lambda m: m["turn_deg"] >= 300 and m["max_tilt_deg"] < 60),
    "spin-kick": Check("heading turns ≥ 300° and an ankle rises above the pelvis", _m_turn,
                       lambda m: m["turn_deg"] >= 300 and m["ankle_above_pelvis_m"] > 0),
    "kick": Check("an ankle rises to within 0.1 m of the pelvis height or above", _m_kick,
                  lambda m: m["ankle_above_pelvis_m"] > -0.1),
    "punch": Check("a straight arm reaches ≥ 0.4 m in front of the chest at shoulder height", _m_punch,
                   lambda m: m["straight_arm_reach_at_shoulder_height_m"] >= 0.4),
    "run": Check("moves ≥ 1.8 m/s with both feet off the ground at times (≥ 0.06 m)", _m_move,
                 lambda m: m["speed_mps"] >= 1.8 and m["feet_off_ground_m"] >= 0.06),
    "jog": Check("moves ≥ 1.8 m/s with both feet off the ground at times (≥ 0.06 m)", _m_move,
                 lambda m: m["speed_mps"] >= 1.8 and m["feet_off_ground_m"] >= 0.06),
    "sneak": Check("moves (≥ 0.2 m/s) with the pelvis lowered (median < 0.8 m)", _m_move,
                   lambda m: m["speed_mps"] >= 0.2 and m["pelvis_median_m"] < 0.8),
    "zombie-walk": Check("moves (≥ 0.2 m/s) with both wrists ≥ 0.25 m in front of the chest, near shoulder height",
                         _m_zombie, lambda m: m["speed_mps"] >= 0.2 and m["both_wrists_forward_median_m"] >= 0.25
                         and m["lower_wrist_below_shoulders_median_m"] < 0.3),
    "getup-facedown": Check("starts low (pelvis < 0.45 m), ends standing (> 0.75 m), chest facing down when low",
                            _m_getup, lambda m: m["pelvis_min_first_quarter_m"] < 0.45
                            and m["pelvis_max_last_quarter_m"] > 0.75 and m["chest_facing_y_when_low"] < -0.3),
    "getup-faceup": Check("starts low (pelvis < 0.45 m), ends standing (> 0.75 m), chest facing up when low",
                          _m_getup, lambda m: m["pelvis_min_first_quarter_m"] < 0.45
                          and m["pelvis_max_last_quarter_m"] > 0.75 and m["chest_facing_y_when_low"] > 0.1),
}
NO_CHECK = ("dance",)  # no geometric signature that a walk or a wave lacks; reported as unchecked

# Plain prompts per action (the kind: short, train-style wording) and held-out paraphrases.
PROMPTS: dict[str, tuple[str, ...]] = {
    "jump": ("a person jumps", "someone jumps forward"), "crawl": ("a person crawls forward", "someone crawls"),
    "backflip": ("a person does a backflip", "someone does a backflip"),
    "sideflip": ("a person does a side flip", "someone does a sideflip"),
    "cartwheel": ("someone does a cartwheel", "a person does a cartwheel"),
    "roll": ("a person rolls forward", "someone does a forward roll"),
    "spin": ("a person spins around", "someone spins around"),
    "dance-spin": ("a person spins while dancing", "someone does a dance spin"),
    "spin-kick": ("a person does a spin kick", "someone does a spinning kick"),
    "kick": ("a person kicks", "someone kicks forward"), "punch": ("a person punches", "someone throws a punch"),
    "run": ("a person runs forward", "someone runs"), "jog": ("a person jogs", "someone jogs forward"),
    "sneak": ("a person sneaks forward", "someone walks stealthily"),
    "zombie-walk": ("a person walks like a zombie", "someone walks like a zombie"),
    "getup-facedown": ("a person gets up from lying face down", "someone stands up from lying on the stomach"),
    "getup-faceup": ("a person gets up from lying on the back", "someone stands up from lying face up"),
}


def run_check(action: str, joints: np.ndarray) -> dict:
    """Measured values and the verdict of one action's check on joints [T, 22, 3]."""
    if action not in CHECKS:
        raise KeyError(f"no geometric check for {action!r} (checks: {', '.join(sorted(CHECKS))})")
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[1:] != (22, 3) or len(j) < 2:
        raise ValueError(f"expected joints [T>=2, 22, 3], got {j.shape}")
    m = CHECKS[action].measure(j)
    return {"action": action, "passed": bool(CHECKS[action].passes(m)), **{k: round(v, 3) for k, v in m.items()}}


def real_report(data_dir: Path | None = None) -> list[dict]:
    """Every check on its own DeepMimic clip and on the DeepMimic walk."""
    from ..training.data import deepmimic as dm

    data_dir = Path(data_dir or dm.DEFAULT_DATA_DIR)
    skel = dm.load_skeleton(data_dir / "humanoid3d.txt")
    clips = {content: stem for stem, (content, _) in dm.CLIP_LABELS.items()}
    walk = dm.clip_joints(data_dir / "motions" / "humanoid3d_walk.txt", skel)
    rows = []
    for action in CHECKS:
        own = dm.clip_joints(data_dir / "motions" / f"humanoid3d_{clips[action]}.txt", skel)
        rows.append({"action": action, "own_clip": run_check(action, own)["passed"],
                     "walk": run_check(action, walk)["passed"]})
    return rows


def heldout_prompts(action: str, n: int = 2, seed: int = 19) -> tuple[str, ...]:
    """Held-out paraphrases of an action (sentence shapes and verbs never trained on), style normal."""
    from ..training.data.captions import make_captions

    return tuple(c.rstrip(".") for c in make_captions(action, "normal", n, seed, heldout=True))


def contact_sheet(out: Path, stems: tuple[str, ...] = ("jump", "backflip", "cartwheel", "crawl", "roll",
                                                          "getup_facedown"), frames: int = 8,
                  data_dir: Path | None = None) -> Path:
    """Side views (forward → right, up ↑) of mapped DeepMimic clips, ``frames`` poses over each clip's
    first cycle, one row per clip: what the mapping made of them, for people to look at."""
    from ..motion.skeleton import T2M
    from ..training.data import deepmimic as dm
    from .plots import pyplot

    plt = pyplot()
    data_dir = Path(data_dir or dm.DEFAULT_DATA_DIR)
    skel = dm.load_skeleton(data_dir / "humanoid3d.txt")
    colors = ["#d62728", "#1f77b4", "#333333", "#ff7f0e", "#2ca02c"]
    fig, axes = plt.subplots(len(stems), 1, figsize=(12, 1.9 * len(stems)), dpi=70, squeeze=False)
    for ax, stem in zip(axes[:, 0], stems, strict=True):
        raw = dm.read_clip(data_dir / "motions" / f"humanoid3d_{stem}.txt", skel)
        j = dm.clip_joints(data_dir / "motions" / f"humanoid3d_{stem}.txt", skel)
        span = min(len(j), int(raw.times[-1] * FPS) + 1)
        for k, t in enumerate(np.linspace(0, span - 1, frames).astype(int)):
            x0 = k * 1.6 - j[t, PELVIS, 2]  # poses side by side, each centred on its pelvis
            for c, chain in enumerate(T2M.chains):
                p = j[t, list(chain)]
                ax.plot(p[:, 2] + x0, p[:, 1], color=colors[c], lw=2)
        ax.axhline(0, color="#999999", lw=0.8)
        content = dm.CLIP_LABELS[stem][0]
        verdict = run_check(content, j)["passed"] if content in CHECKS else None
        ax.set_title(f"{stem} ({len(j) / FPS:.1f} s{', looped' if raw.loop else ''}), first cycle — check "
                     f"{'passes' if verdict else 'fails' if verdict is not None else 'n/a'}", fontsize=9, loc="left")
        ax.set_aspect("equal")
        ax.set_xlim(-0.9, frames * 1.6 - 0.7)
        ax.set_ylim(-0.05, 2.3)
        ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def generate_report(model: str, seeds: int, seconds: float, steps: int, out: Path | None,
                    wording: str = "plain", actions: list[str] | None = None, guidance: float | None = None,
                    guider: str | None = None) -> dict:
    """Generate every action's prompts over ``seeds`` seeds and report pass rates per action.

    ``wording``: ``plain`` (PROMPTS, the issue's kind) or ``heldout`` (held-out paraphrases). ``guidance``: the
    classifier-free guidance scale (default: the model's own), to confirm a scale chosen on validation clips;
    ``guider`` how its halves combine (:mod:`salad_model.runtime.guiders`; default: the model's own).
    """
    from ..runtime.pipeline import SaladPipeline

    if wording not in ("plain", "heldout"):
        raise ValueError(f"wording must be 'plain' or 'heldout', got {wording!r}")
    unknown = sorted(set(actions or ()) - set(PROMPTS))
    if unknown:
        raise ValueError(f"unknown actions {unknown} (known: {', '.join(PROMPTS)})")
    pipe = SaladPipeline.from_pretrained(model, device="cpu")
    guidance = pipe.default_guidance if guidance is None else float(guidance)
    per_action = {}
    for action in actions or list(PROMPTS):
        prompts = PROMPTS[action] if wording == "plain" else heldout_prompts(action)
        runs = [(p, seed) for p in prompts for seed in range(seeds)]
        motions = pipe.generate_batch([p for p, _ in runs], seconds=[seconds] * len(runs),
                                      seeds=[s for _, s in runs], steps=steps, guidance=guidance, guider=guider)
        results = [{"prompt": p, "seed": s, **run_check(action, np.asarray(m.joints))}
                   for (p, s), m in zip(runs, motions, strict=True)]
        rate = float(np.mean([r["passed"] for r in results]))
        per_action[action] = {"rule": CHECKS[action].rule, "pass_rate": rate, "n": len(results), "runs": results}
        print(f"{action:15s} {rate:5.0%} of {len(results)}  ({CHECKS[action].rule})", flush=True)
    report = {"model": model, "wording": wording, "seconds": seconds, "steps": steps, "guidance": guidance,
              "guider": guider if guider is not None else pipe.default_guider, "seeds": seeds,
              "actions": per_action,
              "unchecked": list(NO_CHECK)}
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m salad_model.evaluation.action_checks",
                                 description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("real", help="every check on its own DeepMimic clip and on the walk")
    r.add_argument("--data", type=Path, default=None, help="the deepmimic folder (default: shared/data/deepmimic)")
    sh = sub.add_parser("sheet", help="a picture of mapped DeepMimic clips (side views)")
    sh.add_argument("--out", type=Path, default=Path("deepmimic_clips.png"))
    sh.add_argument("--data", type=Path, default=None)
    g = sub.add_parser("generate", help="pass rates of generated motion per action")
    g.add_argument("--model", default="demo")
    g.add_argument("--seeds", type=int, default=10)
    g.add_argument("--seconds", type=float, default=4.0)
    g.add_argument("--steps", type=int, default=50)
    g.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's)")
    g.add_argument("--guider", default=None,
                   help="how guided halves combine, e.g. 'apg:eta=0,norm_threshold=2' (default: the model's)")
    g.add_argument("--out", type=Path, default=None, help="write the full report (JSON) here")
    g.add_argument("--wording", choices=["plain", "heldout"], default="plain",
                   help="plain prompts (default) or held-out paraphrases of each action")
    g.add_argument("--actions", nargs="+", default=None, help="only these actions (default: all)")
    a = ap.parse_args(argv)
    if a.cmd == "real":
        for row in real_report(a.data):
            print(f"{row['action']:15s} own clip: {'pass' if row['own_clip'] else 'FAIL'}   "
                  f"walk: {'pass' if row['walk'] else 'fail'}")
    elif a.cmd == "sheet":
        print(contact_sheet(a.out, data_dir=a.data))
    else:
        generate_report(a.model, a.seeds, a.seconds, a.steps, a.out, a.wording, a.actions, a.guidance, a.guider)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
