"""The *Import Motion from Video* operator (issue 14): a file browser, then :func:`video_jobs.start_import_video`."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty

from . import preferences, video_jobs
from .operators import _JobOperator
from .protocol import CLEAN_UP_STRENGTH, FOV_MAX, FOV_MIN, VIDEO_SUFFIXES
from .settings import settings, target_from


class SALAD_OT_import_video(_JobOperator, bpy.types.Operator):
    """Extract a person's motion from a video file into a new Action (on a new body or the chosen armature)"""

    bl_idname = "salad.import_video"
    bl_label = "Import Motion from Video"
    bl_options = {"REGISTER"}

    filepath: StringProperty(name="Video", subtype="FILE_PATH", description="mp4, mov or avi with one person")
    filter_glob: StringProperty(default=";".join(f"*{s}" for s in VIDEO_SUFFIXES), options={"HIDDEN"})
    fov: FloatProperty(name="Field of View", default=55.0, min=FOV_MIN, max=FOV_MAX, subtype="NONE",
                       description="The camera's horizontal field of view in degrees (phones and webcams: about "
                                   "55–70); sets how far the person walks")
    clean_up: BoolProperty(name="Clean Up with the Model", default=True,
                           description="Pull the video's motion toward the motion model's prior (partly re-noised "
                                       "and denoised with an empty prompt): corrects the pose estimator's flattened "
                                       "limb swing; loads the model first")

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def make_job(self, context: bpy.types.Context) -> video_jobs.MotionJob:
        s = settings(context)
        return video_jobs.start_import_video(preferences.worker_config(context), self.filepath,
                                             target_from(context, s), fov=self.fov,
                                             clean_up=CLEAN_UP_STRENGTH if self.clean_up else None)


classes = (SALAD_OT_import_video,)
