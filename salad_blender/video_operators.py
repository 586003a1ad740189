"""The *Import Motion from Video* operator (issue 14): a file browser, then :func:`video_jobs.start_import_video`."""

from __future__ import annotations

import math

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty

from . import preferences, ui_state, video_jobs
from .operators import _JobOperator
from .protocol import CLEAN_UP_STRENGTH, FOV_MAX, FOV_MIN, VIDEO_SUFFIXES
from .settings import active_rig, settings, target_from


class SALAD_OT_import_video(_JobOperator, bpy.types.Operator):
    """Extract a person's motion from a video file into a new Action (on a new body or the chosen armature)"""

    bl_idname = "salad.import_video"
    bl_label = "Import Motion from Video"
    bl_options = {"REGISTER"}
    needs = "worker"  # the model only for the clean-up (a property the poll cannot see): checked on the click

    filepath: StringProperty(name="Video", subtype="FILE_PATH", description="mp4, mov or avi with one person")
    filter_glob: StringProperty(default=";".join(f"*{s}" for s in VIDEO_SUFFIXES), options={"HIDDEN"})
    # soft limits only: a script's 55 (degrees, not radians) is refused with a hint instead of clamped to 150°
    fov: FloatProperty(name="Field of View", default=math.radians(55.0), min=0.0, soft_min=math.radians(FOV_MIN),
                       soft_max=math.radians(FOV_MAX), subtype="ANGLE", unit="ROTATION",
                       description="The camera's horizontal field of view (phones and webcams: about 55°–70°); sets "
                                   "how far the person walks. Scripts pass radians, like every Blender angle")
    clean_up: BoolProperty(name="Model Clean-Up", default=True,
                           description="Pull the video's motion toward the motion model's prior (partly re-noised "
                                       "and denoised with an empty prompt): corrects the pose estimator's flattened "
                                       "limb swing; loads the model first")

    def draw(self, context: bpy.types.Context) -> None:
        """The file browser's options: where the motion goes (the Text to Motion panel's target), then the settings."""
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        obj, new_body = active_rig(context), settings(context).target == "NEW"
        why = "" if new_body else ui_state.armature_blocker(obj)
        text = "A new SALAD body" if new_body else (why or obj.name)
        layout.label(text=f"Onto: {text}", icon="ERROR" if why else "OUTLINER_OB_ARMATURE")
        layout.prop(self, "fov")
        layout.prop(self, "clean_up")

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def make_job(self, context: bpy.types.Context) -> video_jobs.MotionJob:
        s = settings(context)
        return video_jobs.start_import_video(preferences.worker_config(context), self.filepath,
                                             target_from(context, s), fov=self.fov,
                                             clean_up=CLEAN_UP_STRENGTH if self.clean_up else None)


classes = (SALAD_OT_import_video,)
