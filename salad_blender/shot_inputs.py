"""What a shot job is asked to do, checked before anything starts: segments, lengths, body parts, recipes.

Pure Python (no bpy), so every rule a user can trip over is tested without Blender. Shots (issue 13)
are the worker ops ``compose`` (a timeline of segments), ``continue``, ``inbetween`` and
``regenerate_parts``. The worker checks the same rules against the loaded model; the limits here are
deliberate copies of the model side's (``salad_model`` shots: 300 s per shot, 1 s of conditioning
context, the shipped models' 2 s minimum clip), so a wrong input fails at once, before a worker is
started or anything in the scene is touched. A model with other limits still gets the worker's exact
message (an ``invalid_input`` error, which also leaves the scene as it was).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import protocol as P
from . import smpl22
from .inputs import JobError, Sampling, clean_prompt, typed_seconds

MAX_SHOT_SECONDS = 300.0  # a shot's total length (the worker's limit)
MIN_SEGMENT_SECONDS = 2.0  # a segment's shortest length on the shipped models (their 40-frame minimum clip)
CONTEXT_SECONDS = 1.0  # motion each continuation / in-between side is conditioned on (sent as context_seconds)
MIN_CONTINUE_SECONDS = 0.4  # two latent frames
MIN_GAP_SECONDS = 0.2  # one latent frame

# Latent body parts, in the model's order (SALAD's latent is time × these 7), and the user's presets.
PART_NAMES = ("root", "left_leg", "right_leg", "torso", "left_arm", "right_arm", "head")
PART_PRESETS: dict[str, tuple[str, ...]] = {
    "arms": ("left_arm", "right_arm"),
    "legs": ("left_leg", "right_leg"),
    "upper": ("torso", "left_arm", "right_arm", "head"),
    "lower": ("root", "left_leg", "right_leg"),
}
SHOT_KINDS = ("compose", "continue", "inbetween", "regenerate_parts")


@dataclass(frozen=True)
class Segment:
    """One prompt of a timeline: what happens for how long; ``seed`` None = derived from the shot's seed."""

    prompt: str
    seconds: float
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The request / recipe form (no seed key when the worker derives it)."""
        out: dict[str, Any] = {"prompt": self.prompt, "seconds": float(self.seconds)}
        if self.seed is not None:
            out["seed"] = int(self.seed)
        return out


def check_seconds(value: Any, what: str, lo: float, hi: float) -> float:
    """A duration within [lo, hi] seconds, or a :class:`JobError` naming the range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JobError(f"{what} must be a number of seconds, not {value!r}.")
    if not lo - 1e-9 <= float(value) <= hi + 1e-9:
        raise JobError(f"{what} is {float(value):g} s; it must be within {lo:g}–{hi:g} s.")
    return typed_seconds(value)


def check_seed(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not P.SEED_MIN <= value <= P.SEED_MAX:
        raise JobError(f"{what} must be an integer within {P.SEED_MIN} … {P.SEED_MAX}, not {value!r}.")
    return int(value)


def check_segments(segments: Iterable[Segment | Mapping[str, Any]]) -> list[Segment]:
    """The timeline cleaned and checked: each prompt non-empty, each duration and the total within limits."""
    out: list[Segment] = []
    for k, s in enumerate(segments, 1):
        if isinstance(s, Mapping):
            s = Segment(str(s.get("prompt") or ""), s.get("seconds"), s.get("seed"))  # type: ignore[arg-type]
        prompt = clean_prompt(s.prompt)
        if not prompt:
            raise JobError(f"Segment {k} has no prompt: describe what happens in it, e.g. 'a person waves'.")
        seconds = check_seconds(s.seconds, f"Segment {k}'s duration", MIN_SEGMENT_SECONDS, MAX_SHOT_SECONDS)
        seed = None if s.seed is None else check_seed(s.seed, f"Segment {k}'s seed")
        out.append(Segment(prompt, seconds, seed))
    if not out:
        raise JobError("The shot has no segments: add one (a prompt and a duration) first.")
    total = sum(s.seconds for s in out)
    if total > MAX_SHOT_SECONDS + 1e-9:
        raise JobError(f"The shot is {total:g} s long; the limit is {MAX_SHOT_SECONDS:g} s. Shorten or remove "
                       "segments.")
    return out


def sampling_fields(sampling: Sampling) -> dict[str, Any]:
    """Seed, steps, sampler and guidance of a shot request (a shot's length comes from its parts, not here)."""
    sampling.check()
    return {k: v for k, v in sampling.fields().items() if k not in ("seconds", "frames")}


def compose_request(segments: Sequence[Segment], sampling: Sampling, trim_last: bool = True) -> dict[str, Any]:
    """The worker's ``compose`` request; ``trim_last`` is always sent (the worker's default could change again)."""
    return {"op": "compose", "segments": [s.to_dict() for s in segments], "context_seconds": CONTEXT_SECONDS,
            "trim_last": bool(trim_last), **sampling_fields(sampling)}


def compose_recipe(segments: Sequence[Segment], seed: int, wmeta: Mapping[str, Any],
                   trim_last: bool = True) -> dict[str, Any]:
    """What reproduces a timeline: every segment with the seed it was made with, and where it lies (20 fps frames:
    ``start``/``end``, and ``content_start``/``content_end`` where its own prompt's motion is, as the worker says),
    and ``trim_last`` (whether the last segment's window ended with the shot), always recorded: a recipe without
    it was made before the option existed, untrimmed, and is replayed so (:func:`recipe_trim_last`).

    The worker reports each segment's seed (derived ones included), so replaying the recipe's segments
    gives the same motion whatever the shot seed, and re-rolling one segment changes one number.
    """
    made = list(((wmeta.get("shot") or {}).get("segments")) or [])
    segs = []
    for k, s in enumerate(segments):
        w = made[k] if k < len(made) and isinstance(made[k], Mapping) else {}
        used = w.get("seed", s.seed)
        seg = {"prompt": s.prompt, "seconds": s.seconds, "seed": None if used is None else int(used)}
        for key in ("start", "end", "content_start", "content_end"):  # where it lies / where its prompt shows
            if key in w:
                seg[key] = int(w[key])
        segs.append(seg)
    return {"kind": "compose", "seed": int(seed), "context_seconds": CONTEXT_SECONDS, "trim_last": bool(trim_last),
            "segments": segs}


def _broken(name: str, why: str) -> JobError:
    """A recipe edited by hand (or by another tool), named as :class:`metadata.MetadataError` names a property."""
    return JobError(f"{name} has a broken custom property salad_shot ({why}): undo that change, or delete the action.")


def _recipe_segment(s: Any, k: int, name: str) -> Segment:
    if not isinstance(s, Mapping):
        raise _broken(name, f"segment {k} is not an object")
    for key in ("prompt", "seconds"):
        if key not in s:
            raise _broken(name, f"segment {k} has no {key}")
    seconds, seed = s["seconds"], s.get("seed")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise _broken(name, f"segment {k}'s seconds is {seconds!r}, not a number")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, float)) or seed != int(seed)):
        raise _broken(name, f"segment {k}'s seed is {seed!r}, not an integer")
    return Segment(str(s["prompt"]), float(seconds), None if seed is None else int(seed))


def recipe_segments(recipe: Mapping[str, Any] | None, name: str = "the action") -> list[Segment]:
    """The segments of a timeline recipe (what a re-roll and 'Use this shot's segments' start from).

    A recipe edited by hand is refused naming what is wrong (it raised KeyError / TypeError from the buttons).
    """
    if not recipe or recipe.get("kind") != "compose" or not recipe.get("segments"):
        raise JobError(f"{name} is not a timeline made by 'Generate Shot', so it has no segments to re-roll.")
    if not isinstance(recipe["segments"], list):
        raise _broken(name, "segments is not a list")
    return [_recipe_segment(s, k, name) for k, s in enumerate(recipe["segments"], 1)]


def recipe_leg_length(recipe: Mapping[str, Any], name: str = "the action") -> float | None:
    """The leg length (metres) a re-roll keeps its parent's scale with; None when the recipe has none (older shots)."""
    leg = recipe.get("leg_length")
    if leg is None:
        return None
    if isinstance(leg, bool) or not isinstance(leg, (int, float)) or not math.isfinite(leg) or leg <= 0:
        raise _broken(name, f"leg_length is {leg!r}, not a positive number of metres")
    return float(leg)


def recipe_trim_last(recipe: Mapping[str, Any], name: str = "the action") -> bool:
    """Whether a timeline recipe's last window ended with the shot. A recipe without the key was made before the
    option existed, when every shot was untrimmed: no (not today's default, which would change its motion)."""
    value = recipe.get("trim_last", False)
    if not isinstance(value, bool):
        raise JobError(f"{name} has a shot recipe whose trim_last is {value!r}; it must be true or false.")
    return value


def reroll(segments: Sequence[Segment], index: int, seed: int) -> list[Segment]:
    """The same timeline with segment ``index`` (0-based) under a new seed; the others keep theirs."""
    if not 0 <= index < len(segments):
        raise JobError(f"There is no segment {index + 1}; the shot has {len(segments)}.")
    seed = check_seed(seed, "The new seed")
    if segments[index].seed == seed:
        raise JobError(f"Segment {index + 1} already has seed {seed}; pick another to re-roll it.")
    return [Segment(s.prompt, s.seconds, seed if k == index else s.seed) for k, s in enumerate(segments)]


def shot_title(segments: Sequence[Segment], what: str = "shot") -> str:
    """The action's name: what it is, then the prompts in order (shortened to fit an ID name)."""
    return f"{what}: " + " | ".join(s.prompt for s in segments)


def check_parts(parts: Iterable[str]) -> list[str]:
    """Presets (arms, legs, upper, lower) and part names → the latent parts to regenerate, in the model's order."""
    chosen: set[str] = set()
    for p in parts:
        key = str(p).strip().lower().replace(" ", "_").replace("-", "_")
        if key in PART_PRESETS:
            chosen.update(PART_PRESETS[key])
        elif key in PART_NAMES:
            chosen.add(key)
        elif key:
            raise JobError(f"Unknown body part '{p}'; use {', '.join(PART_PRESETS)} or {', '.join(PART_NAMES)}.")
    if not chosen:
        raise JobError("No body part selected: tick at least one part to regenerate (or a preset: arms, legs, "
                       "upper or lower body).")
    if len(chosen) == len(PART_NAMES):
        raise JobError("All body parts are selected, so nothing of the source would be kept: generate a new "
                       "motion instead, or untick a part.")
    return [p for p in PART_NAMES if p in chosen]


def legs_carry_root(parts: Sequence[str], keep_path: bool = False) -> list[str]:
    """``parts`` (checked) with the root when a leg is regenerated over it, unless ``keep_path``.

    Why: the legs carry the body. Under a kept root the source's path goes on while the new legs do something
    else: on the demo model 'legs' slid the feet 1.65 m/s in contact (the path's own speed, 1.71) under three
    standing / kicking / jumping prompts, 'lower' (the root with them) 0.39 — the sources' own 0.35-0.52.
    Not when every other part is regenerated already (the root is then all that is kept of the source).
    """
    chosen = set(parts)
    if keep_path or "root" in chosen or not chosen & {"left_leg", "right_leg"} or len(chosen) == len(PART_NAMES) - 1:
        return list(parts)
    return [p for p in PART_NAMES if p in chosen | {"root"}]


def context_frames(seconds: float = CONTEXT_SECONDS) -> int:
    """Joint frames (20 fps) a source needs to hold ``seconds`` of conditioning context.

    The worker keeps every joint frame (salad_model/runtime/pose_count.py), in whole latent frames of 4.
    """
    return 4 * int(round(seconds * smpl22.FPS / 4))


def check_context(frames: int, name: str, what: str, seconds: float = CONTEXT_SECONDS,
                  why: str = "the motion the model conditions on") -> None:
    """Refuse a source (``frames`` joint frames at 20 fps) shorter than the conditioning window.

    ``what`` names the use in the message ('continuing it', ...); ``seconds`` / ``why`` another minimum.
    """
    if frames < context_frames(seconds):
        raise JobError(f"The action '{name}' is {frames / smpl22.FPS:.2f} s long; {what} needs at least "
                       f"{seconds:g} s of it ({why}).")
