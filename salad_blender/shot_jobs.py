"""Shot jobs (issue 13): timelines, re-rolls, continuations, in-betweens and part regeneration as new Actions.

The ``start_*`` functions the Shot panel, ``tools/batch.py`` and the tests share, built like
:mod:`jobs`: every check that can be made up front (segments, prompts, lengths, parts, rig, model)
raises :class:`JobError` before a worker is started or anything is created, and the returned
:class:`motion_job.MotionJob`'s apply step writes one **new** Action; nothing existing is modified
(an action sampled for an in-between is played on the armature only while it is sampled).

Existing motion reaches the worker as SMPL-22 joints sampled from the armature's pose
(:mod:`pose_sampling`, as for real-motion edits), so any action of any rig can be continued,
in-betweened or part-regenerated; the result is placed where the source starts. Each result records
its recipe in ``salad_shot`` (:func:`metadata.make_metadata`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np

from . import actions, armature, kept_channels, metadata, model_limits, real_motion, rigs, smpl22
from . import retarget as rt
from . import shot_inputs as si
from .blender_data import find_again, on_this, place_motion, scene_named
from .inputs import JobError, Sampling, Target, check_model, clean_prompt
from .jobs import check_cyclic, check_rig, check_scene_range, check_source_action, check_target, max_model_frames
from .motion_job import FRAMES_PER_REQUEST, MotionJob, make_job
from .pose_sampling import sample_motion
from .worker_pool import WorkerConfig, WorkerPool


def _prompt(text: str, what: str) -> str:
    prompt = clean_prompt(text)
    if not prompt:
        raise JobError(f"Type a prompt for {what}, e.g. 'a person waves with both hands'.")
    return prompt


# ------------------------------------------------------------------------------------------------
# Timelines


def _pinned_blender(result: dict, pin_feet: bool) -> np.ndarray:
    """The result's joints as the retargeter sees them (feet pinned if asked), in Blender axes."""
    joints = np.asarray(result["joints"], dtype=np.float64)
    if pin_feet and result.get("contacts") is not None:
        joints = rt.pin_contacts(joints, np.asarray(result["contacts"]))
    return smpl22.model_to_blender(joints)


def _kept_scale(target: Target, joints_bl: np.ndarray, leg_length: float) -> rt.Placement | None:
    """The automatic placement on the target armature, at the scale a motion of ``leg_length`` got.

    Why: the automatic scale divides by the motion's median leg length, which a re-rolled segment changes;
    keeping the parent's makes the frames before the re-rolled segment come out key for key the same.
    """
    obj = find_again(target.armature_ref, target.armature, bpy.data.objects) if target.kind == "armature" else None
    if obj is None:
        return None  # place_motion says what is wrong
    rig = armature.rig_rest_from_object(obj)
    _, mapping = rigs.resolve_bone_map(rig.bone_names, target.rig)
    auto = rt.auto_placement(rig, mapping, joints_bl)
    return rt.Placement(scale=auto.scale * rt.motion_leg_length(joints_bl) / leg_length, heading=auto.heading,
                        origin=auto.origin)


def start_compose(config: WorkerConfig, segments: Sequence[si.Segment | dict], sampling: Sampling, target: Target,
                  *, parent: str | None = None, name: str | None = None, leg_length: float | None = None,
                  label: str = "Generate shot", trim_last: bool = True, pool: WorkerPool | None = None) -> MotionJob:
    """Segments (prompt, seconds, optional seed) → one continuous motion as one new Action.

    ``sampling`` gives the shot seed (segments without a seed derive theirs from it), steps, sampler
    and guidance; its duration is ignored (the segments give the length). ``leg_length`` (metres; a
    re-roll passes its parent's) fixes the retarget scale, else it is the motion's own; the recipe
    records it. ``label`` names the job in its messages (a re-roll says so). ``trim_last``: the last segment's
    window ends with the shot (the Shot panel's 'End on Last Segment', on by default; off: appending a segment
    later keeps every earlier frame); the request and the recipe carry it, so a re-roll makes the shot the same way.
    ``parent`` (a re-roll's shot, on the same frames) is recorded, and its Manual Frame Range kept.
    """
    segs = si.check_segments(segments)
    op = si.compose_request(segs, sampling, trim_last)
    check_target(target)
    check_cyclic(target, sum(max_model_frames(seg.seconds) for seg in segs))
    model = check_model(config.model)
    title = name or si.shot_title(segs)
    shot_seed = int(sampling.seed)

    def apply(result: dict) -> bpy.types.Action:
        wmeta = result.get("meta") or {}
        joints_bl = _pinned_blender(result, target.pin_feet)
        leg = float(leg_length) if leg_length else rt.motion_leg_length(joints_bl)
        placement = _kept_scale(target, joints_bl, leg) if leg_length else None
        recipe = {**si.compose_recipe(segs, shot_seed, wmeta, trim_last), "leg_length": leg}
        extra: dict[str, Any] = {"source": "shot", "shot": recipe}
        if parent:
            extra["parent"] = parent
        return place_motion(result, target, prompt="; ".join(s.prompt for s in segs), meta=wmeta, model=model,
                            name=title, edits=[], extra=extra, placement=placement,
                            parent_action=bpy.data.actions.get(parent) if parent else None)

    n = len(segs)
    return make_job("compose", label, config, op, apply, pool,
                    describe=f"Shot of {n} segment{'s' if n > 1 else ''}")


def _kept_look(meta: dict[str, Any]) -> dict[str, Any]:
    """The parent's In Place and Make Cyclic choices, for a result made again from its recipe (as edits keep them)."""
    return {"in_place": bool(meta.get("salad_in_place", False)), "cyclic_blend": int(meta.get("salad_cyclic") or 0)}


def start_reroll_segment(config: WorkerConfig, obj: bpy.types.Object | None, index: int, seed: int, *,
                         action: bpy.types.Action | None = None, scene_range: str = "set",
                         pool: WorkerPool | None = None) -> MotionJob:
    """The active shot again with segment ``index`` (0-based) under ``seed``: a new Action beside it.

    Everything else comes from the shot's recipe (segments with their seeds, model, steps, sampler,
    guidance, rig), so the motion before that segment is unchanged (the model's guarantee) and the
    segments after it follow on from the new one. ``scene_range``: what the result does to the scene's
    frame range (:class:`inputs.Target`; the UI passes "extend" unless 'Set Scene Range' is on).
    """
    check_scene_range(scene_range)
    action = action or metadata.active_salad_action(obj)
    if obj is None or action is None:
        raise JobError("Select an armature that plays a shot made by 'Generate Shot'.")
    meta = metadata.action_meta(action)
    recipe = metadata.shot_recipe(meta)
    named = f"The action '{action.name}'"
    segs = si.reroll(si.recipe_segments(recipe, named), index, seed)
    leg_length = si.recipe_leg_length(recipe, named)
    trim_last = si.recipe_trim_last(recipe, named)
    sampling = Sampling(seed=int(meta["salad_seed"]), guidance=float(meta["salad_guidance"]) or None,
                        steps=int(meta["salad_steps"]), sampler=str(meta.get("salad_scheduler") or "ddim"))
    target = Target(kind="armature", **on_this(obj), rig=metadata.meta_rig(meta),
                    pin_feet=bool(meta.get("salad_pin_feet", True)), start_frame=actions.keys_start(action),
                    scene_range=scene_range, **_kept_look(meta))
    model = check_model(str(meta.get("salad_model") or "demo"))
    return start_compose(config.with_model(model), segs, sampling, target, parent=action.name,
                         name=si.shot_title(segs, f"shot re-roll {index + 1}"), leg_length=leg_length,
                         label=f"Re-roll segment {index + 1}", trim_last=trim_last, pool=pool)


# ------------------------------------------------------------------------------------------------
# Existing motion as a source


@dataclass
class _Source:
    """An action sampled into model space on the armature that plays it (or played it for sampling)."""

    action_name: str
    start: int
    sampled: real_motion.SampledMotion
    action: Any = None  # the Action itself (found again by name if renamed, undone or deleted meanwhile)

    @property
    def frames(self) -> int:
        return len(self.sampled.joints)


def _armature_action(obj: bpy.types.Object | None, action: bpy.types.Action | None, what: str
                     ) -> bpy.types.Action:
    if obj is None or obj.type != "ARMATURE":
        raise JobError(f"Select an armature with an animation to {what}.")
    ad = obj.animation_data
    action = action or (ad.action if ad is not None else None)
    if action is None:
        raise JobError(f"The armature '{obj.name}' has no animation (action) to {what}.")
    if ad is not None and ad.use_tweak_mode:
        raise JobError(f"'{obj.name}' is in NLA tweak mode; leave it first.")
    return action


def _short(action: bpy.types.Action) -> str:
    """A source action's name inside a new one's: without the "SALAD: " the new name gets anyway."""
    return action.name.removeprefix(metadata.ACTION_PREFIX)


def _joined(*parts: bpy.types.Action | str, sep: str) -> str:
    """A result's name from source actions and text with ``sep`` between them: long source names are shortened
    first, then the text; ``sep`` is never cut (it was, before the prompt: "A...B" instead of "A... > B")."""
    texts = [t for p in parts for t in (sep, _short(p) if isinstance(p, bpy.types.Action) else p)][1:]
    sources = [(2 * i, metadata.MIN_SOURCE_BYTES) for i, p in enumerate(parts) if isinstance(p, bpy.types.Action)]
    prompt = [(2 * i, 0) for i, p in enumerate(parts) if isinstance(p, str) and p.strip()]
    return metadata.derived_name(texts, sources + prompt)


def _continued(action: bpy.types.Action, prompt: str) -> str:
    """The name of ``action`` continued by ``prompt`` (a continuation of a continuation counts its levels)."""
    try:  # any animation can be continued: mocap has no SALAD metadata at all
        recipe = metadata.shot_recipe(metadata.read_metadata(action)) or {}
    except metadata.MetadataError:
        recipe = {}
    return metadata.continued_name(_short(action), prompt, chained=recipe.get("kind") == "continue")


_POSE_CHANNELS = ("location", "rotation_quaternion", "rotation_euler", "rotation_axis_angle", "scale")


@contextlib.contextmanager
def _playing(obj: bpy.types.Object, action: bpy.types.Action) -> Iterator[None]:
    """Let ``obj`` play ``action`` while it is sampled; the object is left as it was afterwards.

    The assignment (and slot) before is restored; an armature that had no animation block gets none, and the
    pose channels the played action moved are put back (evaluation writes them into the armature's pose).
    """
    had_data = obj.animation_data is not None
    ad = obj.animation_data_create()
    old_action = ad.action
    has_slots = hasattr(ad, "action_slot")
    old_slot = ad.action_slot if has_slots else None
    if old_action == action:
        yield
        return
    pose = [(pb, {c: tuple(getattr(pb, c)) for c in _POSE_CHANNELS}) for pb in obj.pose.bones] if obj.pose else []
    try:
        ad.action = action
        if has_slots and ad.action_slot is None:
            kinds = ("OBJECT", "UNSPECIFIED")
            slot = next((s for s in action.slots if getattr(s, "target_id_type", "OBJECT") in kinds), None)
            if slot is not None:
                ad.action_slot = slot
        yield
    finally:
        ad.action = old_action
        if has_slots and old_action is not None and old_slot is not None:
            ad.action_slot = old_slot
        if not had_data:
            obj.animation_data_clear()
        for pb, values in pose:
            for c, v in values.items():
                setattr(pb, c, v)


def _source_range(obj: bpy.types.Object, action: bpy.types.Action) -> tuple[int, int]:
    """The scene frames [start, end] of ``action`` a job samples on ``obj`` (its Manual Frame Range if set)."""
    ad = obj.animation_data
    playing = ad is not None and ad.action == action  # else: a slotted action's whole range (a check's estimate)
    lo, hi = actions.slot_frame_range(action, getattr(ad, "action_slot", None) if playing else None)
    start, end = int(np.floor(lo + 1e-6)), int(np.ceil(hi - 1e-6))
    if end <= start:
        raise JobError(f"The action '{action.name}' has a single frame; there is no motion to use.")
    return start, end


def length_problem(model: str, obj: bpy.types.Object, action: bpy.types.Action, what: str,
                   scene: bpy.types.Scene, short: bool = False) -> str:
    """Why ``action`` is longer than the model takes for ``what`` (its longest clip, :mod:`model_limits`), known
    before anything is sampled; "" when it fits or the model's limits are unknown (the worker then says it).
    ``short``: for the panel, under the action's name (the sidebar cut the whole sentence)."""
    limits = model_limits.known(model)
    if limits is None or action is None:
        return ""
    try:
        start, end = _source_range(obj, action)
    except JobError:  # a single frame: the job says so when it starts
        return ""
    fps = actions.scene_fps(scene)
    if real_motion.resampled_count(end - start + 1, fps, limits.fps) <= limits.max_frames:
        return ""
    if short:
        return (f"{(end - start + 1) / fps:.1f} s long; this model takes at most {limits.max_seconds:.1f} s. Set the "
                "action's Manual Frame Range (or trim it).")
    return (f"The action '{action.name}' is {(end - start + 1) / fps:.1f} s long (frames {start}–{end}); this model "
            f"takes at most {limits.max_seconds:.1f} s for {what}. Set a Manual Frame Range on the action (or trim "
            "it) to the part to change.")


def check_request_length(obj: bpy.types.Object, sources: Sequence[bpy.types.Action], scene: bpy.types.Scene,
                         what: str) -> None:
    """Refuse, before they are sampled, sources whose joints one request to the worker cannot hold (a continuation
    or in-between sends them whole: ~149 s at 20 fps; :func:`motion_job.check_request_size` said so after)."""
    fps = actions.scene_fps(scene)
    for a in sources:
        check_source_action(obj, a, "use")  # no keys, no bone moved: said as such, not as a length
    spans = [_source_range(obj, a) for a in sources]
    if sum(real_motion.resampled_count(e - s + 1, fps, smpl22.FPS) for s, e in spans) <= FRAMES_PER_REQUEST:
        return
    long = ", ".join(f"'{a.name}' is {(e - s + 1) / fps:.1f} s (frames {s}–{e})"
                     for a, (s, e) in zip(sources, spans, strict=True))
    raise JobError(f"{what}: {long}; one request to the model worker holds at most "
                   f"{FRAMES_PER_REQUEST / smpl22.FPS:.0f} s of motion. Set a Manual Frame Range on the action (or "
                   "trim it) to the part to use.")


def check_model_length(model: str, obj: bpy.types.Object, action: bpy.types.Action, what: str,
                       scene: bpy.types.Scene) -> None:
    """Refuse, before it is sampled, an action longer than the model takes (:func:`length_problem`)."""
    check_source_action(obj, action, "use")  # no keys, no bone moved: said as such, not as a length
    why = length_problem(model, obj, action, what, scene)
    if why:
        raise JobError(why)


def _sample(obj: bpy.types.Object, action: bpy.types.Action, mapping: dict[str, str],
            scene: bpy.types.Scene) -> _Source:
    """Sample ``action`` over its frame range on ``obj`` into model space (20 fps, metres)."""
    check_source_action(obj, action, "use")
    with _playing(obj, action):
        start, end = _source_range(obj, action)
        sampled = sample_motion(obj, mapping, start, end, scene)
    if not np.all(np.isfinite(sampled.joints)):
        raise JobError(f"The animation '{action.name}' has invalid (NaN) bone positions.")
    return _Source(action.name, start, sampled, action)


@dataclass
class _Sampled:
    """What a job on sampled animation needs: sampling fields, the sources, the bone map, scene and model."""

    fields: dict[str, Any]
    sources: list[_Source]
    bone_map: str | dict[str, str]
    scene: bpy.types.Scene
    model: str


def _sample_sources(config: WorkerConfig, obj: bpy.types.Object, rig: str | dict[str, str],
                    sampling: Sampling | None, wanted: Sequence[tuple[bpy.types.Action, str]],
                    *context_limit: Any) -> _Sampled:
    """Sample each (action, purpose) of ``wanted`` on ``obj``; each must be long enough for its purpose.

    ``context_limit`` (seconds, what they are) replaces the conditioning window as the shortest length.
    """
    fields = si.sampling_fields(sampling or Sampling())
    rig_name, mapping = check_rig(obj, rig)
    scene = bpy.context.scene
    sources = []
    for action, purpose in wanted:
        src = _sample(obj, action, mapping, scene)
        si.check_context(src.frames, action.name, purpose, *context_limit)
        sources.append(src)
    model = check_model(config.model)
    return _Sampled(fields, sources, mapping if rig_name == "custom" else rig_name, scene, model)


def _real_apply(obj_ref: bpy.types.Object, scene_ref: bpy.types.Scene, src: _Source, bone_map: str | dict[str, str], *,
                prompt: str, name: str, seed: int, model: str, pin_feet: bool, recipe: dict[str, Any],
                scene_range: str = "set", same_length: bool = False, then: _Source | None = None):  # noqa: ANN202
    """The apply step of a shot from sampled motion: a new Action on the armature, placed where ``src`` starts.

    ``same_length``: the result keys exactly the source's scene frames (part regeneration). *Keep Other Channels*
    keeps ``src``'s (an in-between's A), not those of whatever the armature plays when the result lands, and from
    where ``then``'s part starts (an in-between's B) ``then``'s; the recipe records where (``handover``)."""
    obj_name, scene_name = obj_ref.name, scene_ref.name

    def apply(result: dict) -> bpy.types.Action:
        target = find_again(obj_ref, obj_name, bpy.data.objects)
        if target is None:
            raise JobError(f"The armature '{obj_name}' was deleted (or undone) meanwhile; nothing was changed.")
        scene = scene_named(scene_name, scene_ref)
        wmeta = result.get("meta") or {}
        contacts = result.get("contacts") if pin_feet else None
        source = find_again(src.action, src.action_name, bpy.data.actions)
        handover = None if then is None else _handover(src, then, result, actions.scene_fps(scene))
        shot = recipe if handover is None else {**recipe, "handover": {
            "a_end": handover.a_end, "b_start": handover.b_start, "b_offset": handover.offset}}
        return actions.apply_motion(
            target, np.asarray(result["joints"], dtype=np.float64), prompt=prompt, name=name, seed=seed,
            model=model, guidance=float(wmeta.get("guidance", 0.0)), steps=int(wmeta.get("steps", 0)),
            bone_map=bone_map, scene=scene, start_frame=src.start, frame_range=scene_range,
            contacts=None if contacts is None else np.asarray(contacts),
            placement=real_motion.real_placement(src.sampled, wmeta),
            max_frames=len(src.sampled.world) if same_length else None, keep_from=source, handover=handover,
            meta={"scheduler": str(wmeta.get("scheduler", "ddim")), "source_action": src.action_name,
                  "source": "shot", "rig": bone_map, "pin_feet": bool(pin_feet),
                  "to_metres": float(src.sampled.to_metres), "shot": shot})

    return apply


def _handover(a: _Source, b: _Source, result: dict, fps: float) -> kept_channels.Handover:
    """Where an in-between's result stops playing A (its last sampled frame, or the gap's start if earlier) and
    plays B (the gap's end, on whole scene frames: the worker's ``meta.shot.gap`` in 20 fps frames, else B's poses
    counted back from the end), and how far B's keys move to get there."""
    shot = (result.get("meta") or {}).get("shot") or {}
    gap = shot.get("gap") or shot.get("seams")
    n = len(result["joints"])
    if not (isinstance(gap, list) and len(gap) == 2 and all(isinstance(g, (int, float)) for g in gap)):
        gap = [len(a.sampled.joints), n - len(b.sampled.joints)]
    b_start = a.start + round(float(gap[1]) * fps / smpl22.FPS)
    a_end = min(a.start + len(a.sampled.world) - 1, int(np.floor(a.start + float(gap[0]) * fps / smpl22.FPS + 1e-6)),
                b_start - 1)  # whole frames, as B's: the boundary keys land on frames
    return kept_channels.Handover(find_again(b.action, b.action_name, bpy.data.actions), float(a_end),
                                  float(b_start), float(b_start - b.start))


def start_continue(config: WorkerConfig, obj: bpy.types.Object | None, prompt: str, seconds: float, *,
                   sampling: Sampling | None = None, rig: str | dict[str, str] = "auto",
                   action: bpy.types.Action | None = None, pin_feet: bool = True, scene_range: str = "set",
                   pool: WorkerPool | None = None) -> MotionJob:
    """The armature's action (any: generated, mocap, keyframed) followed by ``seconds`` of ``prompt``: a new Action.

    The new Action holds the source (as the model reads it) and the continuation, from where the source starts.
    """
    check_scene_range(scene_range)
    action = _armature_action(obj, action, "continue")
    prompt = _prompt(prompt, "the continuation")
    seconds = si.check_seconds(seconds, "The continuation", si.MIN_CONTINUE_SECONDS, si.MAX_SHOT_SECONDS)
    check_request_length(obj, [action], bpy.context.scene, "Continue")
    got = _sample_sources(config, obj, rig, sampling, [(action, "continuing it")])
    src, fields = got.sources[0], got.fields
    op = {"op": "continue", "joints": src.sampled.joints, "prompt": prompt, "seconds": seconds,
          "context_seconds": si.CONTEXT_SECONDS, **fields}
    recipe = {"kind": "continue", "prompt": prompt, "seconds": seconds, "seed": fields["seed"],
              "context_seconds": si.CONTEXT_SECONDS, "sources": [action.name]}
    apply = _real_apply(obj, got.scene, src, got.bone_map, prompt=prompt, name=_continued(action, prompt),
                        seed=fields["seed"], model=got.model, pin_feet=pin_feet, recipe=recipe,
                        scene_range=scene_range)
    return make_job("continue", "Continue", config, op, apply, pool, describe="Continuing")


def start_inbetween(config: WorkerConfig, obj: bpy.types.Object | None, action_a: bpy.types.Action | None,
                    action_b: bpy.types.Action | None, prompt: str, seconds: float, *,
                    sampling: Sampling | None = None, rig: str | dict[str, str] = "auto", pin_feet: bool = True,
                    scene_range: str = "set", pool: WorkerPool | None = None) -> MotionJob:
    """A's motion, a ``seconds`` gap following ``prompt``, then B's motion, as one new Action on the armature.

    Both actions are sampled on ``obj`` (B is played on it only while it is sampled); the result starts
    where A starts.
    """
    check_scene_range(scene_range)
    if action_a is None or action_b is None:
        raise JobError("Pick both actions: A (before the gap) and B (after it).")
    _armature_action(obj, action_a, "in-between")
    prompt = _prompt(prompt, "the in-between")
    seconds = si.check_seconds(seconds, "The in-between gap", si.MIN_GAP_SECONDS, si.MAX_SHOT_SECONDS)
    check_request_length(obj, [action_a, action_b], bpy.context.scene, "In-between")
    got = _sample_sources(config, obj, rig, sampling, [(action_a, "in-betweening from it"),
                                                        (action_b, "in-betweening to it")])
    (src_a, src_b), fields = got.sources, got.fields
    op = {"op": "inbetween", "joints_a": src_a.sampled.joints, "joints_b": src_b.sampled.joints, "prompt": prompt,
          "seconds": seconds, "context_seconds": si.CONTEXT_SECONDS, **fields}
    recipe = {"kind": "inbetween", "prompt": prompt, "seconds": seconds, "seed": fields["seed"],
              "context_seconds": si.CONTEXT_SECONDS, "sources": [action_a.name, action_b.name]}
    apply = _real_apply(obj, got.scene, src_a, got.bone_map, prompt=prompt,
                        name=_joined(action_a, prompt, action_b, sep=" > "), seed=fields["seed"],
                        model=got.model, pin_feet=pin_feet, recipe=recipe, scene_range=scene_range, then=src_b)
    return make_job("inbetween", "In-between", config, op, apply, pool, describe="In-betweening")


def is_plain_generation(meta: dict[str, Any]) -> bool:
    """A SALAD generation without edits: the worker can regenerate its exact latent from the recipe."""
    return not meta.get("salad_edits") and meta.get("salad_source") is None


def start_regenerate_parts(config: WorkerConfig, obj: bpy.types.Object | None, prompt: str, parts: Sequence[str], *,
                           sampling: Sampling | None = None, rig: str | dict[str, str] = "auto",
                           action: bpy.types.Action | None = None, pin_feet: bool = True, scene_range: str = "set",
                           keep_path: bool = False, pool: WorkerPool | None = None) -> MotionJob:
    """Regenerate the chosen body parts of the armature's action from ``prompt``; the others follow it: a new Action.

    ``parts``: presets (arms, legs, upper, lower) and/or latent part names (root, left_leg, right_leg,
    torso, left_arm, right_arm, head). Legs take the root with them unless ``keep_path`` (a kept path under
    new legs slides: :func:`shot_inputs.legs_carry_root`); the recipe records the parts regenerated. A SALAD
    generation without edits is regenerated from its recipe (the exact latent, with its seed); any other action is
    sampled like real motion and ``sampling.seed`` seeds the new parts.
    """
    check_scene_range(scene_range)
    chosen = si.legs_carry_root(si.check_parts(parts), keep_path)
    action = _armature_action(obj, action, "regenerate")
    prompt = _prompt(prompt, "the regenerated parts")
    sampling = sampling or Sampling()
    fields = si.sampling_fields(sampling)
    label = ", ".join(chosen)
    name = metadata.derived_name([prompt, f" [{label}]"], [(0, metadata.MIN_SOURCE_BYTES)])
    recipe: dict[str, Any] = {"kind": "regenerate_parts", "prompt": prompt, "parts": chosen,
                              "sources": [action.name]}
    if metadata.is_salad_action(action) and is_plain_generation(meta := metadata.action_meta(action)):
        src_rig = metadata.meta_rig(meta)
        check_rig(obj, src_rig)
        gen = metadata.regenerate_fields(meta)
        model = check_model(str(meta.get("salad_model") or "demo"))
        op = {"op": "regenerate_parts", "source_prompt": str(meta["salad_prompt"]), "frames": gen["frames"],
              "seed": gen["seed"], "guidance": gen["guidance"], "steps": gen["steps"],
              "scheduler": gen["scheduler"], "prompt": prompt, "parts": chosen, "keep_path": keep_path}
        recipe.update(source="generation", seed=gen["seed"])
        target = Target(kind="armature", **on_this(obj), rig=src_rig,
                        pin_feet=bool(meta.get("salad_pin_feet", pin_feet)),
                        start_frame=actions.keys_start(action), scene_range=scene_range,
                        **_kept_look(meta))
        parent = action.name

        def apply(result: dict) -> bpy.types.Action:
            return place_motion(result, target, prompt=prompt, meta=result.get("meta") or {}, model=model, name=name,
                                edits=[], extra={"parent": parent, "source_action": parent, "source": "shot",
                                                 "shot": recipe},
                                parent_action=find_again(action, parent, bpy.data.actions))

        return make_job("regenerate_parts", "Regenerate parts", config.with_model(model), op, apply, pool,
                        describe=f"Regenerating {label}")
    check_model_length(check_model(config.model), obj, action, "regenerating parts", bpy.context.scene)
    got = _sample_sources(config, obj, rig, sampling, [(action, "regenerating its parts")], si.MIN_SEGMENT_SECONDS,
                          "the model's shortest clip")
    src = got.sources[0]
    op = {"op": "regenerate_parts", "joints": src.sampled.joints, "prompt": prompt, "parts": chosen,
          "keep_path": keep_path, **fields}
    recipe.update(source="animation", seed=fields["seed"])
    apply = _real_apply(obj, got.scene, src, got.bone_map, prompt=prompt, name=name, seed=fields["seed"],
                        model=got.model, pin_feet=pin_feet, recipe=recipe, scene_range=scene_range, same_length=True)
    return make_job("regenerate_parts", "Regenerate parts", config, op, apply, pool,
                    describe=f"Regenerating {label}")
