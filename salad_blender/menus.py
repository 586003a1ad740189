"""The SALAD submenu of Object ▸ Animation and Pose ▸ Animation, so F3 search finds every operator, and the
video import in File ▸ Import, where Blender keeps its importers (BVH, FBX) and animators look for one.

Blender's Pose menu shows the same "Animation" submenu (``VIEW3D_MT_object_animation``) as the
Object menu, so one entry serves both modes.
"""

from __future__ import annotations

import bpy


class SALAD_MT_animation(bpy.types.Menu):
    bl_label = "SALAD"
    bl_idname = "SALAD_MT_animation"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.operator("salad.generate", icon="PLAY")
        layout.separator()
        layout.operator("salad.edit_prompt")
        layout.operator("salad.reweight")
        for side, label in (("lower", "Legs"), ("upper", "Arms"), ("all", "All")):
            layout.operator("salad.mirror", text=f"Mirror {label}").side = side
        layout.operator("salad.edit_real")
        layout.operator("salad.import_video", icon="FILE_MOVIE")
        layout.separator()
        layout.operator("salad.generate_shot", icon="SEQUENCE")
        layout.operator("salad.reroll_segment")
        layout.operator("salad.continue_action")
        layout.operator("salad.inbetween")
        layout.operator("salad.regenerate_parts")
        layout.separator()
        layout.operator("salad.toggle_ab")
        layout.operator("salad.push_to_nla")
        layout.separator()
        layout.operator("salad.attention")
        layout.operator("salad.show_attention")
        layout.separator()
        layout.operator("salad.cancel", icon="X")


def draw_entry(self, context: bpy.types.Context) -> None:
    self.layout.separator()
    self.layout.menu(SALAD_MT_animation.bl_idname)


def draw_import(self, context: bpy.types.Context) -> None:
    self.layout.operator("salad.import_video", text="Motion from Video (SALAD)")


MENUS = (("VIEW3D_MT_object_animation", draw_entry), ("TOPBAR_MT_file_import", draw_import))
classes = (SALAD_MT_animation,)


def register() -> None:
    for name, draw in MENUS:
        getattr(bpy.types, name).append(draw)


def unregister() -> None:
    for name, draw in MENUS:
        getattr(bpy.types, name).remove(draw)
