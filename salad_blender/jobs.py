"""Generation, edit, attention and check jobs: the ``start_*`` functions the UI, ``tools/batch.py`` and the tests share.

One code path for all three: each ``start_*`` checks everything that can be checked up front
(prompt, rig, bone map, interpreter, model folder) and raises :class:`JobError` before anything is
spawned or created, then returns a :class:`motion_job.MotionJob` whose apply step (a closure here)
writes the result through :mod:`blender_data`. Failures and cancels after the start leave the scene
as it was.

Edits are stateless: they regenerate from the selected action's metadata (see :mod:`metadata`); the
new action records the parent's edit chain plus the new edit. Any other animation (mocap, hand keys)
is edited by :func:`start_edit_real`: its pose is sampled into SMPL-22 joints (:mod:`pose_sampling`),
which the worker inverts under a user caption and edits; the result is a new Action placed where the
original starts (:mod:`real_motion`).

The names callers use from the pieces (``JobError``, ``Sampling``, ``Target``, ``WorkerConfig``,
``POOL``, ``MotionJob``, ...) are importable from here too.
"""

from __future__ import annotations

import json
import os
from typing import Any

import bpy
import numpy as np

from . import actions, armature, heatmap, loops, metadata, real_motion, rigs, ui_state
from .blender_data import find_again, on_this, place_motion, scene_named
from .inputs import (  # noqa: F401 - re-exported for callers of the job API
    MIRROR_METHODS,
    MIRROR_SIDES,
    PREFS_HINT,
    RIG_PRESETS,
    SAMPLERS,
    SCENE_RANGES,
    JobError,
    Sampling,
    Target,
    check_model,
    clean_prompt,
    edit_choice,
    inversion_fields,
    parse_bone_map,
    resolve_python,
    split_words,
)
from .metadata import (  # noqa: F401 - re-exported
    ACTION_PREFIX,
    action_meta,
    active_salad_action,
    current_prompt,
    is_salad_action,
    last_why,
    meta_rig,
    refuse_inversion,
    regenerate_fields,
)
from .motion_job import POLL_INTERVAL, MotionJob, check_summary, make_job  # noqa: F401 - re-exported
from .pose_sampling import sample_motion
from .ui_state import MIRROR_CAPTION
from .worker_pool import POOL, WorkerConfig, WorkerPool  # noqa: F401 - re-exported

# Names that lived here before the split (issue 17): still importable, with a DeprecationWarning.
_MOVED = {
    "resample_positions": ("real_motion", "resample_positions"),
    "real_placement": ("real_motion", "real_placement"),
    "SampledMotion": ("real_motion", "SampledMotion"),
    "HUMAN_HIP_HEIGHT": ("real_motion", "HUMAN_HIP_HEIGHT"),
    "TARGET_HIP_HEIGHT": ("real_motion", "TARGET_HIP_HEIGHT"),
    "MIN_REAL_FRAMES": ("real_motion", "MIN_REAL_FRAMES"),
    "facing_heading": ("facing", "model_heading"),
    "rig_to_metres": ("pose_sampling", "rig_to_metres"),
    "sample_world_joints": ("pose_sampling", "sample_world_joints"),
    "new_body": ("blender_data", "new_body"),
    "describe_worker_error": ("motion_job", "describe_worker_error"),
    "HELLO_TIMEOUT": ("motion_job", "HELLO_TIMEOUT"),
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    import warnings

    module, attr = _MOVED[name]
    warnings.warn(f"salad_blender.jobs.{name} moved to salad_blender.{module}.{attr}", DeprecationWarning,
                  stacklevel=2)
    return getattr(importlib.import_module(f".{module}", __package__), attr)

# ------------------------------------------------------------------------------------------------
# Inputs that need Blender


def load_bone_map(source: str, text_name: str = "", path: str = "") -> dict[str, str]:
    """A custom bone map from a Blender text datablock ("TEXT") or a JSON file ("FILE")."""
    if source == "TEXT":
        text = bpy.data.texts.get(text_name)
        if text is None:
            raise JobError("Pick the text datablock that holds the custom bone map (JSON).")
        return parse_bone_map(text.as_string(), f"bone map text '{text_name}'")
    p = bpy.path.abspath(path) if path else ""
    if not p or not os.path.isfile(p):
        raise JobError(f"The bone map file '{path}' does not exist.")
    with open(p, encoding="utf-8") as fh:
        return parse_bone_map(fh.read(), f"bone map file '{path}'")


def check_rig(obj: bpy.types.Object | None, rig: str | dict[str, str]) -> tuple[str, dict[str, str]]:
    """Resolve and side-check the bone map of an armature now, so a wrong rig fails before sampling.

    Returns (preset name or "custom", bone map).
    """
    if obj is None:
        raise JobError("Select an armature (or choose 'New SMPL-22 body' as the target).")
    if obj.type != "ARMATURE":
        raise JobError(f"'{obj.name}' is a {obj.type.lower()}, not an armature. Select an armature or "
                       "choose 'New SMPL-22 body' as the target.")
    if obj.mode == "EDIT":
        raise JobError(f"'{obj.name}' is in Edit Mode; switch to Object or Pose Mode first.")
    if obj.animation_data is not None and obj.animation_data.use_tweak_mode:  # refused only after generating
        raise JobError(f"'{obj.name}' is in NLA tweak mode; leave it first (Tab in the NLA editor).")
    if obj.library is not None:  # Python may assign it an action, but the file keeps the library's
        raise JobError(f"'{obj.name}' is linked from the library '{obj.library.name}', so its animation cannot be "
                       "changed in this file: make it a library override (Object > Library Override > Make) "
                       "or local first.")
    try:
        rest = armature.rig_rest_from_object(obj)
        name, mapping = rigs.resolve_bone_map(rest.bone_names, rig)
        rigs.check_sides(rest, mapping)
    except rigs.RigError as exc:
        raise JobError(f"The armature '{obj.name}' cannot take the motion: {exc} Choose the right rig "
                       "preset or a custom bone map, or target a new SMPL-22 body.") from exc
    return name, mapping


def check_source_action(obj: bpy.types.Object, action: bpy.types.Action, verb: str) -> None:
    """An action to sample on ``obj`` must key some of its bones (not be empty, nor a camera's or a cube's)."""
    why = source_action_problem(obj, action, verb)
    if why:
        raise JobError(why)


def source_action_problem(obj: bpy.types.Object, action: bpy.types.Action, verb: str) -> str:
    """Why ``action`` gives ``obj`` no motion to ``verb`` ("" when it keys some of its bones); a poll's reason too."""
    curves = actions.action_fcurves(action)
    if not curves:
        return f"The action '{action.name}' has no keyframes; there is no motion to {verb}."
    bones = {b.name for b in obj.data.bones}
    if not any(ui_state.bone_of_path(fc.data_path) in bones for fc in curves):
        return f"The action '{action.name}' animates no bone of '{obj.name}'; pick an action made for this armature."
    return ""


def check_target(target: Target) -> None:
    """Check a result's target now and resolve its rig presets (generate, shots, video import).

    A new body needs nothing; an armature (and each other selected armature of 'All Selected') must
    take the motion under the preset, each resolved on its own rig, so a wrong one fails before the
    worker runs. Sets ``target.rig``, ``target.other_rigs`` and ``target.scene``.
    """
    if target.kind == "armature":
        name, mapping = check_rig(find_again(target.armature_ref, target.armature, bpy.data.objects)
                                  if target.armature else None, target.rig)
        preset = target.rig
        target.rig = mapping if name == "custom" else name  # edits reuse what auto-detection found
        others = tuple(n for n in dict.fromkeys(target.others) if n != target.armature)
        target.others, target.other_refs = others, tuple(target.other_ref(n) for n in others)
        for other, ref in zip(others, target.other_refs, strict=True):  # all selected armatures: each checked now
            o_name, o_map = check_rig(find_again(ref, other, bpy.data.objects), preset)
            target.other_rigs[other] = o_map if o_name == "custom" else o_name
    elif target.kind != "new":
        raise JobError(f"Unknown target '{target.kind}'.")
    if not target.scene:
        target.scene, target.scene_ref = bpy.context.scene.name, bpy.context.scene


def check_cyclic(target: Target, model_frames: int) -> None:
    """Make Cyclic: refuse now a blend the clip cannot hold (it failed only after the motion was made).

    ``model_frames``: the most the worker can return (20 fps); the scene's keys follow from its fps.
    """
    if not target.cyclic_blend:
        return
    frames = loops.scene_frames(model_frames, actions.scene_fps(scene_named(target.scene)))
    why = loops.blend_problem(frames, target.cyclic_blend)
    if why:
        raise JobError(f"Make Cyclic: {why}. Lower Blend Frames or make the clip longer.")


def max_model_frames(seconds: float) -> int:
    """The most frames the worker makes of ``seconds`` (whole latent frames of 4, rounded up)."""
    return 4 * int(np.ceil(float(seconds) * 20.0 / 4.0 - 1e-9))


def check_scene_range(scene_range: str) -> None:
    if scene_range not in SCENE_RANGES:
        raise JobError(f"scene_range must be one of {', '.join(SCENE_RANGES)}, not '{scene_range}'.")


# ------------------------------------------------------------------------------------------------
# Starting jobs (all checks first; raise JobError before anything is spawned or created)


def start_generate(config: WorkerConfig, prompt: str, sampling: Sampling, target: Target, *,
                   pool: WorkerPool | None = None) -> MotionJob:
    """Text → a new Action on a new SMPL-22 body or on an existing armature."""
    prompt = clean_prompt(prompt)
    if not prompt:
        raise JobError("Type a prompt first, e.g. 'a person walks forward and waves with the right hand'.")
    sampling.check()
    check_scene_range(target.scene_range)
    check_target(target)
    check_cyclic(target, sampling.frames if sampling.frames is not None else max_model_frames(sampling.seconds))
    model = check_model(config.model)

    def apply(result: dict) -> bpy.types.Action:
        meta = result.get("meta") or {}
        return place_motion(result, target, prompt=prompt, meta=meta, model=model, name=prompt,
                            edits=[], extra={})

    op = {"op": "generate", "prompt": prompt, **sampling.fields(), **({"fast": True} if sampling.fast else {})}
    return make_job("generate", "Generate", config, op, apply, pool, describe="Sampling")


def start_edit(config: WorkerConfig, obj: bpy.types.Object | None, *, new_prompt: str | None = None,
               word: str | None = None, scale: float | None = None, mirror: str | None = None,
               mirror_method: str = "geometric", action: bpy.types.Action | None = None,
               scene_range: str = "set", pool: WorkerPool | None = None) -> MotionJob:
    """Edit the object's SALAD action into a new Action (the old one stays untouched).

    Exactly one of: ``new_prompt`` (word swap or refinement, the worker picks and says why),
    ``word`` + ``scale`` (re-weight), ``mirror`` ("lower", "upper", "all"; ``mirror_method`` "geometric" =
    exact, "attention" = the paper's). The model comes from the
    action's metadata (edits regenerate the same source), device and threads from ``config``.
    ``scene_range``: what happens to the scene's frame range ("set", "extend", "keep").
    """
    action = action or active_salad_action(obj)
    if obj is None or action is None:
        raise JobError("Select an armature that plays a SALAD action (generate a motion first).")
    meta = action_meta(action)
    refuse_inversion(action.name, meta)
    check_scene_range(scene_range)
    source = current_prompt(meta)
    rig = meta_rig(meta)
    check_rig(obj, rig)
    fields, name, what, _ = edit_choice(source, "current prompt", new_prompt, word, scale, mirror, mirror_method)
    req: dict[str, Any] = {"op": "edit", "source_prompt": source, **regenerate_fields(meta), **fields}
    model = check_model(str(meta.get("salad_model") or "demo"))
    start = actions.keys_start(action)
    target = Target(kind="armature", **on_this(obj), rig=rig,
                    pin_feet=bool(meta.get("salad_pin_feet", True)), start_frame=start, scene_range=scene_range,
                    in_place=bool(meta.get("salad_in_place", False)),
                    cyclic_blend=int(meta.get("salad_cyclic", 0)))
    parent_edits = list(meta["salad_edits"])
    parent_name = action.name

    def apply(result: dict) -> bpy.types.Action:
        wmeta = result.get("meta") or {}
        edits = parent_edits + list(wmeta.get("edits") or [])
        return place_motion(result, target, prompt=source, meta=wmeta, model=model, name=name,
                            edits=edits, extra={"parent": parent_name},
                            parent_action=find_again(action, parent_name, bpy.data.actions))

    return make_job("edit", what, config.with_model(model), req, apply, pool, describe=f"{what}: sampling")


def start_edit_real(config: WorkerConfig, obj: bpy.types.Object | None, caption: str, *,
                    new_prompt: str | None = None, word: str | None = None, scale: float | None = None,
                    mirror: str | None = None, mirror_method: str = "geometric",
                    rig: str | dict[str, str] = "auto",
                    action: bpy.types.Action | None = None, frame_range: tuple[int, int] | None = None,
                    steps: int | None = None, null_text_iters: int | None = None, guidance: float | None = None,
                    pin_feet: bool = True, scene_range: str = "set", pool: WorkerPool | None = None) -> MotionJob:
    """Edit any animation of an armature (mocap, keyframed, a SALAD action) with text: a new Action.

    The action (default: the active one) is sampled over its frame range (or ``frame_range``) into
    SMPL-22 joints, sent with ``caption`` (what the animation shows; optional for the exact
    mirror, which never uses it) to the worker's ``edit_real``
    with exactly one edit (``new_prompt``, ``word`` + ``scale`` or ``mirror``), and the result is
    written as a new Action placed where the original starts. The original action is not modified.
    """
    if obj is None or obj.type != "ARMATURE":
        raise JobError("Select an armature with an animation to edit.")
    ad = obj.animation_data
    action = action or (ad.action if ad is not None else None)
    if action is None:
        raise JobError(f"The armature '{obj.name}' has no animation (action) to edit.")
    if ad is not None and ad.use_tweak_mode:
        raise JobError(f"'{obj.name}' is in NLA tweak mode; leave it first.")
    if ad is None or ad.action != action:
        raise JobError(f"The action '{action.name}' is not the one '{obj.name}' plays; assign it first.")
    check_scene_range(scene_range)
    caption = clean_prompt(caption)
    uncaptioned = not caption and bool(mirror) and mirror_method == "geometric"
    if uncaptioned:
        caption = MIRROR_CAPTION  # the exact mirror uses the motion alone; the worker still wants a text
    if not caption:
        raise JobError("Describe the animation first (e.g. 'a person walks'): the model needs a caption of "
                       "what the original motion shows.")
    rig_name, mapping = check_rig(obj, rig)
    fields, name, what, edit = edit_choice(caption, "caption", new_prompt, word, scale, mirror, mirror_method)
    if uncaptioned:
        name = metadata.derived_name([action.name.removeprefix(ACTION_PREFIX), f" [mirror {mirror}]"],
                                     [(0, metadata.MIN_SOURCE_BYTES)])
    req: dict[str, Any] = {"op": "edit_real", "prompt": caption, **fields,
                           **inversion_fields(steps, null_text_iters, guidance)}
    scene = bpy.context.scene
    if frame_range is None:
        ad = obj.animation_data
        playing = ad is not None and ad.action == action
        lo, hi = actions.slot_frame_range(action, getattr(ad, "action_slot", None) if playing else None)
        frame_range = (int(np.floor(lo + 1e-6)), int(np.ceil(hi - 1e-6)))
    start, end = int(frame_range[0]), int(frame_range[1])
    check_source_action(obj, action, "edit")
    if end <= start:
        raise JobError(f"The action '{action.name}' has a single frame; there is no motion to edit.")
    sampled = sample_motion(obj, mapping, start, end, scene)
    real_motion.check_sampled(sampled.joints, obj.name)
    req["joints"] = sampled.joints
    model = check_model(config.model)
    obj_name, scene_name, source_name = obj.name, scene.name, action.name
    bone_map: str | dict[str, str] = mapping if rig_name == "custom" else rig_name

    def apply(result: dict) -> bpy.types.Action:
        target = find_again(obj, obj_name, bpy.data.objects)
        if target is None:
            raise JobError(f"The armature '{obj_name}' was deleted (or undone) during the edit; nothing was changed.")
        sc = scene_named(scene_name, scene)
        wmeta = result.get("meta") or {}
        joints = np.asarray(result["joints"], dtype=np.float64)
        contacts = result.get("contacts") if pin_feet else None
        edits = [{"op": "edit_real", **edit, **{k: wmeta[k] for k in ("mode", "why", "windows") if k in wmeta}}]
        return actions.apply_motion(
            target, joints, prompt=caption, name=name, seed=0, model=model,
            guidance=float(wmeta.get("guidance", 0.0)), steps=int(wmeta.get("steps", req.get("steps", 0))),
            edits=edits, bone_map=bone_map, scene=sc, start_frame=start,
            contacts=None if contacts is None else np.asarray(contacts), frame_range=scene_range,
            placement=real_motion.real_placement(sampled, wmeta), max_frames=end - start + 1,
            meta={"source_action": source_name, "source": "inversion", "rig": bone_map, "pin_feet": bool(pin_feet),
                  "to_metres": float(sampled.to_metres)})

    return make_job("edit_real", f"{what} (real motion)", config, req, apply, pool,
                    describe=f"{what}: inverting and editing")


def start_attention(config: WorkerConfig, *, action: bpy.types.Action | None = None, prompt: str = "",
                    sampling: Sampling | None = None, normalize: str = "global",
                    image_name: str = heatmap.IMAGE_NAME, pool: WorkerPool | None = None) -> MotionJob:
    """Cross-attention heat map of an action's generation (or of a prompt) → image "SALAD attention"."""
    if action is not None:
        meta = action_meta(action)
        refuse_inversion(action.name, meta)
        prompt = current_prompt(meta)
        fields = regenerate_fields(meta)
        fields.pop("guided_steps", None)  # the attention op samples with guidance on every step
        model = check_model(str(meta.get("salad_model") or "demo"))
    else:
        prompt = clean_prompt(prompt)
        if not prompt:
            raise JobError("Type a prompt first.")
        sampling = sampling or Sampling()
        sampling.check()
        fields = sampling.fields()
        model = check_model(config.model)

    def apply(result: dict) -> bpy.types.Image:
        rgba, words = heatmap.heatmap_pixels(prompt, list(result["tokens"]), np.asarray(result["maps"]),
                                             normalize=normalize)
        img = heatmap.to_blender_image(rgba, image_name)
        img["salad_words"] = json.dumps(words)
        img["salad_prompt"] = prompt
        return img

    op = {"op": "attention", "prompt": prompt, **fields}
    return make_job("attention", "Attention map", config.with_model(model), op, apply, pool,
                    describe="Recording attention")


def start_check(config: WorkerConfig, *, pool: WorkerPool | None = None) -> MotionJob:
    """Start the worker, load the model and report versions and device (the preferences' Check)."""
    pool = pool or POOL

    def apply(result: dict) -> dict:
        hello = dict(pool.client.info or {}) if pool.client is not None else {}
        report = {"hello": hello, "model": result}
        job.message = check_summary(report)
        return report

    job = make_job("check", "Check", config, {"op": "model_info"}, apply, pool, describe="Reading model info")
    return job


def shutdown() -> None:
    """End the session's worker (add-on unregister, Blender exit)."""
    POOL.close()
