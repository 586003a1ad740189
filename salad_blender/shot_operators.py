"""Shot operators: edit the segment list, and start the shot jobs of :mod:`shot_jobs` (thin, like :mod:`operators`).

The job operators share :class:`operators._JobOperator`: progress in the panel and status bar, Cancel,
one motion job at a time, ``blocking=True`` for scripts and headless use.
"""

from __future__ import annotations

import random

import bpy
from bpy.props import EnumProperty, IntProperty

from . import jobs, metadata, preferences, shot_jobs, ui_state
from . import shot_inputs as si
from .inputs import check_model
from .operators import _JobOperator, say_no
from .settings import active_rig, scene_range, settings, target_from
from .shot_settings import SALAD_PG_shot_segment, segments_from, shot_sampling, shot_settings, sources_sampling


def _rig(context: bpy.types.Context) -> str | dict[str, str]:
    """The rig setting of the Text to Motion panel (as 'Edit selected animation' reads it)."""
    s = settings(context)
    if s.rig_preset == "CUSTOM":
        return jobs.load_bone_map(s.bone_map_source, s.bone_map_text.name if s.bone_map_text else "",
                                  s.bone_map_file)
    return "auto" if s.rig_preset == "AUTO" else s.rig_preset.lower()


class SALAD_OT_shot_segment_add(bpy.types.Operator):
    """Add a segment after the selected one"""

    bl_idname = "salad.shot_segment_add"
    bl_label = "Add Segment"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = shot_settings(context)
        row = s.segments.add()
        row.seconds = 4.0
        last = len(s.segments) - 1
        at = min(s.active_segment + 1, last) if last else 0
        s.segments.move(last, at)
        s.active_segment = at
        return {"FINISHED"}


class SALAD_OT_shot_segment_remove(bpy.types.Operator):
    """Remove the selected segment"""

    bl_idname = "salad.shot_segment_remove"
    bl_label = "Remove Segment"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        s = shot_settings(context)
        if 0 <= s.active_segment < len(s.segments):
            return True
        return say_no(cls, "Select a segment in the list first" if s.segments else "The shot has no segments")

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = shot_settings(context)
        if not 0 <= s.active_segment < len(s.segments):  # a script can set the index past the end
            self.report({"ERROR"}, f"No segment {s.active_segment + 1} to remove: the shot has {len(s.segments)}.")
            return {"CANCELLED"}
        s.segments.remove(s.active_segment)
        s.active_segment = max(0, min(s.active_segment, len(s.segments) - 1))
        return {"FINISHED"}


class SALAD_OT_shot_segment_move(bpy.types.Operator):
    """Move the selected segment earlier or later in the shot"""

    bl_idname = "salad.shot_segment_move"
    bl_label = "Move Segment"
    bl_options = {"REGISTER", "UNDO"}

    direction: EnumProperty(name="Direction", items=[("UP", "Up", "Earlier"), ("DOWN", "Down", "Later")])

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = shot_settings(context)
        i = s.active_segment
        j = i - 1 if self.direction == "UP" else i + 1
        if not (0 <= i < len(s.segments) and 0 <= j < len(s.segments)):
            return {"CANCELLED"}
        s.segments.move(i, j)
        s.active_segment = j
        return {"FINISHED"}


class SALAD_OT_shot_use_recipe(bpy.types.Operator):
    """Put the active shot's segments (with their seeds) and its End on Last Segment choice into the Shot panel"""

    bl_idname = "salad.shot_use_recipe"
    bl_label = "Use This Shot's Segments"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        act = metadata.active_salad_action(active_rig(context))
        try:
            if act is None:
                raise jobs.JobError("Select an armature that plays a shot made by 'Generate Shot'.")
            recipe = metadata.shot_recipe(metadata.action_meta(act))
            segs = si.recipe_segments(recipe, f"The action '{act.name}'")
            trim_last = si.recipe_trim_last(recipe, f"The action '{act.name}'")
            field = SALAD_PG_shot_segment.bl_rna.properties["seed"].hard_max
            for k, seg in enumerate(segs, 1):  # a batch shot's seed may pass the field's int32: say so, keep the list
                if seg.seed is not None and seg.seed > field:
                    raise jobs.JobError(f"Segment {k}'s seed {seg.seed} is more than the segment list's seed field "
                                        f"holds ({field}); re-roll that segment (a new seed), or edit the shot with "
                                        "tools/batch.py.")
        except jobs.JobError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        s = shot_settings(context)
        s.segments.clear()
        for seg in segs:
            row = s.segments.add()
            row.prompt, row.seconds = seg.prompt, seg.seconds
            row.use_seed, row.seed = seg.seed is not None, int(seg.seed or 0)
        s.active_segment, s.trim_last = 0, trim_last
        return {"FINISHED"}


class SALAD_OT_shot_parts_preset(bpy.types.Operator):
    """Tick the body parts of a preset (the other parts follow the source motion)"""

    bl_idname = "salad.shot_parts_preset"
    bl_label = "Parts Preset"
    bl_options = {"REGISTER", "UNDO"}

    preset: EnumProperty(name="Preset", items=[("arms", "Arms", "Both arms"), ("legs", "Legs", "Both legs"),
                                               ("upper", "Upper body", "Torso, arms and head"),
                                               ("lower", "Lower body", "Root (hips) and legs")])

    def execute(self, context: bpy.types.Context) -> set[str]:
        shot_settings(context).parts = set(si.PART_PRESETS[self.preset])
        return {"FINISHED"}


class SALAD_OT_generate_shot(_JobOperator, bpy.types.Operator):
    """Generate the segment list as one continuous motion in a new Action (runs in the background; Cancel stops it)"""

    bl_idname = "salad.generate_shot"
    bl_label = "Generate Shot"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _JobOperator.poll.__func__(cls, context) and say_no(
            cls, "" if shot_settings(context).segments else "Add a segment (+) to the shot first")

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        s = shot_settings(context)
        return shot_jobs.start_compose(preferences.worker_config(context), segments_from(s), shot_sampling(context),
                                       target_from(context, settings(context)), trim_last=s.trim_last)


class SALAD_OT_reroll_segment(_JobOperator, bpy.types.Operator):
    """Make the active shot again with a new seed for one segment (a new Action; the motion before it stays)"""

    bl_idname = "salad.reroll_segment"
    bl_label = "Re-roll Segment"
    needs = "worker"  # the shot's own model (its recipe)

    seed: IntProperty(name="Seed", default=-1, min=-1, options={"SKIP_SAVE"},
                      description="The segment's new seed (-1: a random one)")

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        seed = self.seed if self.seed >= 0 else random.randint(0, 2**31 - 1)
        return shot_jobs.start_reroll_segment(preferences.worker_config(context), active_rig(context),
                                              shot_settings(context).reroll_segment - 1, seed,
                                              scene_range=scene_range(settings(context)))


class _AnimationJobOperator(_JobOperator):
    """A job on the active armature's animation (continue, in-between, regenerate parts).

    One place reads what these share: the worker, how the sources are sampled, the Text to Motion panel's
    rig, foot pinning and scene-range choice; a subclass says only which job it starts with which of its
    panel's fields. Its button is greyed out, saying why, while there is nothing to act on.
    """

    what = "continue"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _JobOperator.poll.__func__(cls, context) and say_no(cls, cls.blocker(context))

    @classmethod
    def blocker(cls, context: bpy.types.Context) -> str:
        """Why the job cannot start on the active object ("" when it can)."""
        return ui_state.real_edit_blocker(active_rig(context), cls.what)

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        return self.start(context, shot_settings(context), preferences.worker_config(context),
                          sampling=sources_sampling(context), rig=_rig(context), pin_feet=settings(context).pin_feet,
                          scene_range=scene_range(settings(context)))

    def start(self, context: bpy.types.Context, s: bpy.types.PropertyGroup, config: jobs.WorkerConfig,
              **common: object) -> jobs.MotionJob:
        raise NotImplementedError


class SALAD_OT_continue_action(_AnimationJobOperator, bpy.types.Operator):
    """Continue the active armature's action (any animation) with a prompt, into a new Action"""

    bl_idname = "salad.continue_action"
    bl_label = "Continue Selected Action"

    def start(self, context: bpy.types.Context, s: bpy.types.PropertyGroup, config: jobs.WorkerConfig,
              **common: object) -> jobs.MotionJob:
        return shot_jobs.start_continue(config, active_rig(context), s.continue_prompt, s.continue_seconds,
                                        **common)


class SALAD_OT_inbetween(_AnimationJobOperator, bpy.types.Operator):
    """Fill a gap between the end of action A and the start of action B (on the active armature) with a prompt"""

    bl_idname = "salad.inbetween"
    bl_label = "In-between"

    @classmethod
    def blocker(cls, context: bpy.types.Context) -> str:
        """A and B are picked and each moves the armature's bones; the armature need not play anything (each is
        played on it while it is sampled) but must take the result (not linked, not in NLA tweak mode).

        A linked A or B is fine: it is only read, on bpy 4.2 and 5.0 alike (the result is a new local Action;
        tests/salad_blender/test_inbetween_linked.py)."""
        s = shot_settings(context)
        obj = active_rig(context)
        why = ui_state.armature_blocker(obj) or ui_state.linked_blocker(obj)
        if why:
            return why
        if getattr(obj.animation_data, "use_tweak_mode", False):
            return f"'{obj.name}' is in NLA tweak mode"
        if s.action_a is None or s.action_b is None:
            return "Pick both actions: A (before the gap) and B (after it)"
        return jobs.source_action_problem(obj, s.action_a, "in-between") or \
            jobs.source_action_problem(obj, s.action_b, "in-between")

    def start(self, context: bpy.types.Context, s: bpy.types.PropertyGroup, config: jobs.WorkerConfig,
              **common: object) -> jobs.MotionJob:
        return shot_jobs.start_inbetween(config, active_rig(context), s.action_a, s.action_b, s.inbetween_prompt,
                                         s.inbetween_seconds, **common)


class SALAD_OT_regenerate_parts(_AnimationJobOperator, bpy.types.Operator):
    """Regenerate the ticked body parts of the active armature's action from a prompt, into a new Action"""

    bl_idname = "salad.regenerate_parts"
    bl_label = "Regenerate Parts"
    what = "regenerate"

    @classmethod
    def blocker(cls, context: bpy.types.Context) -> str:
        why = super().blocker(context)
        if why or not shot_settings(context).parts:
            return why or "No body part selected: tick the parts to regenerate"
        return cls.too_long(context)

    @classmethod
    def too_long(cls, context: bpy.types.Context, short: bool = False) -> str:
        """Why the sampled action is longer than the chosen model takes ("" when it fits, is regenerated from its
        recipe, or the limits are unknown): said before a click would sample it for nothing (``short``: the
        panel's words)."""
        obj = active_rig(context)
        if cls.needed(context) == "worker" or obj is None or obj.animation_data is None:
            return ""
        try:
            model = check_model(preferences.worker_config(context).model)
        except jobs.JobError:  # no usable model: the setup check says so
            return ""
        return shot_jobs.length_problem(model, obj, obj.animation_data.action, "regenerating parts", context.scene,
                                        short)

    @classmethod
    def needed(cls, context: bpy.types.Context) -> str:
        """A plain SALAD generation is regenerated with its own model; other animation with the chosen one."""
        act = metadata.active_salad_action(active_rig(context))
        try:
            plain = act is not None and shot_jobs.is_plain_generation(metadata.action_meta(act))
        except jobs.JobError:  # a broken recipe (MetadataError): the edit buttons say why
            plain = False
        return "worker" if plain else "model"

    def start(self, context: bpy.types.Context, s: bpy.types.PropertyGroup, config: jobs.WorkerConfig,
              **common: object) -> jobs.MotionJob:
        return shot_jobs.start_regenerate_parts(config, active_rig(context), s.parts_prompt, sorted(s.parts),
                                                keep_path=s.keep_path, **common)


classes = (
    SALAD_OT_shot_segment_add,
    SALAD_OT_shot_segment_remove,
    SALAD_OT_shot_segment_move,
    SALAD_OT_shot_use_recipe,
    SALAD_OT_shot_parts_preset,
    SALAD_OT_generate_shot,
    SALAD_OT_reroll_segment,
    SALAD_OT_continue_action,
    SALAD_OT_inbetween,
    SALAD_OT_regenerate_parts,
)
