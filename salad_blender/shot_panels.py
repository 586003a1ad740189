"""The Shot panel (segment list, Generate Shot, re-roll, continue, in-between) and the Edit panel's Regenerate Parts.

Panels only draw: settings live in ``scene.salad_shot`` (:mod:`shot_settings`), jobs in
:data:`runner.RUNNER`, every button is an operator of :mod:`shot_operators`.
"""

from __future__ import annotations

import bpy

from . import metadata, smpl22, ui_state
from . import shot_inputs as si
from .inputs import JobError
from .panels import JOB_KINDS, draw_job, prop_with_placeholder, wrapped
from .runner import RUNNER
from .settings import active_rig
from .shot_operators import SALAD_OT_regenerate_parts

EDIT_PANEL = "SALAD_PT_edit"  # the Edit Motion panel (panels.py), parent of Regenerate Parts
PART_ROWS = (("head", "torso"), ("left_arm", "right_arm"), ("left_leg", "right_leg"), ("root",))  # as a body stands


class SALAD_UL_shot_segments(bpy.types.UIList):
    """One row per segment: number, prompt, duration with its unit ("72.6 s") and a lock when it has its own seed
    (the seed is in the box below; as text it took the duration's column, which then showed '#42')."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):  # noqa: ANN001
        split = layout.split(factor=0.62, align=True)  # room for "172.6 s" and the lock (a plain row splits evenly)
        left = split.row(align=True)
        number = left.row()
        number.ui_units_x = 1.2
        number.label(text=f"{index + 1}.")
        left.prop(item, "prompt", text="", emboss=False, icon="NONE" if item.prompt.strip() else "ERROR")
        right = split.row(align=True)
        right.label(text=ui_state.seconds_text(item.seconds))  # with its unit (a bare "72.60" read as anything);
        # the active segment's Duration field is right below the list
        if item.use_seed:
            right.label(text="", icon="LOCKED")


def _snap_label(layout: bpy.types.UILayout, seconds: float) -> None:
    """Under a Duration the worker snaps to whole latent frames (0.2 s): the length that will really be made."""
    hint = ui_state.snap_hint(seconds)
    if hint:
        layout.label(text=f"{hint} (whole 0.2 s steps)", icon="INFO")


def _active_shot(context: bpy.types.Context) -> tuple[bpy.types.Action | None, dict | None]:
    act = metadata.active_salad_action(active_rig(context))
    if act is not None and metadata.metadata_problem(act):  # the Edit panel says what is broken
        return act, None
    recipe = metadata.shot_recipe(metadata.action_meta(act)) if act is not None else None
    return act, recipe


class SALAD_PT_shot(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SALAD"
    bl_label = "Shot"

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.salad_shot
        layout = self.layout
        row = layout.row()
        row.template_list("SALAD_UL_shot_segments", "", s, "segments", s, "active_segment", rows=4)
        col = row.column(align=True)
        col.operator("salad.shot_segment_add", text="", icon="ADD")
        col.operator("salad.shot_segment_remove", text="", icon="REMOVE")
        col.separator()
        col.operator("salad.shot_segment_move", text="", icon="TRIA_UP").direction = "UP"
        col.operator("salad.shot_segment_move", text="", icon="TRIA_DOWN").direction = "DOWN"
        if 0 <= s.active_segment < len(s.segments):
            seg = s.segments[s.active_segment]
            box = layout.box()
            prop_with_placeholder(box, seg, "prompt", "What happens, e.g. 'a person walks forward'", text="")
            row = box.row(align=True)  # the seed gets its own row: beside it, "Duration" was cut to "Durat…"
            row.prop(seg, "seconds")
            row.prop(seg, "use_seed", text="", icon="LOCKED" if seg.use_seed else "UNLOCKED")
            if seg.use_seed:
                box.prop(seg, "seed", text="Segment seed")
            _snap_label(box, seg.seconds)
        typed = sum(seg.seconds for seg in s.segments)  # what the length check refuses
        made = sum(ui_state.model_frames_of(seg.seconds) for seg in s.segments) / smpl22.FPS
        layout.label(text=f"{len(s.segments)} segment(s), {made:.1f} s of {si.MAX_SHOT_SECONDS:g} s",
                     icon="ERROR" if typed > si.MAX_SHOT_SECONDS else "TIME")
        layout.prop(s, "seed")
        layout.prop(s, "trim_last")
        row = layout.row()
        row.scale_y = 1.4
        row.enabled = not RUNNER.busy()
        row.operator("salad.generate_shot", icon="SEQUENCE")

        act, recipe = _active_shot(context)
        if recipe is not None and recipe.get("kind") == "compose":
            box = layout.box()
            try:
                box.label(text=f"{act.name}: {len(si.recipe_segments(recipe))} segment(s)", icon="ACTION")
            except JobError:  # edited by hand: the buttons say what is broken when clicked
                box.label(text="This shot's recipe is broken", icon="ERROR")
            row = box.row(align=True)
            row.enabled = not RUNNER.busy()
            row.prop(s, "reroll_segment")
            row.operator("salad.reroll_segment", icon="FILE_REFRESH")
            box.operator("salad.shot_use_recipe", icon="COPYDOWN")
        draw_job(layout, context, JOB_KINDS["shot"])


class SALAD_PT_shot_continue(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SALAD"
    bl_label = "Continue / In-between"
    bl_parent_id = "SALAD_PT_shot"

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.salad_shot
        layout = self.layout
        obj = active_rig(context)
        ad = obj.animation_data if obj is not None and obj.type == "ARMATURE" else None
        busy = RUNNER.busy()
        box = layout.box()
        if ad is None or ad.action is None:
            box.label(text="Select an armature with an action", icon="INFO")
        else:
            box.label(text=ad.action.name, icon="ACTION")
        box.prop(s, "continue_prompt", text="Then")
        box.prop(s, "continue_seconds")
        _snap_label(box, s.continue_seconds)
        row = box.row()
        row.enabled = not busy
        row.operator("salad.continue_action", icon="FORWARD")

        box = layout.box()
        box.prop(s, "action_a")
        box.prop(s, "inbetween_prompt", text="Gap")
        box.prop(s, "inbetween_seconds")
        _snap_label(box, s.inbetween_seconds)
        box.prop(s, "action_b")
        row = box.row()
        row.enabled = not busy
        row.operator("salad.inbetween", icon="ARROW_LEFTRIGHT")


class SALAD_PT_regenerate_parts(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SALAD"
    bl_label = "Regenerate Parts"
    bl_parent_id = EDIT_PANEL
    bl_options = {"DEFAULT_CLOSED"}  # like the Edit panel's other sub-panels: open, it pushed the Shot panel down

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.salad_shot
        layout = self.layout
        row = layout.row(align=True)
        for key, label in (("arms", "Arms"), ("legs", "Legs"), ("upper", "Upper"), ("lower", "Lower")):
            row.operator("salad.shot_parts_preset", text=label).preset = key
        col = layout.column(align=True)  # two toggles a row, like a body: full names fit the sidebar
        for pair in PART_ROWS:
            row = col.row(align=True)
            for part in pair:
                row.prop_enum(s, "parts", part)
        chosen = [p for p in si.PART_NAMES if p in s.parts]
        if chosen and si.legs_carry_root(chosen, keep_path=True) != si.legs_carry_root(chosen):
            col = layout.column(align=True)  # the legs take the root: say so, and offer the path
            col.prop(s, "keep_path")
            col.label(text="Feet may slide on the kept path" if s.keep_path else "The root (hips) comes "
                      "with the legs", icon="ERROR" if s.keep_path else "INFO")
        prop_with_placeholder(layout, s, "parts_prompt", "e.g. 'waves with both hands'", text="")
        too_long = SALAD_OT_regenerate_parts.too_long(context, short=True) if chosen else ""
        if too_long:  # seen before the click (the button is greyed; its tooltip alone was easy to miss)
            wrapped(layout, context, too_long, "ERROR", lines=4)
        row = layout.row()
        row.enabled = not RUNNER.busy()
        row.operator("salad.regenerate_parts", icon="MOD_ARMATURE")


classes = (SALAD_UL_shot_segments, SALAD_PT_shot, SALAD_PT_shot_continue, SALAD_PT_regenerate_parts)
