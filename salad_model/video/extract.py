"""The video → motion entry point: checks, landmarks, SMPL-22, root path, 20 fps model space, contacts."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..motion.bvh import resample_positions
from ..motion.motion_process import canonicalize, facing_angle, foot_contacts
from . import FOV_MAX, FOV_MIN, VideoError
from .landmarks import Landmarks, detect_landmarks
from .reader import probe
from .smpl import BODY, BODY_NAMES, fill_gaps, smooth, smpl22_from_blazepose, with_bone_lengths
from .trajectory import DEFAULT_FOV_DEG, ground_feet, landmarks_in_camera, to_world

MODEL_FPS = 20.0
MIN_SECONDS = 2.0  # the model's shortest motion (40 frames at 20 fps)
MIN_FOUND = 0.5  # share of frames with a person below which the video is refused
MAX_OUT_OF_FRAME = 0.25  # share of person frames in which a body joint may be out of the picture
MAX_MISSING_WARN = 0.05  # share of frames without a person that earns a warning (gaps are filled)


@dataclass
class VideoMotion:
    """Motion recovered from a video: joints [T, 22, 3] (metres, Y up, 20 fps, facing +Z at frame 0)."""

    joints: np.ndarray
    contacts: np.ndarray  # [T-1, 4] left ankle, left foot, right ankle, right foot
    meta: dict
    landmarks: Landmarks | None = None
    warnings: list[str] = field(default_factory=list)


def _check_framing(lm: Landmarks) -> list[str]:
    """Refuse a person mostly out of the picture; warn when some frames are."""
    f = lm.found
    xy = lm.image[f][:, list(BODY), :2]
    margin = 0.01 * max(lm.width, lm.height)
    outside = (xy[..., 0] < -margin) | (xy[..., 0] > lm.width + margin) | (xy[..., 1] < -margin) | \
        (xy[..., 1] > lm.height + margin)
    share = outside.mean(axis=0) if len(xy) else np.zeros(len(BODY))
    worst = [BODY_NAMES[i] for i in np.argsort(-share) if share[i] > MAX_OUT_OF_FRAME]
    if worst:
        raise VideoError(f"the person is partly out of frame: {', '.join(worst[:4])} outside the picture in "
                         f"{100 * share.max():.0f}% of the frames; use a video that shows the whole body")
    cut = [BODY_NAMES[i] for i in np.argsort(-share) if share[i] > 0.02]
    return [f"{', '.join(cut[:3])} partly out of frame ({100 * share.max():.0f}% of frames): estimated"] if cut else []


def landmarks_to_motion(lm: Landmarks, fov_deg: float = DEFAULT_FOV_DEG) -> tuple[np.ndarray, dict]:
    """Landmarks → SMPL-22 joints at the video's frame rate in a Y-up world, floor at 0 (not canonicalised)."""
    found = lm.found
    world = smooth(fill_gaps(lm.world, found), lm.fps)
    image = smooth(fill_gaps(lm.image, found), lm.fps)
    vis = fill_gaps(lm.visibility, found)
    world, trans = landmarks_in_camera(image[..., :2], world, vis, lm.width, lm.height, fov_deg)
    trans = smooth(trans, lm.fps, 0.08)  # depth from apparent size is the noisiest part
    points = world + trans[:, None, :]
    trunk = ((world[:, 11] + world[:, 12]) - (world[:, 23] + world[:, 24])).mean(0)
    points, how = to_world(points, trunk)
    return ground_feet(with_bone_lengths(smpl22_from_blazepose(points)), lm.fps), how


def extract_motion(path: str | Path, fov_deg: float | None = None,
                   progress: Callable[[int, int], None] | None = None, max_seconds: float | None = None
                   ) -> VideoMotion:
    """Read a video and return its person's motion in model space; ``VideoError`` says why it cannot.

    ``progress(frames_read, total)`` is called after each frame and may raise to cancel. Warnings (several
    people, gaps, joints partly out of frame) are in ``.warnings`` and ``meta["warnings"]``.
    """
    if max_seconds is not None and not (max_seconds > 0 and math.isfinite(max_seconds)):
        # 0 read the whole clip (falsy), a negative length 0 frames ("the clip is too short: 0.0 s decoded")
        raise VideoError(f"the length to read (max_seconds) must be a positive number of seconds, got {max_seconds:g}")
    info = probe(path)
    if info.frames and info.frames / info.fps < MIN_SECONDS:
        raise VideoError(f"the clip is too short: {info.frames / info.fps:.1f} s; the model needs at least "
                         f"{MIN_SECONDS:g} s of motion")
    fov = DEFAULT_FOV_DEG if fov_deg is None else float(fov_deg)
    if not FOV_MIN <= fov <= FOV_MAX:
        raise VideoError(f"the field of view must be within {FOV_MIN:g} … {FOV_MAX:g} degrees, got {fov:g}")
    max_frames = int(round(max_seconds * info.fps)) if max_seconds else None
    lm = detect_landmarks(info, progress, max_frames)
    n = len(lm.found)
    if n / info.fps < MIN_SECONDS:
        raise VideoError(f"the clip is too short: {n / info.fps:.1f} s decoded; the model needs at least "
                         f"{MIN_SECONDS:g} s of motion")
    found = int(lm.found.sum())
    if found == 0:
        raise VideoError("no person found in the video (BlazePose needs one person, whole body, facing the "
                         "camera or side-on, a few hundred pixels tall)")
    if found < MIN_FOUND * n:
        raise VideoError(f"a person was found in only {found} of {n} frames ({100 * found / n:.0f}%); "
                         "the video needs one clearly visible person most of the time")
    idx = np.flatnonzero(lm.found)
    first, last = idx[0], idx[-1]
    if (last - first + 1) / info.fps < MIN_SECONDS:
        raise VideoError(f"the person is visible for only {(last - first + 1) / info.fps:.1f} s; the model needs "
                         f"at least {MIN_SECONDS:g} s")
    warnings = list(lm.warnings) + _check_framing(lm)
    if found < (1 - MAX_MISSING_WARN) * n:
        warnings.append(f"no person in {n - found} of {n} frames: gaps filled by interpolation")
    joints, how = landmarks_to_motion(lm, fov)
    joints = joints[first:last + 1]
    joints20 = resample_positions(joints, info.fps, MODEL_FPS) if abs(info.fps - MODEL_FPS) > 1e-6 else joints
    joints20 = canonicalize(joints20)
    meta = {"source": "video", "video": Path(path).name, "video_fps": info.fps, "video_frames": n,
            "width": info.width, "height": info.height, "found_frames": found, "people": lm.people,
            "fov_deg": fov, "fps": MODEL_FPS, "frames": len(joints20), "trimmed": [int(first), int(last)],
            **how, "warnings": warnings}
    return VideoMotion(joints20.astype(np.float32), foot_contacts(joints20), meta, lm, warnings)


def with_path_of(pose: np.ndarray, path: np.ndarray, fps: float = MODEL_FPS, sigma_s: float = 0.1) -> np.ndarray:
    """``pose``'s body (root-relative joints) carried along ``path``'s root track and heading; [T, 22, 3] each.

    The clean-up re-derives the root path from the model's velocities, which drifts (mean path error 15 → 19
    cm on the evaluation set); the video's own path is the better one. Per frame the body is turned about +Y
    by the heading difference (smoothed over ``sigma_s``: per-frame headings are noisy) and put on the
    horizontal root position of ``path``; heights stay ``pose``'s.
    """
    from scipy.ndimage import gaussian_filter1d

    turn = np.unwrap(facing_angle(path)) - np.unwrap(facing_angle(pose))
    turn = gaussian_filter1d(turn, sigma_s * fps, mode="nearest")
    c, s = np.cos(turn), np.sin(turn)
    local = pose - pose[:, :1] * np.array([1.0, 0.0, 1.0])
    x, z = local[..., 0], local[..., 2]
    out = np.stack([c[:, None] * x + s[:, None] * z, local[..., 1], -s[:, None] * x + c[:, None] * z], axis=-1)
    return out + path[:, :1] * np.array([1.0, 0.0, 1.0])


def clean_video_motion(motion: VideoMotion, pipe, strength: float,
                       callback: Callable[[int, int], None] | None = None) -> VideoMotion:
    """``motion`` after the model's motion-prior clean-up (``pipe.clean_motion``); a new VideoMotion.

    The cleaned body keeps the video's root path and heading (:func:`with_path_of`). The model (a loaded
    ``SaladPipeline``) is passed in, so this module stays torch-free. The recipe goes in ``meta["clean_up"]``.
    ``callback(step, steps)``: after every denoising step (the worker's progress and cancel).
    """
    m = pipe.clean_motion(motion.joints, strength=strength, callback=callback)
    raw = canonicalize(np.asarray(motion.joints, np.float64))
    joints = canonicalize(with_path_of(canonicalize(np.asarray(m.joints, np.float64)), raw))
    recipe = {"strength": float(strength), "model": pipe.name, "steps": m.meta["steps"], "seed": m.meta["seed"]}
    meta = {**motion.meta, "frames": len(joints), "clean_up": recipe}
    return VideoMotion(joints.astype(np.float32), foot_contacts(joints), meta, motion.landmarks, list(motion.warnings))
