"""What a job is asked to do, checked before anything starts: settings, prompts, bone maps, edits.

Pure Python (no bpy), so every rule a user can trip over is tested without Blender. The ``start_*``
functions of :mod:`jobs` call these and let :class:`JobError` reach the operator or the batch tool.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from . import heatmap, smpl22
from . import protocol as P

SAMPLERS = P.SCHEDULERS  # request choices and ranges: the protocol copy of salad_model.runtime.requests
SCENE_RANGES = ("set", "extend", "keep")
RIG_PRESETS = ("auto", "smpl22", "mixamo", "rigify_control", "rigify")
MIRROR_SIDES = P.MIRROR_SIDES
MIRROR_METHODS = P.MIRROR_METHODS
PREFS_HINT = "Preferences > Add-ons > SALAD Motion"


class JobError(Exception):
    """A job cannot start or failed; the message says what happened and what to do about it."""


class ResultWarning(UserWarning):
    """Something an applied result changed that the user should hear about (the job reports it as a warning).

    A warning, not a return value: the apply steps of every job kind return their Action, and a script
    without a job (tools/batch.py) sees it on stderr like any Python warning.
    """


def resolve_python(path: str | os.PathLike | None) -> str:
    """The worker interpreter as an absolute path, or a :class:`JobError` saying how to set one."""
    if not path or not str(path).strip():
        raise JobError("No Python interpreter is set for the model worker. Set 'Worker Python' in "
                       f"{PREFS_HINT}, or click 'Set Up Model Environment' there.")
    p = os.path.abspath(os.path.expanduser(str(path).strip()))
    if not os.path.isfile(p):
        raise JobError(f"The worker Python '{p}' does not exist. Fix 'Worker Python' in {PREFS_HINT} "
                       "(the python of an environment with salad_model installed), or click "
                       "'Set Up Model Environment'.")
    if not os.access(p, os.X_OK):
        raise JobError(f"The worker Python '{p}' is not executable. Fix 'Worker Python' in {PREFS_HINT}.")
    return p


def check_model(model: str) -> str:
    """"demo" or an existing model folder (ours or an official checkpoint folder)."""
    model = (model or "").strip()
    if not model or model == "demo":
        return "demo"
    p = os.path.abspath(os.path.expanduser(model))
    if not os.path.isdir(p):
        raise JobError(f"The model folder '{p}' does not exist. Pick a model folder in {PREFS_HINT} "
                       "or choose the demo model.")
    return p


def typed_seconds(value: float) -> float:
    """A duration as the user typed it: Blender's 32-bit fields hold 2.9 as 2.9000000954, which the worker's
    half-to-even rounding to whole latent frames (0.2 s) made 3.0 s where tools/batch.py's 2.9 made 2.8 s."""
    return round(float(value), 6)


def clean_prompt(text: str | None) -> str:
    """A prompt or caption with its white space folded (what is sent and stored)."""
    return " ".join((text or "").split())


@dataclass
class Sampling:
    """Length, seed and sampler settings of one generation (what the metadata records)."""

    seconds: float | None = 4.0
    frames: int | None = None  # exact length (edits reuse the source's frames)
    seed: int = 0
    guidance: float | None = None  # None or 0: the model's own default (its config says which)
    steps: int = 50
    sampler: str = "ddim"
    fast: bool = False  # generate only: the worker's fast preset replaces steps and sampler

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": int(self.seed), "steps": int(self.steps), "scheduler": self.sampler}
        if self.frames is not None:
            out["frames"] = int(self.frames)
        else:
            out["seconds"] = typed_seconds(self.seconds)
        if self.guidance:
            out["guidance"] = float(self.guidance)
        return out

    def check(self) -> None:
        if self.sampler not in SAMPLERS:
            raise JobError(f"Unknown sampler '{self.sampler}'; choose one of {', '.join(SAMPLERS)}.")
        if self.frames is None and not (self.seconds and self.seconds > 0):
            raise JobError("The duration must be a positive number of seconds.")
        if not P.SEED_MIN <= int(self.seed) <= P.SEED_MAX:
            raise JobError(f"The seed must be a non-negative integer within {P.SEED_MIN} … {P.SEED_MAX}.")
        if int(self.steps) < 1:
            raise JobError("Steps must be at least 1.")


@dataclass
class Target:
    """Where a motion goes: a new SMPL-22 body ("new") or an existing armature object ("armature").

    ``rig``: a preset name (``auto``, ``smpl22``, ``mixamo``, ``rigify``) or a custom bone map
    {SMPL-22 joint: bone}. ``pin_feet`` removes foot sliding using the model's contacts.
    What the result may change in the scene: ``scene_range`` "set" (the scene range becomes the clip),
    "extend" (only grow the end) or "keep"; a new body goes to ``location`` (world, e.g. the 3D cursor)
    in the collection named ``collection`` ("" = the scene's), and becomes the selected, active object
    only when ``select`` and the user is not busy in another mode. ``in_place`` removes the root's
    ground travel (the motion stays on the spot). ``cyclic_blend`` > 0 makes the result a seamless loop
    with that many scene frames of cross-fade (Make Cyclic). ``others``: further armatures that each get
    their own new Action of the same motion (apply to all selected armatures).
    """

    kind: str = "new"
    armature: str = ""
    rig: str | dict[str, str] = "auto"
    scene: str = ""
    pin_feet: bool = True
    name: str = "SALAD Body"
    start_frame: int | None = None
    scene_range: str = "set"
    location: tuple[float, float, float] = (0.0, 0.0, 0.0)
    collection: str = ""
    select: bool = True
    in_place: bool = False
    cyclic_blend: int = 0
    others: tuple[str, ...] = ()
    other_rigs: dict[str, str | dict[str, str]] = field(default_factory=dict)  # resolved rig of each other
    armature_ref: Any = field(default=None, compare=False, repr=False)  # the object itself: found after a rename
    scene_ref: Any = field(default=None, compare=False, repr=False)  # the scene itself, likewise
    other_refs: tuple[Any, ...] = field(default=(), compare=False, repr=False)  # the ``others`` themselves, in order

    def other_ref(self, name: str) -> Any:
        """The object of the other armature ``name`` (None when a script gave its name only)."""
        return dict(zip(self.others, self.other_refs, strict=False)).get(name)


def split_words(prompt: str) -> list[str]:
    """Distinct words of a prompt in order (for the re-weight word picker)."""
    seen: list[str] = []
    for w in heatmap.split_words(prompt):
        if w.lower() not in (s.lower() for s in seen):
            seen.append(w)
    return seen


def parse_bone_map(text: str, origin: str = "bone map") -> dict[str, str]:
    """JSON {SMPL-22 joint: bone name} (the inverse {bone: joint} is accepted and flipped)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise JobError(f"The {origin} is not valid JSON ({exc}). Expected e.g. "
                       '{"pelvis": "Hips", "left_hip": "LeftUpLeg", ...}.') from exc
    if not isinstance(data, dict) or not data or not all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in data.items()):
        raise JobError(f"The {origin} must be a JSON object of names, {{SMPL-22 joint: bone name}}.")
    joints = set(smpl22.JOINT_NAMES)
    if not set(data) <= joints and set(data.values()) <= joints:
        data = {v: k for k, v in data.items()}
    return data


def _mirror_fields(mirror: str | None, method: str) -> dict[str, str]:
    if mirror not in MIRROR_SIDES:
        raise JobError(f"Mirror must be one of {', '.join(MIRROR_SIDES)}.")
    if method not in MIRROR_METHODS:
        raise JobError(f"Mirror method must be one of {', '.join(MIRROR_METHODS)}.")
    return {"mode": "mirror", "mirror": str(mirror), "mirror_method": method}


def edit_choice(text: str, noun: str, new_prompt: str | None, word: str | None, scale: float | None,
                mirror: str | None, mirror_method: str = "geometric") -> tuple[dict[str, Any], str, str, dict]:
    """Validate exactly one edit of ``text`` (the prompt or caption, called ``noun`` in messages).

    Returns the request fields, the new action's name, a label for messages and the recipe to store.
    """
    if sum(x is not None and x != "" for x in (new_prompt, word, mirror)) != 1:
        raise JobError("Choose one edit: a new prompt, a word to re-weight, or a mirror side.")
    if new_prompt is not None and new_prompt != "":
        new_prompt = clean_prompt(new_prompt)
        if not new_prompt:
            raise JobError(f"Type the new prompt (change a word or add details to the {noun}).")
        if new_prompt == text:
            raise JobError(f"The new prompt is the same as the {noun}: change a word (e.g. 'walks' → 'runs') or "
                           "add a detail.")
        return {"edit_prompt": new_prompt, "mode": "auto"}, new_prompt, "Edit", {"edit_prompt": new_prompt}
    if word:
        if word.lower() not in (w.lower() for w in split_words(text)):
            raise JobError(f"'{word}' is not a word of the {noun} '{text}'; pick one of "
                           f"{', '.join(split_words(text))}.")
        if scale is None or not P.REWEIGHT_MIN <= float(scale) <= P.REWEIGHT_MAX:
            raise JobError(f"The re-weight factor must be within {P.REWEIGHT_MIN:g} … {P.REWEIGHT_MAX:g} "
                           "(1 = unchanged, 0 = ignore the word, negative = the opposite).")
        return ({"mode": "reweight", "word": word, "scale": float(scale)}, f"{text} [{word} x{float(scale):g}]",
                "Re-weight", {"word": word, "scale": float(scale)})
    return (_mirror_fields(mirror, mirror_method), f"{text} [mirror {mirror}]", "Mirror",
            {"mirror": mirror, "method": mirror_method})


def inversion_fields(steps: int | None = None, null_text_iters: int | None = None,
                     guidance: float | None = None) -> dict[str, Any]:
    """Optional sampling fields of an ``edit_real`` request (absent: the worker's defaults)."""
    out: dict[str, Any] = {}
    for key, value, least in (("steps", steps, 1), ("null_text_iters", null_text_iters, 0)):
        if value is not None:
            if int(value) < least:
                raise JobError(f"{key.replace('_', ' ').capitalize()} must be at least {least}.")
            out[key] = int(value)
    if guidance is not None:
        out["guidance"] = float(guidance)
    return out
