"""Video → motion (issue 14): BlazePose landmarks from a video file → SMPL-22 joints in model space.

Torch-free. OpenCV and mediapipe come from the optional ``video`` extra (``pip install -e ".[video]"``,
mediapipe 0.10.14: the last release whose wheel carries the pose models, so nothing is downloaded) and are
imported only when a video is read. The stages, each a small module:

``reader`` (OpenCV frames, input checks) → ``landmarks`` (33 BlazePose landmarks per frame, image + world,
visibility; the largest of several people) → ``smpl`` (gap filling, smoothing, the 22 SMPL joints) →
``trajectory`` (root translation from the image track, floor from the feet) → ``extract`` (20 fps, model
space, contacts; the one entry point :func:`extract_motion`).
"""

from __future__ import annotations

from ..runtime.requests import FOV_MAX, FOV_MIN, VIDEO_SUFFIXES  # noqa: F401 (one definition, torch-free)


class VideoError(ValueError):
    """A video we cannot turn into motion; the message says why and what to do."""


def extract_motion(*args, **kwargs):
    """See :func:`salad_model.video.extract.extract_motion` (imported lazily: OpenCV is optional)."""
    from .extract import extract_motion as run

    return run(*args, **kwargs)
