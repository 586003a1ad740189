"""What the panels and operator polls decide, as plain functions (no bpy), so every rule is tested headless.

The panels and ``poll()`` methods pass Blender objects in; these functions only read ``type``,
``mode``, ``name``, ``animation_data.action`` and the action's custom properties, so plain stand-ins
work in tests. A rule returns the reason it says no (shown by ``poll_message_set`` and the panels), or
"" when the user may go ahead.
"""

from __future__ import annotations

import textwrap
from typing import Any

from . import loops, metadata, smpl22
from .inputs import split_words, typed_seconds

# Words a user would not want to re-weight first ("a person walks" -> "walks").
_FILLER = frozenset("""a an the person man woman human someone somebody he she they it his her their its and or
then while with of to in on at by for from into onto up down is are was were be being been as this that
slowly quickly""".split())

# Every duration field's name: plain seconds, no unit. Why: Blender's TIME_ABSOLUTE unit picks its own scale, so
# the same kind of field read "500 ms" (a 0.5 s gap), "2.2 s" and "1.21 min" (a 72.6 s segment) in one panel.
DURATION = "Duration (s)"
MIRROR_CAPTION = "a person moves"  # the exact mirror of real animation needs no caption; the worker wants text


def content_words(prompt: str) -> list[str]:
    """The prompt's words without filler, in order (all words if every one is filler)."""
    words = split_words(prompt)
    return [w for w in words if w.lower() not in _FILLER] or words


def default_word(prompt: str) -> str:
    """The word the re-weight picker starts at: the first content word ("" for an empty prompt)."""
    words = content_words(prompt)
    return words[0] if words else ""


def resolve_word(stored: str, prompt: str) -> str:
    """The word a re-weight acts on: the stored one if the prompt has it, else the default word.

    Why: the picker is a string that survives switching to an action with another prompt; a word that
    prompt lacks must not silently become another index or an empty choice.
    """
    low = stored.strip().lower()
    for w in split_words(prompt):
        if w.lower() == low and low:
            return w
    return default_word(prompt)


def armature_of(obj: Any) -> Any:
    """The armature a selection means: the object itself, or the rig that deforms a selected mesh.

    Why: animators click the character's body, not its bones; a mesh's parent armature or the object
    of its first Armature modifier is the rig they mean. Anything else is returned unchanged.
    """
    if obj is None or getattr(obj, "type", "") != "MESH":
        return obj
    parent = getattr(obj, "parent", None)
    if parent is not None and getattr(parent, "type", "") == "ARMATURE":
        return parent
    for mod in getattr(obj, "modifiers", ()):
        rig = getattr(mod, "object", None) if getattr(mod, "type", "") == "ARMATURE" else None
        if rig is not None:
            return rig
    return obj


def armature_blocker(obj: Any) -> str:
    """Why an object cannot take or give a motion ("" when it is an armature outside Edit Mode)."""
    if obj is None:
        return "Select an armature"
    if getattr(obj, "type", "") != "ARMATURE":
        return f"'{obj.name}' is not an armature"
    if getattr(obj, "mode", "OBJECT") == "EDIT":
        return f"'{obj.name}' is in Edit Mode"
    return ""


def linked_blocker(obj: Any) -> str:
    """Why a linked armature cannot take a motion: Python could assign it an action, but the file keeps the
    library's (the result would be lost on reload)."""
    lib = getattr(obj, "library", None)
    if lib is None:
        return ""
    return f"'{obj.name}' is linked from the library '{lib.name}': make it a library override to animate it"


def playing_action(obj: Any) -> Any:
    """The action an object plays (None without animation data)."""
    ad = getattr(obj, "animation_data", None)
    return ad.action if ad is not None else None


def no_action_why(obj: Any, what: str, otherwise: str = "") -> str:
    """Why the armature ``obj`` gives no action to ``what``: after Push Down its motion is in NLA strips, which the
    panel said as "Select an armature that plays an action" while that armature was selected."""
    ad = getattr(obj, "animation_data", None)
    if any(strip.action is not None for track in getattr(ad, "nla_tracks", ()) for strip in track.strips):
        return f"'{obj.name}' plays no action to {what}: its motion is in the NLA; pick a strip's action in the " \
               "Action Editor"
    return f"'{obj.name}' plays no action{otherwise or f' to {what}'}"


def is_inversion(action: Any) -> bool:
    """True for actions made by editing real animation (they have no seed to regenerate from)."""
    return metadata.is_salad_action(action) and action.get("salad_source") == "inversion"


def regenerate_blocker(action: Any) -> str:
    """Why a SALAD action has no one-prompt recipe to regenerate (edits, its heat map): "" for a generation.

    The same cases :func:`metadata.refuse_inversion` refuses, said before a click (a greyed-out button).
    """
    if is_inversion(action):
        return f"'{action.name}' was made from real animation: use Edit Animation with Text"
    source = action.get("salad_source") if metadata.is_salad_action(action) else None
    if source == "video":  # the name is on the line above in the panel: the advice gets the room
        return "A video import has no prompt to edit: use Edit Animation with Text"
    if source == "shot":
        return "A shot has no one prompt: use Regenerate Parts, Edit Animation with Text or Re-roll Segment"
    return ""


def edit_blocker(obj: Any) -> str:
    """Why the SALAD edits (new prompt, re-weight, mirror, attention of the action) cannot run."""
    obj = armature_of(obj)
    why = armature_blocker(obj) or linked_blocker(obj)
    if why:
        return why
    act = playing_action(obj)
    if act is None:
        return no_action_why(obj, "edit", ": generate a motion first")
    if not metadata.is_salad_action(act):
        return "This action was not made by SALAD: use Edit Animation with Text or Regenerate Parts"  # named above
    return metadata.metadata_problem(act) or regenerate_blocker(act)


def real_edit_blocker(obj: Any, what: str = "edit") -> str:
    """Why "Edit Animation with Text" (or another job on the played action: ``what`` it does) cannot run."""
    obj = armature_of(obj)
    why = armature_blocker(obj) or linked_blocker(obj)
    if why:
        return why
    ad = getattr(obj, "animation_data", None)
    if ad is None or ad.action is None:
        return no_action_why(obj, what)
    if getattr(ad, "use_tweak_mode", False):
        return f"'{obj.name}' is in NLA tweak mode"
    return ""


def caption_needed(edit: str, mirror_method: str) -> bool:
    """The exact mirror works on the motion alone; every other real-animation edit needs a caption."""
    return not (edit == "MIRROR" and mirror_method == "geometric")


def frames_summary(model_frames: int, scene_fps: float) -> str:
    """A clip length as the scene counts it, with the model's frames: "95 frames (4.0 s, 80 model frames)" at 24 fps.

    The scene count is the keys the clip gets (:func:`loops.scene_frames`; it said ``round(seconds × fps)``, 96 there,
    one more than the action's keys)."""
    seconds = model_frames / smpl22.FPS
    return f"{loops.scene_frames(model_frames, scene_fps)} frames ({seconds:.1f} s, {model_frames} model frames)"


def model_frames_of(seconds: float) -> int:
    """The frames the model makes of a typed duration: whole latent frames (4 frames, 0.2 s), rounded as the worker
    rounds them (half to even: 2.1 s makes 2.0 s, 2.3 s 2.4 s; at least one)."""
    return 4 * max(1, int(round(typed_seconds(seconds) * smpl22.FPS / 4.0)))


def snap_hint(seconds: float) -> str:
    """"Makes 2.0 s" when a typed duration is not a whole number of latent frames (the worker snaps it), else "".

    The tolerance is the field's float32 precision (~4e-6 at 72 s; a whole 0.2 s step is 0.05 s from any snap):
    at 1e-6 a 72.6 s segment, held as 72.5999985, said "Makes 72.6 s".
    """
    made = model_frames_of(seconds) / smpl22.FPS
    return f"Makes {made:.1f} s" if abs(made - typed_seconds(seconds)) > 1e-4 else ""


def seconds_text(seconds: float) -> str:
    """A duration with its unit, as a list column shows it: "72.6 s", "4 s", "2.25 s" (the field's 2 decimals)."""
    return f"{typed_seconds(seconds):.2f}".rstrip("0").rstrip(".") + " s"


def duration_hint(seconds: float, scene_fps: float) -> str:
    """What a Duration makes in this scene: "95 scene frames at 24 fps" for 4 s (the model's whole latent frames of
    the duration, as its pipeline rounds them, keyed at the scene's fps); "Makes 2.0 s: 47 scene frames at 24 fps"
    for 2.1 s (the field said 2.1 s and nothing told the user the clip would be 2.0 s)."""
    frames = f"{loops.scene_frames(model_frames_of(seconds), scene_fps)} scene frames at {scene_fps:g} fps"
    snapped = snap_hint(seconds)
    return f"{snapped}: {frames}" if snapped else frames


def action_summary(action: Any, scene_fps: float) -> list[str]:
    """Lines describing a SALAD action under its name in the Edit panel (none when its recipe is unreadable:
    the panel says why)."""
    if metadata.metadata_problem(action):
        return []
    meta = metadata.action_meta(action)
    edits = len(meta.get("salad_edits") or [])
    if meta.get("salad_source") == "inversion":
        src = meta.get("salad_source_action", "")
        lines = [f"Edited from the animation '{src}'" if src else "Edited from real animation"]
    else:
        lines = [f"Seed {meta.get('salad_seed')}, " + frames_summary(int(meta.get("salad_frames", 0)), scene_fps)]
    if edits:
        lines.append(f"{edits} edit{'s' if edits != 1 else ''}" +
                     (f", from '{meta['salad_parent']}'" if meta.get("salad_parent") else ""))
    return lines


def fit_lines(text: str, width: int, max_lines: int) -> list[str]:
    """``text`` wrapped to ``width`` characters, at most ``max_lines`` lines; a cut ends in "…"."""
    width = max(8, int(width))
    lines = textwrap.wrap(" ".join((text or "").split()), width) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        lines[-1] = (last if len(last) < width else last[: width - 1].rstrip()) + "…"
    return lines


def chars_for_width(width_px: float, ui_scale: float = 1.0) -> int:
    """How many characters of the interface font fit beside an icon in ``width_px`` (about 6.2 px each at
    scale 1, measured on Blender 4.3's sidebar)."""
    ui_scale = ui_scale if ui_scale > 0 else 1.0  # 0 in background mode
    return max(8, int((width_px - 50 * ui_scale) / (6.2 * ui_scale)))


def apply_hold(mode: str) -> str:
    """Why a finished result waits before it is written ("" to write now): never inside Edit or Sculpt Mode.

    ``mode`` is ``bpy.context.mode`` (EDIT_MESH, EDIT_ARMATURE, SCULPT, POSE, OBJECT, ...): writing an
    action while a mesh or armature is being edited would be lost or clash with the edit undo stack.
    """
    if mode.startswith("EDIT"):
        return "Result ready: leave Edit Mode to apply it"
    if mode.startswith("SCULPT"):
        return "Result ready: leave Sculpt Mode to apply it"
    return ""


def bone_of_path(data_path: str) -> str:
    """The bone an F-curve animates ('pose.bones["hand.L"].location' -> 'hand.L'; "" for other paths)."""
    head = 'pose.bones["'
    if not data_path.startswith(head):
        return ""
    end = data_path.find('"]', len(head))
    return data_path[len(head):end].replace('\\"', '"').replace("\\\\", "\\") if end > 0 else ""


def fits_rig(data_paths: list[str], bone_names: set[str]) -> bool:
    """True when every bone an action animates exists in the rig (it was made for this rig or one like it)."""
    bones = {bone_of_path(p) for p in data_paths}
    bones.discard("")
    return bool(bones) and bones <= bone_names


def action_row(action: Any) -> tuple[str, str]:
    """(label, tooltip-like detail) of a SALAD action in the list: its prompt; seed or source, and parent."""
    if metadata.metadata_problem(action):
        return action.name, "broken custom property: see Edit Motion"
    meta = metadata.action_meta(action)
    prompt = metadata.current_prompt(meta)
    if meta.get("salad_source") == "inversion":
        detail = f"from '{meta.get('salad_source_action', '')}'"
    else:
        detail = f"seed {meta.get('salad_seed')}"
    if meta.get("salad_parent"):
        detail += f", edit of '{meta['salad_parent']}'"
    return prompt, detail


def ab_partner(action: Any, previous: str) -> str:
    """The action an A/B toggle switches to: the parent of an edit, else the edit it was toggled from."""
    if action is None:
        return ""
    parent = str(action.get("salad_parent") or "") if metadata.is_salad_action(action) else ""
    return parent or previous
