"""The rig's SALAD actions (sub-panel of Edit Motion): assign, delete, A/B between an edit and its source,
push to the NLA. Operators and the panel are thin: the rules are in :mod:`ui_state`.
"""

from __future__ import annotations

import bpy
from bpy.props import StringProperty

from . import actions, metadata, ui_state
from .operators import say_no
from .settings import active_rig


def rig_actions(obj: bpy.types.Object) -> list[bpy.types.Action]:
    """SALAD actions whose channels all belong to bones of this armature, newest name last."""
    bones = {b.name for b in obj.data.bones}
    out = [a for a in bpy.data.actions if metadata.is_salad_action(a)
           and ui_state.fits_rig([fc.data_path for fc in actions.action_fcurves(a)], bones)]
    return sorted(out, key=lambda a: a.name)


def _rig_blocker(context: bpy.types.Context) -> str:
    return ui_state.armature_blocker(active_rig(context))


def ab_blocker(obj: bpy.types.Object) -> str:
    """Why the A/B toggle cannot switch ("" when the playing action has a partner in the file)."""
    why = ui_state.armature_blocker(obj)
    if why:
        return why
    partner = ui_state.ab_partner(ui_state.playing_action(obj), str(obj.get("salad_ab_previous", "")))
    return "" if partner in bpy.data.actions else "The action is not an edit and has no A/B partner"


class _RigOperator:
    """Undoable operators on the active rig; ``blocker`` says why not (shown by the poll)."""

    bl_options = {"REGISTER", "UNDO"}
    blocker = staticmethod(ui_state.armature_blocker)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return say_no(cls, cls.blocker(active_rig(context)))


class SALAD_OT_assign_action(_RigOperator, bpy.types.Operator):
    """Play this action on the active armature (the one it replaces keeps a fake user)"""

    bl_idname = "salad.assign_action"
    bl_label = "Assign"
    action: StringProperty(name="Action")

    def execute(self, context: bpy.types.Context) -> set[str]:
        act = bpy.data.actions.get(self.action)
        if act is None:
            self.report({"ERROR"}, f"No action named '{self.action}'")
            return {"CANCELLED"}
        obj = active_rig(context)
        old = obj.animation_data.action if obj.animation_data else None
        actions.assign_action(obj, act, actions.object_slot(act, obj))
        obj["salad_ab_previous"] = old.name if old is not None else ""
        return {"FINISHED"}


class SALAD_OT_delete_action(_RigOperator, bpy.types.Operator):
    """Delete this SALAD action from the file"""

    bl_idname = "salad.delete_action"
    bl_label = "Delete"
    action: StringProperty(name="Action")

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context: bpy.types.Context) -> set[str]:
        act = bpy.data.actions.get(self.action)
        if act is None or not metadata.is_salad_action(act):
            self.report({"ERROR"}, f"'{self.action}' is not a SALAD action")
            return {"CANCELLED"}
        bpy.data.actions.remove(act)
        return {"FINISHED"}


class SALAD_OT_toggle_ab(_RigOperator, bpy.types.Operator):
    """Switch between an edit and the action it was made from (A/B)"""

    bl_idname = "salad.toggle_ab"
    bl_label = "Switch Edit and Source (A/B)"  # what F3 search finds; the panel's button says "A/B"
    blocker = staticmethod(ab_blocker)

    def execute(self, context: bpy.types.Context) -> set[str]:
        obj = active_rig(context)
        act = obj.animation_data.action
        partner = bpy.data.actions[ui_state.ab_partner(act, str(obj.get("salad_ab_previous", "")))]
        actions.assign_action(obj, partner, actions.object_slot(partner, obj))
        obj["salad_ab_previous"] = act.name
        self.report({"INFO"}, f"Playing '{partner.name}'")
        return {"FINISHED"}


class SALAD_OT_push_to_nla(_RigOperator, bpy.types.Operator):
    """Move the active action into a new NLA track (as Blender's Push Down does), leaving no active action"""

    bl_idname = "salad.push_to_nla"
    bl_label = "Push to NLA"
    blocker = staticmethod(ui_state.real_edit_blocker)

    def execute(self, context: bpy.types.Context) -> set[str]:
        obj = active_rig(context)
        strip = actions.push_to_nla(obj)
        self.report({"INFO"}, f"'{strip.action.name}' is now an NLA strip")
        return {"FINISHED"}


class SALAD_PT_actions(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SALAD"
    bl_label = "SALAD Actions"
    bl_parent_id = "SALAD_PT_edit"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not _rig_blocker(context)

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        obj = active_rig(context)
        row = layout.row(align=True)
        row.operator("salad.toggle_ab", text="A/B", icon="UV_SYNC_SELECT")
        row.operator("salad.push_to_nla", icon="NLA_PUSHDOWN")
        playing = ui_state.playing_action(obj)
        found = rig_actions(obj)
        if not found:
            layout.label(text="No SALAD actions for this rig yet")
        col = layout.column(align=True)
        for act in found:
            prompt, detail = ui_state.action_row(act)
            row = col.row(align=True)
            row.label(text=prompt, icon="PLAY" if act == playing else "ACTION")
            row.operator("salad.assign_action", text="", icon="CHECKMARK").action = act.name
            row.operator("salad.delete_action", text="", icon="TRASH").action = act.name
            col.label(text=detail, icon="BLANK1")


classes = (SALAD_OT_assign_action, SALAD_OT_delete_action, SALAD_OT_toggle_ab, SALAD_OT_push_to_nla,
           SALAD_PT_actions)
