"""The "SALAD" tab of the 3D View sidebar (N-panel) and the status-bar progress.

Panels only draw: settings live in ``scene.salad`` (:class:`settings.SALAD_PG_settings`), running
jobs in :data:`runner.RUNNER`, what is allowed in :mod:`ui_state`, and every button is an operator
(whose ``poll`` greys it out with a reason). Each panel shows the job it started (progress, Cancel,
then its message with Details and Dismiss). Options the user rarely changes sit in sub-panels closed
by default. The ``bl_idname`` of every panel is stable: other modules parent sub-panels to them.
"""

from __future__ import annotations

import json

import bpy

from . import heatmap, metadata, preferences, rigs, ui_state
from .armature import rig_rest_from_object
from .runner import RUNNER, cancel_button, draw_progress, status_progress
from .settings import active_prompt, active_rig, selected_armatures

_HAS_PLACEHOLDER = "placeholder" in bpy.types.UILayout.bl_rna.functions["prop"].parameters.keys()
JOB_KINDS = {"generate": ("generate",), "edit": ("edit", "edit_real"), "attention": ("attention",),
             "shot": ("compose", "continue", "inbetween", "regenerate_parts")}


def text_width(context: bpy.types.Context) -> int:
    """Characters that fit across the sidebar (for wrapping messages ourselves, with "…" on a cut)."""
    region = getattr(context, "region", None)
    scale = context.preferences.system.ui_scale if context.preferences is not None else 1.0
    return ui_state.chars_for_width(region.width if region is not None else 300, scale)


def prop_with_placeholder(layout: bpy.types.UILayout, data, name: str, placeholder: str, **kw) -> None:  # noqa: ANN001
    """A text field with a grey hint while empty (Blender 4.1+; older versions draw it plain)."""
    if _HAS_PLACEHOLDER:
        layout.prop(data, name, placeholder=placeholder, **kw)
    else:
        layout.prop(data, name, **kw)


def draw_job(layout: bpy.types.UILayout, context: bpy.types.Context, kinds: tuple[str, ...]) -> None:
    """Progress + Cancel while a motion job of these kinds runs; its message, Details and Dismiss afterwards."""
    job = RUNNER.motion
    if job is None or job.kind not in kinds:
        return
    width = text_width(context)
    if not job.finished:
        draw_progress(layout, job.progress, job.status, cancel="motion", width=width)
        return
    icon = {"done": "ERROR" if getattr(job, "warning", "") else "CHECKMARK", "failed": "ERROR",
            "cancelled": "INFO"}[job.state]
    box = layout.box()
    col = box.column(align=True)
    for i, line in enumerate(ui_state.fit_lines(job.message, width - 4, 4)):
        col.label(text=line, icon=icon if i == 0 else "BLANK1")
    row = box.row(align=True)
    row.operator("salad.job_details", icon="TEXT").which = "motion"
    row.operator("salad.dismiss", icon="X").which = "motion"


class _SaladPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SALAD"


class SALAD_PT_generate(_SaladPanel, bpy.types.Panel):
    bl_label = "Text to Motion"

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.salad
        layout = self.layout
        worker_why = preferences.worker_blocker(context)
        if worker_why:  # Generate is greyed out; its tooltip says the same
            box = layout.box()
            if preferences.worker_missing(context):
                box.label(text="The model is not set up yet", icon="ERROR")
            else:  # a Worker Python is set but cannot run
                wrapped(box, context, worker_why, "ERROR", 4)
            box.operator("preferences.addon_show", text="Set Up Model…", icon="PREFERENCES").module = \
                preferences.ADDON_ID
        elif preferences.model_missing(context):  # Generate is greyed out; its tooltip says the same
            box = layout.box()
            wrapped(box, context, preferences.model_blocker(context), "ERROR", 4)
            row = box.row(align=True)
            row.operator("salad.choose_model", icon="FILE_FOLDER")
            row.operator("preferences.addon_show", text="", icon="PREFERENCES").module = preferences.ADDON_ID
        prop_with_placeholder(layout, s, "prompt", "Describe the motion, e.g. a person jumps", text="")
        layout.use_property_split = True
        layout.use_property_decorate = False
        col = layout.column(align=True)
        col.prop(s, "seconds")
        fps = context.scene.render.fps / context.scene.render.fps_base
        col.label(text=ui_state.duration_hint(s.seconds, fps))
        row = col.row(align=True)
        row.prop(s, "seed")
        row.operator("salad.randomize_seed", text="", icon="FILE_REFRESH")
        col = layout.column()
        col.prop(s, "target")
        if s.target == "SELECTED":
            draw_rig(col, context, s)
            col.prop(s, "all_selected")
            if s.all_selected:
                n = len(selected_armatures(context))
                col.label(text=f"{n} armature{'s' if n != 1 else ''} selected: one new Action each",
                          icon="OUTLINER_OB_ARMATURE")
        row = layout.row()
        row.scale_y = 1.4
        row.operator("salad.generate", icon="PLAY")
        draw_job(layout, context, JOB_KINDS["generate"])


def draw_rig(layout: bpy.types.UILayout, context: bpy.types.Context, s) -> None:  # noqa: ANN001
    """The rig preset, the custom bone map fields, and what was detected on the active armature."""
    layout.prop(s, "rig_preset")
    if s.rig_preset == "CUSTOM":
        layout.prop(s, "bone_map_source", expand=True)
        layout.prop(s, "bone_map_text" if s.bone_map_source == "TEXT" else "bone_map_file")
    obj = active_rig(context)
    why = ui_state.armature_blocker(obj) or ui_state.linked_blocker(obj)
    name, error = ("", why) if why else detected_rig(obj, s.rig_preset)
    if error:
        for i, line in enumerate(ui_state.fit_lines(error, text_width(context) - 4, 3)):
            layout.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
    else:
        layout.label(text=f"{obj.name}: {name}", icon="ARMATURE_DATA")


_RIG_NAMES = {"smpl22": "SMPL-22 rig", "mixamo": "Mixamo rig", "rigify_control": "Rigify control rig",
              "rigify": "Rigify deform bones", "custom": "custom map"}
_rig_cache: dict[tuple, tuple[str, str]] = {}


def detected_rig(obj: bpy.types.Object, preset: str) -> tuple[str, str]:
    """(what the rig is, "") or ("", why it cannot take a motion), cached per armature and bone set."""
    bones = tuple(b.name for b in obj.data.bones)
    key = (obj.name, preset, hash(bones))
    if key not in _rig_cache:
        if preset == "CUSTOM":
            return "custom map", ""
        try:
            rest = rig_rest_from_object(obj)
            name, mapping = rigs.resolve_bone_map(rest.bone_names, preset.lower())
            rigs.check_sides(rest, mapping)
            _rig_cache[key] = (_RIG_NAMES.get(name, name), "")
        except rigs.RigError as exc:
            _rig_cache[key] = ("", str(exc))
        if len(_rig_cache) > 64:
            _rig_cache.pop(next(iter(_rig_cache)))
    return _rig_cache[key]


class SALAD_PT_generate_sampling(_SaladPanel, bpy.types.Panel):
    bl_label = "Sampling"
    bl_parent_id = "SALAD_PT_generate"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.salad
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        col = layout.column()
        row = col.row(heading="Guidance")
        row.prop(s, "use_model_guidance")
        sub = col.row()
        sub.active = not s.use_model_guidance
        sub.prop(s, "guidance", text=" ")
        col.prop(s, "fast")
        sub = col.column()
        sub.active = not s.fast
        sub.prop(s, "steps")
        sub.prop(s, "sampler")


class SALAD_PT_generate_result(_SaladPanel, bpy.types.Panel):
    bl_label = "Result"
    bl_parent_id = "SALAD_PT_generate"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.salad
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        col = layout.column(heading="Scene")
        col.prop(s, "set_scene_range")
        col.prop(s, "start_at_current")
        col = layout.column(heading="New Body")
        col.prop(s, "at_cursor")
        col.prop(s, "select_new")
        col = layout.column(heading="Animated Rig")
        col.prop(s, "keep_other_channels")
        col = layout.column(heading="Motion")
        col.prop(s, "in_place")
        sub = col.column()
        sub.active = not s.in_place  # contacts of a travelling motion do not apply on the spot
        sub.prop(s, "pin_feet")
        col.prop(s, "make_cyclic")
        sub = col.column()
        sub.active = s.make_cyclic
        sub.prop(s, "cyclic_blend")


class SALAD_PT_edit(_SaladPanel, bpy.types.Panel):
    bl_label = "Edit Motion"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        obj = active_rig(context)
        act = ui_state.playing_action(obj) if not ui_state.armature_blocker(obj) else None
        width = text_width(context)
        if act is None and getattr(obj, "type", "") == "ARMATURE":  # no action, in Edit Mode, in the NLA: why
            for i, line in enumerate(ui_state.fit_lines(ui_state.edit_blocker(obj), width - 4, 3)):
                layout.label(text=line, icon="INFO" if i == 0 else "BLANK1")
        elif act is None:
            layout.label(text="Select an armature that plays an action", icon="INFO")
        else:
            col = layout.column(align=True)
            col.label(text=act.name, icon="ACTION")
            if ui_state.is_inversion(act) or "salad_prompt" in act.keys():
                fps = context.scene.render.fps / context.scene.render.fps_base
                for entry in ui_state.action_summary(act, fps):
                    for line in ui_state.fit_lines(entry, width - 4, 2):
                        col.label(text=line, icon="BLANK1")
                last = "" if metadata.metadata_problem(act) else metadata.last_why(metadata.action_meta(act))
                for i, line in enumerate(ui_state.fit_lines(f"Why: {last}", width - 4, 4) if last else []):
                    col.label(text=line, icon="QUESTION" if i == 0 else "BLANK1")
            why = ui_state.edit_blocker(obj)
            if why:
                for i, line in enumerate(ui_state.fit_lines(why, width - 4, 3)):
                    col.label(text=line, icon="INFO" if i == 0 else "BLANK1")
        draw_job(layout, context, JOB_KINDS["edit"])


class _EditSubPanel(_SaladPanel):
    bl_parent_id = "SALAD_PT_edit"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not ui_state.edit_blocker(active_rig(context))


class SALAD_PT_edit_prompt(_EditSubPanel, bpy.types.Panel):
    bl_label = "New Prompt"

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.salad
        layout = self.layout
        row = layout.row(align=True)
        prop_with_placeholder(row, s, "edit_prompt", "Change a word or add details", text="")
        row.operator("salad.copy_prompt", text="", icon="COPYDOWN")
        layout.operator("salad.edit_prompt", icon="TEXT")


class SALAD_PT_edit_reweight(_EditSubPanel, bpy.types.Panel):
    bl_label = "Re-weight Word"

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.salad
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        prompt = active_prompt(context)
        word = ui_state.resolve_word(s.reweight_word, prompt)
        prop_with_placeholder(layout, s, "reweight_word", word)
        if s.reweight_word and word.lower() != s.reweight_word.strip().lower():
            layout.label(text=f"Not in the prompt: using '{word}'", icon="INFO")
        layout.prop(s, "reweight_scale", slider=True)
        _draw_live_preview(layout, context)
        layout.operator("salad.reweight", text=f"Re-weight '{word}'", icon="MODIFIER")


def _draw_live_preview(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    """Live re-weight preview: its state and Apply / Discard (or why moving the slider does not preview)."""
    from . import preview_actions

    session = preview_actions.SESSION
    if preview_actions.left_preview(context) is not None:  # saved with the file: keep it or drop it
        layout.label(text="A preview saved with the file plays", icon="HIDE_OFF")
        row = layout.row(align=True)
        row.operator("salad.preview_apply", icon="CHECKMARK")
        row.operator("salad.preview_discard", icon="X")
        return
    if session is None or not session.active:
        why = preview_actions.preview_blocker(context)
        wrapped(layout, context, why or "Move the weight to preview", "INFO" if why else "HIDE_OFF")
        return
    busy = session.job is not None or session.pending is not None
    shown = f"Previewing ×{session.shown[1]:g}" if session.shown else "Preview"
    layout.label(text=f"{shown}{' (updating…)' if busy else ''}", icon="HIDE_OFF")
    if session.message:
        wrapped(layout, context, session.message, "ERROR")
    row = layout.row(align=True)
    row.operator("salad.preview_apply", icon="CHECKMARK")
    row.operator("salad.preview_discard", icon="X")


def wrapped(layout: bpy.types.UILayout, context: bpy.types.Context, text: str, icon: str, lines: int = 3) -> None:
    """A message over up to ``lines`` labels (one label is cut with "…" in the default sidebar)."""
    for i, line in enumerate(ui_state.fit_lines(text, text_width(context) - 4, lines)):
        layout.label(text=line, icon=icon if i == 0 else "BLANK1")


class SALAD_PT_edit_mirror(_EditSubPanel, bpy.types.Panel):
    bl_label = "Mirror"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(context.scene.salad, "mirror_method")
        row = layout.row(align=True)
        for side, label, _ in (("lower", "Legs", ""), ("upper", "Arms", ""), ("all", "All", "")):
            row.operator("salad.mirror", text=f"Mirror {label}").side = side


class SALAD_PT_edit_real(_SaladPanel, bpy.types.Panel):
    """Edit any animation of the active armature (mocap, keyframes, real-animation results) with text."""

    bl_label = "Edit Animation with Text"
    bl_parent_id = "SALAD_PT_edit"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        obj = active_rig(context)
        why = ui_state.real_edit_blocker(obj)
        if why:  # wrapped: a linked rig's advice is three lines in the default sidebar
            for i, line in enumerate(ui_state.fit_lines(why, text_width(context) - 4, 3)):
                layout.label(text=line, icon="INFO" if i == 0 else "BLANK1")
            return
        s = context.scene.salad
        layout.label(text=obj.animation_data.action.name, icon="ACTION")
        layout.row().prop(s, "real_edit", expand=True)
        needs_caption = ui_state.caption_needed(s.real_edit, s.real_mirror_method)
        col = layout.column()
        col.active = needs_caption
        prop_with_placeholder(col, s, "real_caption", "What it shows, e.g. a person walks" if needs_caption
                              else "Not needed for the exact mirror", text="Shows")
        layout.use_property_split = True
        layout.use_property_decorate = False
        if s.real_edit == "PROMPT":
            prop_with_placeholder(layout, s, "real_prompt", "The caption with a word changed")
        elif s.real_edit == "REWEIGHT":
            layout.prop(s, "real_word")
            layout.prop(s, "real_scale", slider=True)
        else:
            layout.prop(s, "real_mirror")
            layout.prop(s, "real_mirror_method")
        col = layout.column(heading="Uses")
        col.prop(s, "pin_feet")
        col.prop(s, "steps", text="Inversion Steps")
        draw_rig(col, context, s)
        layout.operator("salad.edit_real", icon="TEXT")


class SALAD_PT_attention(_SaladPanel, bpy.types.Panel):
    bl_label = "Attention"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.salad
        row = layout.row(align=True)
        row.operator("salad.attention", text="Record Attention", icon="IMAGE_DATA")
        row.prop(s, "heatmap_normalize", text="")
        draw_job(layout, context, JOB_KINDS["attention"])
        img = bpy.data.images.get(heatmap.IMAGE_NAME)
        if img is None:
            layout.label(text="Which words drive which body parts over time")
            return
        try:
            words = json.loads(img.get("salad_words", "[]"))
        except ValueError:
            words = []
        width = text_width(context)
        col = layout.column(align=True)
        for line in ui_state.fit_lines(f"'{img.get('salad_prompt', '')}'", width, 2):
            col.label(text=line)
        col.label(text="Rows per word: root, legs, torso, arms, head; time →")
        if words:
            for line in ui_state.fit_lines("Words top to bottom: " + ", ".join(words), width, 3):
                col.label(text=line)
        preview = img.preview_ensure() if hasattr(img, "preview_ensure") else img.preview
        if preview is not None and preview.icon_id:
            layout.template_icon(icon_value=preview.icon_id, scale=10.0)
        layout.operator("salad.show_attention", icon="WINDOW")


def draw_status(self, context: bpy.types.Context) -> None:
    """Status-bar progress while a SALAD job runs (redrawn when :func:`runner.status_progress` changes)."""
    shown = status_progress(RUNNER)
    if shown is None:
        return
    slot, pct = shown
    job = getattr(RUNNER, slot)
    row = self.layout.row(align=True)
    row.label(text="SALAD")
    if hasattr(row, "progress"):
        row.progress(factor=float(job.progress), type="BAR", text=f"{pct}%")
    else:
        row.label(text=f"{pct}%")
    cancel_button(row, slot)


classes = (SALAD_PT_generate, SALAD_PT_generate_sampling, SALAD_PT_generate_result, SALAD_PT_edit,
           SALAD_PT_edit_prompt, SALAD_PT_edit_reweight, SALAD_PT_edit_mirror, SALAD_PT_edit_real,
           SALAD_PT_attention)


def register_status() -> None:
    bpy.types.STATUSBAR_HT_header.append(draw_status)


def unregister_status() -> None:
    bpy.types.STATUSBAR_HT_header.remove(draw_status)
