"""SALAD metadata of an Action (custom properties): the one writer, the one reader, and what they mean.

Pure Python (no bpy): an Action is only read through ``keys()``, ``[key]``, ``name`` and
``get``, so plain dicts stand in for it in tests.

Edits are stateless: an action records how to regenerate it (prompt, seed, frames, model, guidance,
steps, sampler) plus its chain of edits in ``salad_edits``; the prompt it *shows* is the last edit's
prompt (:func:`current_prompt`). Actions made by editing real animation (``salad_source ==
"inversion"``) have no seed to regenerate from, nor have shots (``salad_source == "shot"``: timelines,
continuations, in-betweens, part regenerations), which record their recipe as JSON in ``salad_shot``
(:func:`shot_recipe`) instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from . import smpl22
from .inputs import JobError

ACTION_PREFIX = "SALAD: "
_INT32 = (-(2**31), 2**31 - 1)


NAME_BYTES = 52  # of an action name after "SALAD: " (7 + 52 + ".001" = Blender 4.2's 63-byte ID names)
MIN_SOURCE_BYTES = 16  # what a shortened source name keeps in a derived name (with its "...")


def _cut(text: str, max_bytes: int) -> str:
    """``text`` cut to ``max_bytes`` UTF-8 bytes with "..." when it is longer; never splits a character."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    if max_bytes < 4:
        return raw[:max(max_bytes, 0)].decode("utf-8", errors="ignore")
    return raw[: max_bytes - 3].decode("utf-8", errors="ignore").rstrip() + "..."


def action_name(prompt: str, max_bytes: int = NAME_BYTES) -> str:
    """Action name for a prompt, short enough that Blender's ".001" suffixes still fit.

    Blender before 5.0 caps ID names at 63 UTF-8 bytes, so the cut counts bytes, not characters
    (a 50-character Chinese prompt is 150 bytes), and never splits a character.
    """
    return ACTION_PREFIX + _cut(" ".join(str(prompt).split()) or "motion", max_bytes)


def derived_name(parts: Sequence[str], cut_order: Sequence[tuple[int, int]], max_bytes: int = NAME_BYTES) -> str:
    """A name made of ``parts`` (source names, separators, a prompt) that fits, keeping what tells results apart.

    When too long, ``parts[i]`` for each ``(i, least_bytes)`` of ``cut_order`` is cut in turn (its start kept),
    no shorter than ``least_bytes``: sources first, then the new prompt, so a continuation of a long action
    still names its own prompt instead of ending in the source's text. Returns the name without "SALAD: "
    (:func:`action_name` of it is itself).
    """
    parts = [re.sub(r"\s+", " ", p) for p in map(str, parts)]
    for i, least in cut_order:
        excess = sum(len(p.encode("utf-8")) for p in parts) - max_bytes
        if excess <= 0:
            break
        size = len(parts[i].encode("utf-8"))
        parts[i] = _cut(parts[i], max(least, size - excess))
    return _cut(" ".join("".join(parts).split()) or "motion", max_bytes)



def continued_name(source: str, prompt: str, chained: bool = False) -> str:
    """A continuation's name: "<source> + <prompt>"; ``chained`` (the source is a continuation itself) and too long:
    "<first source> (+k) + <prompt>", k the continuations the source holds.

    Why: a continuation of a continuation cut the source's end, so each further level got the same name plus
    Blender's ".001" (the name did not say which was longer).
    """
    full = derived_name([source, " + ", prompt], [(0, MIN_SOURCE_BYTES), (2, 0)])
    if not chained or " + " not in source or len(f"{source} + {prompt}".encode()) <= NAME_BYTES:
        return full
    parts = source.split(" + ")
    counted = re.fullmatch(r"(.*) \(\+(\d+)\)", parts[0])
    root, k = (counted[1], int(counted[2])) if counted else (parts[0], 0)
    return derived_name([root, f" (+{k + len(parts) - 1}) + ", prompt], [(0, MIN_SOURCE_BYTES), (2, 0)])

def make_metadata(
    *,
    prompt: str,
    seed: int,
    frames: int,
    model: str = "",
    guidance: float = 0.0,
    steps: int = 0,
    edits: Sequence[Any] = (),
    source_fps: float = smpl22.FPS,
    scheduler: str | None = None,
    model_name: str | None = None,
    rig: str | dict[str, str] | None = None,
    pin_feet: bool | None = None,
    parent: str | None = None,
    source_action: str | None = None,
    source: str | None = None,
    to_metres: float | None = None,
    shot: dict[str, Any] | None = None,
    in_place: bool | None = None,
    cyclic: int | None = None,
    video: dict[str, Any] | None = None,
    guided_steps: int | None = None,
) -> dict[str, Any]:
    """Custom properties for a SALAD action (the only place they are spelled).

    Seeds beyond int32 (ID property ints) are strings; a custom bone map is stored as JSON. The
    optional fields are left out when None: ``scheduler`` and ``model_name`` (the worker's sampler and
    model name), ``rig`` and ``pin_feet`` (what edits reuse), ``parent`` (the action an edit came
    from), ``source_action``, ``source`` ("inversion", "shot") and ``to_metres`` (real-motion edits), ``shot``
    (a shot's recipe: its kind, segments, parts, source actions; stored as JSON), ``in_place`` (the root's
    travel was removed; its edits keep it so), ``cyclic`` (Make Cyclic: the blend in scene frames; its
    edits loop too), ``video`` (motion imported from a video, ``source`` "video": the
    recipe — file, field of view, frames read and found, warnings; stored as JSON), ``guided_steps`` (fast
    mode: guidance ran on the first that many steps only; edits regenerate the source the same way).
    """
    seed = int(seed)
    out: dict[str, Any] = {
        "salad_prompt": str(prompt),
        "salad_seed": seed if _INT32[0] <= seed <= _INT32[1] else str(seed),
        "salad_frames": int(frames),
        "salad_model": str(model),
        "salad_guidance": float(guidance),
        "salad_steps": int(steps),
        "salad_edits": json.dumps(list(edits)),
        "salad_source_fps": float(source_fps),
    }
    optional = {
        "salad_scheduler": None if scheduler is None else str(scheduler),
        "salad_model_name": None if model_name is None else str(model_name),
        "salad_rig": None if rig is None else (rig if isinstance(rig, str) else json.dumps(rig)),
        "salad_pin_feet": None if pin_feet is None else bool(pin_feet),
        "salad_parent": parent,
        "salad_source_action": source_action,
        "salad_source": source,
        "salad_to_metres": None if to_metres is None else float(to_metres),
        "salad_shot": None if shot is None else json.dumps(shot),
        "salad_in_place": True if in_place else None,
        "salad_cyclic": int(cyclic) if cyclic else None,
        "salad_video": None if video is None else json.dumps(video),
        "salad_guided_steps": None if guided_steps is None else int(guided_steps),
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out


PREVIEW_KEY = "salad_preview"  # a live re-weight preview Action (preview_actions); deleted only with this key


class MetadataError(JobError):
    """An action's ``salad_*`` custom property does not hold what SALAD wrote (edited by hand, another tool)."""


def _json(kind: type):  # noqa: ANN202 - a parser
    def parse(value: Any) -> Any:
        out = json.loads(value)
        if not isinstance(out, kind):
            raise ValueError(f"not a JSON {'list' if kind is list else 'object'}")
        return out
    return parse


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def read_flag(value: Any) -> bool | None:
    """A yes/no custom property as a bool; None when it reads as neither.

    Why not ``bool(value)``: a hand-edited string ``"no"`` or ``"False"`` is truthy, so a rig marked "no" for
    foot pinning was pinned, and an action marked ``salad_preview = "no"`` counted as a preview (the only
    Actions the add-on ever deletes). Booleans, the integers 0 / 1 and true/false, yes/no, on/off, 1/0 read.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def _flag(value: Any) -> bool:
    out = read_flag(value)
    if out is None:
        raise ValueError("not a yes/no value")
    return out


def _finite(value: Any) -> float:
    out = float(value)
    if not math.isfinite(out):  # NaN / inf cannot travel to the worker (JSON) nor mean a guidance or a scale
        raise ValueError("not finite")
    return out


def _rig(value: Any) -> Any:
    if str(value).startswith("{"):
        _json(dict)(value)
    return value


# How each typed key is read (the rest are kept as stored); what a broken value was expected to be.
_READERS: dict[str, tuple[Any, str]] = {
    "salad_seed": (int, "an integer"), "salad_frames": (int, "an integer"), "salad_steps": (int, "an integer"),
    "salad_guidance": (_finite, "a finite number"), "salad_source_fps": (_finite, "a finite number"),
    "salad_cyclic": (int, "an integer"), "salad_guided_steps": (int, "an integer"),
    "salad_to_metres": (_finite, "a finite number"), "salad_edits": (_json(list), "a JSON list"),
    "salad_shot": (_json(dict), "a JSON object"), "salad_video": (_json(dict), "a JSON object"),
    "salad_rig": (_rig, "a rig name or a JSON bone map"),
    "salad_pin_feet": (_flag, "yes or no"), "salad_in_place": (_flag, "yes or no"), PREVIEW_KEY: (_flag, "yes or no"),
}


def read_metadata(action: Any) -> dict[str, Any]:
    """The SALAD metadata of an action as Python values (seed int, edits list); {} if none.

    A custom property that does not read as what SALAD wrote raises :class:`MetadataError` naming it (it
    raised ValueError deep in a panel's draw, or a traceback from the operators).
    """
    out: dict[str, Any] = {}
    for key in action.keys():
        if key.startswith("salad_"):
            out[key] = action[key]
    for key, (read, what) in _READERS.items():
        if key in out:
            try:
                out[key] = read(out[key])
            except (TypeError, ValueError, OverflowError):
                shown = repr(out[key]) if len(repr(out[key])) <= 24 else repr(out[key])[:21] + "..."
                raise MetadataError(f"The action '{action.name}' has a broken custom property {key} ({shown}, not "
                                    f"{what}): undo that change, or delete the action.") from None
    return out


def metadata_problem(action: Any) -> str:
    """Why a SALAD action's recipe cannot be read ("" = it can): for greyed-out buttons and list rows."""
    try:
        read_metadata(action)
    except MetadataError as exc:
        return str(exc)
    return ""


def is_salad_action(action: Any) -> bool:
    return action is not None and "salad_prompt" in action.keys()


def action_meta(action: Any) -> dict[str, Any]:
    """Metadata of a SALAD action, with defaults for what older actions may lack."""
    meta = read_metadata(action)
    if "salad_prompt" not in meta:
        raise JobError(f"The action '{action.name}' was not made by SALAD (no salad_prompt): generate "
                       "a motion first.")
    meta.setdefault("salad_edits", [])
    meta.setdefault("salad_scheduler", "ddim")
    return meta


def current_prompt(meta: dict[str, Any]) -> str:
    """The prompt an action shows: its last edit's prompt, else its source prompt."""
    for edit in reversed(meta.get("salad_edits") or []):
        if isinstance(edit, dict) and edit.get("edit_prompt"):
            return str(edit["edit_prompt"])
    return str(meta.get("salad_prompt", ""))


def last_why(meta: dict[str, Any]) -> str:
    """Why the worker chose the last edit's mode (shown under the Edit panel)."""
    edits = meta.get("salad_edits") or []
    return str(edits[-1].get("why", "")) if edits and isinstance(edits[-1], dict) else ""


def active_salad_action(obj: Any) -> Any:
    """The SALAD action an object is playing, if any (what the Edit panel works on)."""
    ad = getattr(obj, "animation_data", None)
    act = ad.action if ad is not None else None
    return act if is_salad_action(act) else None


def meta_rig(meta: dict[str, Any]) -> str | dict[str, str]:
    """The rig an action was made for: a preset name or a custom bone map."""
    rig_prop = meta.get("salad_rig", "auto")
    return json.loads(rig_prop) if str(rig_prop).startswith("{") else str(rig_prop)


def regenerate_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """The request fields that regenerate an action's source motion (what its edits start from); a fast-mode
    action's ``guided_steps`` too, so its edits start from the motion that was shown."""
    out = {"seed": int(meta["salad_seed"]), "frames": int(meta["salad_frames"]),
           "guidance": float(meta["salad_guidance"]), "steps": int(meta["salad_steps"]),
           "scheduler": str(meta.get("salad_scheduler") or "ddim")}
    if meta.get("salad_guided_steps") is not None:
        out["guided_steps"] = int(meta["salad_guided_steps"])
    return out


def refuse_inversion(name: str, meta: dict[str, Any]) -> None:
    """Actions made by editing real animation, and shots, have no one-prompt recipe (seed) to regenerate from."""
    if meta.get("salad_source") == "inversion":
        raise JobError(f"The action '{name}' was made by editing real animation, so it cannot be "
                       "regenerated from a seed: use 'Edit selected animation with text' on it instead.")
    if meta.get("salad_source") == "video":
        raise JobError(f"The action '{name}' was imported from a video, so it has no prompt and seed to regenerate "
                       "from: use 'Edit selected animation with text' on it instead.")
    if meta.get("salad_source") == "shot":
        raise JobError(f"The action '{name}' is a shot (several prompts or existing motion), so it cannot be "
                       "regenerated from one prompt and seed: use 'Edit selected animation with text' on it "
                       "instead, or re-roll one of its segments in the Shot panel.")


def shot_recipe(meta: dict[str, Any]) -> dict[str, Any] | None:
    """A shot action's recipe (``kind``: compose, continue, inbetween, regenerate_parts), else None."""
    recipe = meta.get("salad_shot")
    if isinstance(recipe, str):  # straight from the custom property
        recipe = json.loads(recipe)
    return recipe if isinstance(recipe, dict) else None
