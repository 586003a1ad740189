"""The "SALAD" tab of the 3D View sidebar (N-panel) and the status-bar progress.

Panels only draw: settings live in ``scene.salad`` (:class:`settings.SALAD_PG_settings`), running
jobs in :data:`runner.RUNNER`, and every button is an operator.
"""

from __future__ import annotations

import json
import textwrap

import bpy

from . import heatmap, metadata
from .runner import RUNNER, draw_progress


def _job_box(layout: bpy.types.UILayout) -> None:
    """Progress + Cancel while a motion job runs; its last message afterwards."""
    job = RUNNER.motion
    if job is None:
        return
    if not job.finished:
        row = layout.row(align=True)
        draw_progress(row, job.progress, job.status)
        row.operator("salad.cancel", text="", icon="X").which = "motion"
        return
    icon = {"done": "CHECKMARK", "failed": "ERROR", "cancelled": "INFO"}[job.state]
    col = layout.column(align=True)
    for i, line in enumerate(textwrap.wrap(job.message or "", 48)[:6]):
        col.label(text=line, icon=icon if i == 0 else "BLANK1")




class SALAD_PT_generate(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SALAD"
    bl_label = "Text to Motion"

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.salad
        layout = self.layout
        layout.use_property_split = False
        layout.prop(s, "prompt", text="")
        col = layout.column(align=True)
        col.prop(s, "seconds")
        row = col.row(align=True)
        row.prop(s, "seed")
        row.operator("salad.randomize_seed", text="", icon="FILE_REFRESH")
        col.prop(s, "guidance")
        row = col.row(align=True)
        row.prop(s, "steps")
        row.prop(s, "sampler", text="")

        box = layout.box()
        box.prop(s, "target", text="")
        if s.target == "SELECTED":
            obj = context.active_object
            if obj is None or obj.type != "ARMATURE":
                box.label(text="Select an armature", icon="ERROR")
            else:
                box.label(text=obj.name, icon="ARMATURE_DATA")
            box.prop(s, "rig_preset")
            if s.rig_preset == "CUSTOM":
                box.prop(s, "bone_map_source", expand=True)
                if s.bone_map_source == "TEXT":
                    box.prop(s, "bone_map_text", text="")
                else:
                    box.prop(s, "bone_map_file", text="")
        box.prop(s, "pin_feet")

        row = layout.row()
        row.scale_y = 1.4
        row.enabled = not RUNNER.busy()
        row.operator("salad.generate", icon="PLAY")
        _job_box(layout)


class SALAD_PT_edit(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SALAD"
    bl_label = "Edit Motion"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.salad
        act = metadata.active_salad_action(context.active_object)
        if act is None:
            layout.label(text="Select an armature playing a SALAD action", icon="INFO")
            _real_box(layout, context)
            _job_box(layout)
            return
        meta = metadata.action_meta(act)
        col = layout.column(align=True)
        col.label(text=act.name, icon="ACTION")
        col.label(text=f"Seed {meta.get('salad_seed')}, {meta.get('salad_frames')} frames, "
                       f"{len(meta['salad_edits'])} edit(s)")
        why = metadata.last_why(meta)
        if why:
            for i, line in enumerate(textwrap.wrap(f"Why: {why}", 48)[:4]):
                col.label(text=line, icon="QUESTION" if i == 0 else "BLANK1")
        busy = RUNNER.busy()

        box = layout.box()
        row = box.row(align=True)
        row.prop(s, "edit_prompt", text="")
        row.operator("salad.copy_prompt", text="", icon="COPYDOWN")
        sub = box.row()
        sub.enabled = not busy
        sub.operator("salad.edit_prompt", icon="TEXT")

        box = layout.box()
        box.prop(s, "reweight_word")
        box.prop(s, "reweight_scale", slider=True)
        sub = box.row()
        sub.enabled = not busy
        sub.operator("salad.reweight", icon="MODIFIER")

        box = layout.box()
        box.label(text="Mirror left/right")
        row = box.row(align=True)
        row.enabled = not busy
        for side, label in (("lower", "Legs"), ("upper", "Arms"), ("all", "All")):
            row.operator("salad.mirror", text=label).side = side
        box.prop(context.scene.salad, "mirror_method")
        _real_box(layout, context)
        _job_box(layout)


def _real_box(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    """Edit any animation of the active armature (mocap, keyframes) with text: edit_real."""
    obj = context.active_object
    ad = getattr(obj, "animation_data", None) if obj is not None and obj.type == "ARMATURE" else None
    box = layout.box()
    box.label(text="Edit selected animation with text", icon="ARMATURE_DATA")
    if ad is None or ad.action is None:
        box.label(text="Select an armature that plays an action", icon="INFO")
        return
    s = context.scene.salad
    box.label(text=ad.action.name, icon="ACTION")
    box.prop(s, "real_caption", text="Describes")
    box.prop(s, "real_edit", expand=True)
    if s.real_edit == "PROMPT":
        box.prop(s, "real_prompt", text="")
    elif s.real_edit == "REWEIGHT":
        box.prop(s, "real_word")
        box.prop(s, "real_scale", slider=True)
    else:
        box.prop(s, "real_mirror", expand=True)
        box.prop(s, "mirror_method")
    box.prop(s, "rig_preset")
    sub = box.row()
    sub.enabled = not RUNNER.busy()
    sub.operator("salad.edit_real", icon="TEXT")


class SALAD_PT_attention(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SALAD"
    bl_label = "Attention"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.salad
        row = layout.row(align=True)
        row.enabled = not RUNNER.busy()
        row.operator("salad.attention", icon="IMAGE_DATA")
        row.prop(s, "heatmap_normalize", text="")
        img = bpy.data.images.get(heatmap.IMAGE_NAME)
        if img is None:
            layout.label(text="Words × body parts over time, as an image")
            return
        try:
            words = json.loads(img.get("salad_words", "[]"))
        except ValueError:
            words = []
        layout.label(text=f"'{img.get('salad_prompt', '')}'"[:60])
        layout.label(text="Rows per word: root, legs, torso, arms, head; time →")
        if words:
            layout.label(text="Words top to bottom: " + ", ".join(words)[:80])
        preview = img.preview_ensure() if hasattr(img, "preview_ensure") else img.preview
        if preview is not None and preview.icon_id:
            layout.template_icon(icon_value=preview.icon_id, scale=10.0)
        layout.operator("salad.show_attention", icon="WINDOW")


def draw_status(self, context: bpy.types.Context) -> None:
    """Status-bar progress while a SALAD job runs."""
    for slot in ("motion", "check", "setup"):
        job = getattr(RUNNER, slot)
        if job is not None and not job.finished:
            row = self.layout.row(align=True)
            row.label(text="SALAD")
            if hasattr(row, "progress"):
                row.progress(factor=float(job.progress), type="BAR", text=f"{job.progress * 100:.0f}%")
            else:
                row.label(text=f"{job.progress * 100:.0f}%")
            row.operator("salad.cancel", text="", icon="X").which = slot
            return


classes = (SALAD_PT_generate, SALAD_PT_edit, SALAD_PT_attention)


def register_status() -> None:
    bpy.types.STATUSBAR_HT_header.append(draw_status)


def unregister_status() -> None:
    bpy.types.STATUSBAR_HT_header.remove(draw_status)
