"""*Import Motion from Video* (issue 14): the worker reads a video into SMPL-22 motion; a new Action plays it.

The worker's ``video`` op needs no model (BlazePose from the ``video`` extra of the worker's environment), so
the job sends no ``load`` unless the motion-prior clean-up is asked for (``clean_up``, on by default in the
operator: it lowered the pose error and made the motion read as its action more often, docs/video.md); then
the chosen model is loaded first. The result goes onto a new SALAD body or the chosen armature like a generation,
with ``salad_source = "video"`` and the recipe (file, field of view, frames read and found, warnings) in
``salad_video``; the user's existing animation is never touched.
"""

from __future__ import annotations

import math
import os
from typing import Any

import bpy

from .blender_data import find_again, place_motion
from .inputs import JobError, Target, check_model
from .jobs import check_target
from .motion_job import MotionJob, requeuer, restarter
from .protocol import FOV_MAX, FOV_MIN, VIDEO_SUFFIXES
from .worker_pool import POOL, WorkerConfig, WorkerPool

VIDEO_STAGE, CLEAN_UP_STAGE = "reading video", "clean-up"  # the worker's progress stages (serving/video_ops.py)


def check_video_path(path: str, fov: float | None = None) -> str:
    """The absolute path of a video file the worker can be asked to read, or a JobError saying what is wrong.

    ``fov``: the camera's horizontal field of view in radians (the worker's protocol counts degrees).
    """
    raw = (path or "").strip()
    if not raw:
        raise JobError("Choose a video file first (mp4, mov or avi).")
    full = os.path.abspath(bpy.path.abspath(raw)) if raw.startswith("//") else os.path.abspath(os.path.expanduser(raw))
    if not os.path.isfile(full):
        raise JobError(f"The video '{raw}' does not exist.")
    if not full.lower().endswith(VIDEO_SUFFIXES):
        raise JobError(f"'{os.path.basename(full)}' is not a video file SALAD reads ({', '.join(VIDEO_SUFFIXES)}).")
    if fov is not None and not math.radians(FOV_MIN) - 1e-9 <= fov <= math.radians(FOV_MAX) + 1e-9:
        hint = " (in radians, like every Blender angle: math.radians(55) for 55°)" if FOV_MIN <= fov <= FOV_MAX \
            else ""
        raise JobError(f"The field of view must be within {FOV_MIN:g}° … {FOV_MAX:g}°, not {fov:g} radians{hint}.")
    return full


def video_recipe(path: str, meta: dict) -> dict[str, Any]:
    """What the Action records about its video (``salad_video``)."""
    keys = ("video_fps", "video_frames", "found_frames", "people", "fov_deg", "trimmed", "gravity", "warnings",
            "clean_up")
    return {"file": os.path.basename(path), **{k: meta[k] for k in keys if k in meta}}


def start_import_video(config: WorkerConfig, path: str, target: Target, *, fov: float | None = None,
                       clean_up: float | None = None, pool: WorkerPool | None = None) -> MotionJob:
    """Video file → a new Action on a new body or on ``target``'s armature (checked before the worker runs).

    ``fov``: the camera's horizontal field of view in radians, as Blender's angles are (None: the worker's 55°).
    ``clean_up``: the strength (0, 1] of the model's motion-prior clean-up; None reads the video only.
    """
    full = check_video_path(path, fov)
    if clean_up is not None and not 0.0 < clean_up <= 1.0:
        raise JobError("The clean-up strength must be within 0 … 1 (0.6 is the tested setting).")
    if target.kind == "armature" and find_again(target.armature_ref, target.armature or "", bpy.data.objects) is None:
        raise JobError("Select the armature that should play the video's motion, or choose 'New body'.")
    check_target(target)  # a cube, a wrong preset or a selected rig that cannot take it: said now, not after the video
    # Only the clean-up uses the model: reading the video alone works with a model folder that is gone.
    try:
        model = check_model(config.model) if clean_up is not None else ""
    except JobError as exc:  # say why a video import needs a model, and how to do without
        raise JobError(f"{exc} The clean-up uses the model; untick 'Model Clean-Up' (tools/batch.py: "
                       "--no-clean-up) to import without it.") from None
    name = f"video {os.path.splitext(os.path.basename(full))[0]}"

    def apply(result: dict) -> bpy.types.Action:
        meta = result.get("meta") or {}
        return place_motion(result, target, prompt="", meta=meta, model=model, name=name, edits=[],
                            extra={"source": "video", "video": video_recipe(full, meta)})

    op: dict[str, Any] = {"op": "video", "path": full}
    if fov is not None:
        op["fov"] = math.degrees(float(fov))  # the protocol's unit
    load = None
    if clean_up is not None:
        op["clean_up"] = float(clean_up)
        load = {"op": "load", "model": model, "device": config.device}
        if config.threads > 0:
            load["threads"] = int(config.threads)
    pool = pool or POOL
    job = MotionJob("video", "Import from video", pool.get(config), pool.hello, load=load, op=op, apply=apply,
                    describe="Reading the video")
    job.restart = restarter(pool, config)  # the clean-up's load behind a worker stuck in a cancelled request
    job.requeue = requeuer(pool, config)  # sent again (at most twice) if its worker crashes or is stopped
    if clean_up is not None:  # the frames read, then the clean-up's steps: each fills half of the bar
        job.spans = {VIDEO_STAGE: (0.0, 0.5), CLEAN_UP_STAGE: (0.5, 1.0)}
    return job
