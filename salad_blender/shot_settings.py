"""Scene settings of the Shot panel (``scene.salad_shot``): the segment list, continue, in-between, part toggles.

Saved with the .blend, like ``scene.salad`` (:mod:`settings`), whose sampling (steps, sampler,
guidance), target and rig settings shots share. Also the readers that turn these into job inputs.
"""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from . import actions, ui_state
from . import shot_inputs as si
from .inputs import Sampling

_PART_LABELS = {"root": "Root", "left_leg": "Left leg", "right_leg": "Right leg", "torso": "Torso",
                "left_arm": "Left arm", "right_arm": "Right arm", "head": "Head"}
# (Enum items built here: the annotations are evaluated later, where a comprehension sees no module names.)
_PART_ITEMS = [(p, _PART_LABELS[p], f"Regenerate the {_PART_LABELS[p].lower()}", 1 << i)
               for i, p in enumerate(si.PART_NAMES)]


def bone_action(_self: object, action: bpy.types.Action) -> bool:
    """The A / B pickers offer actions that move bones (not a camera's, a light's or a cube's)."""
    return any(fc.data_path.startswith("pose.bones[") for fc in actions.action_fcurves(action))


class SALAD_PG_shot_segment(bpy.types.PropertyGroup):
    """One row of the timeline.

    Durations are plain seconds (:data:`ui_state.DURATION`) with precision 2: the value held, as typed to the
    hundredth (Blender's time unit showed 0.5 s as "500 ms" and 72.6 s as "1.21 min").
    """

    prompt: StringProperty(name="Prompt", default="",
                           description="What happens in this segment, in plain English")
    seconds: FloatProperty(name=ui_state.DURATION, default=4.0, min=si.MIN_SEGMENT_SECONDS, max=si.MAX_SHOT_SECONDS,
                           soft_max=30.0, step=50, precision=2,
                           description="Length of this segment in seconds (longer ones are made in several "
                                       "windows)")
    use_seed: BoolProperty(name="Own seed", default=False,
                           description="Give this segment its own seed (otherwise it is derived from the shot seed "
                                       "and the segment's position)")
    seed: IntProperty(name="Seed", default=0, min=0, description="This segment's seed")


class SALAD_PG_shot(bpy.types.PropertyGroup):
    segments: CollectionProperty(type=SALAD_PG_shot_segment)
    active_segment: IntProperty(name="Segment", default=0, min=0)
    seed: IntProperty(name="Shot seed", default=0, min=0,
                      description="Same segments + shot seed = same motion; segments without their own seed derive "
                                  "theirs from it")
    trim_last: BoolProperty(name="End on Last Segment", default=True,
                            description="Generate the last segment as a clip that ends with the shot, instead of "
                                        "running its window 0.8 s past the end and cutting it: its action comes out "
                                        "more often. The cost: a segment added after it later re-makes its motion. "
                                        "Untick to keep every frame when appending segments")
    reroll_segment: IntProperty(name="Segment", default=1, min=1,
                                description="The segment of the active shot to re-roll (1 = the first)")
    continue_prompt: StringProperty(name="Then", default="",
                                    description="What happens after the selected action, e.g. 'a person sits down'")
    continue_seconds: FloatProperty(name=ui_state.DURATION, default=3.0, min=si.MIN_CONTINUE_SECONDS,
                                    max=si.MAX_SHOT_SECONDS, soft_max=20.0, step=50, precision=2,
                                    description="How long the continuation lasts")
    action_a: PointerProperty(name="A", type=bpy.types.Action, poll=bone_action,
                              description="The action before the gap (played on the active armature)")
    action_b: PointerProperty(name="B", type=bpy.types.Action, poll=bone_action,
                              description="The action after the gap (played on the active armature)")
    inbetween_prompt: StringProperty(name="Gap", default="",
                                     description="What happens between the end of A and the start of B")
    inbetween_seconds: FloatProperty(name=ui_state.DURATION, default=2.0, min=si.MIN_GAP_SECONDS,
                                     max=si.MAX_SHOT_SECONDS, soft_max=7.8, step=50, precision=2,
                                     description="Length of the gap (at most what one model window holds beside "
                                                 "2 × the conditioning context; the worker says the exact limit)")
    parts: EnumProperty(name="Parts", options={"ENUM_FLAG"}, default=set(),
                        items=_PART_ITEMS,
                        description="Body parts to regenerate; the others follow the source motion")
    keep_path: BoolProperty(name="Keep Path", default=False,
                            description="Keep the source's root path when only legs are regenerated (off: the root "
                                        "is regenerated with them; a kept path under new legs makes the feet slide)")
    parts_prompt: StringProperty(name="Prompt", default="",
                                 description="What the regenerated parts do, e.g. 'a person waves with both hands'")


def shot_settings(context: bpy.types.Context) -> SALAD_PG_shot:
    return context.scene.salad_shot


def segments_from(s: SALAD_PG_shot) -> list[si.Segment]:
    """The list as job input (unchecked: :func:`shot_inputs.check_segments` says what is wrong)."""
    return [si.Segment(row.prompt, float(row.seconds), int(row.seed) if row.use_seed else None)
            for row in s.segments]


def shot_sampling(context: bpy.types.Context) -> Sampling:
    """The shot seed with the Text to Motion panel's steps, sampler and guidance."""
    g = context.scene.salad
    return Sampling(seed=shot_settings(context).seed, guidance=_guidance(g), steps=g.steps, sampler=g.sampler)


def sources_sampling(context: bpy.types.Context) -> Sampling:
    """Continue / in-between / parts: the Text to Motion panel's seed and sampling."""
    g = context.scene.salad
    return Sampling(seed=g.seed, guidance=_guidance(g), steps=g.steps, sampler=g.sampler)


def _guidance(g: bpy.types.PropertyGroup) -> float | None:
    """The panel's guidance, or None (the model's own) while 'Model Default' is ticked, as Generate reads it."""
    return None if g.use_model_guidance else g.guidance


classes = (SALAD_PG_shot_segment, SALAD_PG_shot)


def register() -> None:
    """Add ``scene.salad_shot`` (after :data:`classes` are registered)."""
    bpy.types.Scene.salad_shot = PointerProperty(type=SALAD_PG_shot)


def unregister() -> None:
    del bpy.types.Scene.salad_shot
