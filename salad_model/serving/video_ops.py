"""Worker operation ``video`` (issue 14): a video file → motion (joints, contacts, meta), no model needed.

With ``clean_up`` (a strength in (0, 1], e.g. 0.6) the loaded model's motion-prior clean-up
(:mod:`salad_model.runtime.motion_prior`) follows the extraction; that needs a loaded model (``no_model``
otherwise, before the video is read) and is recorded in ``meta.clean_up``.

Mixed into the worker like :mod:`shot_ops`. Progress events count frames read (stage ``"reading video"``), then
the clean-up's denoising steps over all its windows (stage ``"clean-up"``); a cancel is seen after the frame or
step in flight. Bad videos (not a video, unreadable codec, no person, partly out of
frame, too short, the ``video`` extra missing) are ``invalid_input`` errors with the reason; several people
are a warning in ``meta.warnings`` (the largest person is followed). Without ``clean_up`` torch is not needed.
"""

from __future__ import annotations

from typing import Any

from . import protocol as P
from .errors import RequestError

VIDEO_FIELDS: dict[str, tuple[str, ...]] = {"video": ("path", "fov", "max_seconds", "clean_up")}
VIDEO_OPS = tuple(VIDEO_FIELDS)
VIDEO_STAGE = "reading video"
CLEAN_UP_STAGE = "clean-up"  # the motion-prior clean-up: one count over every window's denoising steps


class VideoOps:
    """The worker's video operation (needs ``_check_cancel``, ``_progress``, ``_step_callback`` and ``_lock``)."""

    def op_video(self, rid: Any, params: dict) -> dict:
        import numpy as np

        from ..video import VideoError, extract_motion

        if not params.get("path"):
            raise RequestError(P.INVALID_INPUT, "video needs 'path': the video file to read")
        strength = params.get("clean_up")
        pipe = self._pipeline() if strength is not None else None  # no model: refused before the video is read

        def progress(i: int, n: int) -> None:
            self._check_cancel(rid)  # raises the worker's cancel
            with self._lock:
                self._step = i
            self._progress(rid, VIDEO_STAGE, i, n)

        try:
            m = extract_motion(params["path"], fov_deg=params.get("fov"), progress=progress,
                               max_seconds=params.get("max_seconds"))
        except VideoError as exc:
            raise RequestError(P.INVALID_INPUT, str(exc)) from None
        if pipe is not None:
            from ..video.extract import clean_video_motion

            with self._lock:
                self._step = 0  # the cancel's step count starts again with the clean-up's steps
            m = clean_video_motion(m, pipe, strength, callback=self._step_callback(rid, CLEAN_UP_STAGE))
        contacts = np.asarray(m.contacts, bool)  # [T-1, 4]: each frame's step to the next one
        # the worker's motions carry one row per frame (as generate's do): the last frame keeps its
        # predecessor's flags, so the add-on's foot pinning takes the result as it takes a generated one
        contacts = np.concatenate([contacts, contacts[-1:]]) if len(contacts) else np.zeros((len(m.joints), 4), bool)
        return {"joints": np.asarray(m.joints, np.float32), "contacts": contacts, "meta": m.meta}
