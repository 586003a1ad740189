"""BlazePose (mediapipe 0.10.14, bundled ``pose_landmark_full`` model) landmarks for every frame of a video.

mediapipe's pose solution follows one person. When a video shows several, OpenCV's HOG people detector on a
few sampled frames finds them; we follow the largest (tallest box) through the sampled frames, interpolate
its box in between and give BlazePose only that crop, and say so in the warnings.

Cost (docs/video.md): BlazePose's cost does not depend on the frame size, HOG's grows with it, and on a
3-second clip eight HOG searches cost more than BlazePose on all 75 frames. So HOG sees an HD frame at half
size (``HOG_MAX_WIDTH``) with a coarser pyramid, searches at twice the size only when BlazePose misses the
person, and frames are decoded in a background thread while BlazePose works.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from . import VideoError
from .reader import VideoInfo, _cv2, prefetch, read_frames, read_sampled_frames

N_LANDMARKS = 33
PEOPLE_SAMPLES = 8  # frames HOG looks at
HOG_MIN_WEIGHT = 0.6  # SVM score a HOG box needs to count as a person
HOG_MAX_WIDTH = 1024  # wider frames are searched at 1/2, 1/3 … of their size (HOG's cost grows with the pixels)
SMALL_PERSON_RETRY = 0.5  # found in fewer frames than this: BlazePose tries again on a crop around HOG's box
HOG_PYRAMID = 1.1  # step between pyramid levels (1.05 cost twice as much and found the same people)


@dataclass
class Landmarks:
    """Per-frame BlazePose output; frames without a person are NaN (``found`` False)."""

    image: np.ndarray  # [T, 33, 3] x, y in pixels of the full frame, z (BlazePose's relative depth, x scale)
    world: np.ndarray  # [T, 33, 3] metres, hip-centred, camera-aligned axes (x right, y down, z away)
    visibility: np.ndarray  # [T, 33] in 0 … 1
    found: np.ndarray  # [T] bool
    fps: float
    width: int
    height: int
    people: int = 1  # most people HOG saw in two sampled frames (one frame may be a false detection; 0: none)
    warnings: list[str] = field(default_factory=list)


def _mediapipe():
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ start-up chatter
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protobuf deprecation notes from mediapipe's generated code
            import mediapipe as mp
            from mediapipe.python.solutions import pose  # noqa: F401
    except ImportError as exc:
        raise VideoError("reading videos needs mediapipe 0.10.14: pip install \"salad-blender[video]\" (or -e "
                         "\".[video]\" in a checkout) in the model's environment") from exc
    return mp


def _hog_boxes(img: np.ndarray, scale: float) -> np.ndarray:
    cv2 = _cv2()
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    scale = scale / int(np.ceil(img.shape[1] / HOG_MAX_WIDTH))  # 1080p and 720p at half size, 4K at a quarter
    if scale != 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else
                         cv2.INTER_LINEAR)
    rects, weights = hog.detectMultiScale(img, winStride=(8, 8), padding=(8, 8), scale=HOG_PYRAMID)
    if len(rects) == 0:
        return np.zeros((0, 4))
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    keep = weights >= HOG_MIN_WEIGHT
    boxes = np.asarray(rects, dtype=np.float64)[keep] / scale
    if not len(boxes):
        return boxes
    idx = cv2.dnn.NMSBoxes(boxes.tolist(), weights[keep].tolist(), HOG_MIN_WEIGHT, 0.3)
    return boxes[np.asarray(idx, dtype=int).reshape(-1)]


def people_boxes(frames: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """HOG person boxes [N, 4] (x, y, w, h, full-frame pixels) in each sampled frame, searched as they are.

    HOG's window is 128 px tall, so smaller people are not found here; they are searched at twice the size
    only when BlazePose misses the person (see :func:`detect_landmarks`): searching every frame where 1x
    found nobody at 2x up front (what an earlier version did) cost more than BlazePose on a whole short clip
    and changed nothing when BlazePose found the person anyway.
    """
    return {k: _hog_boxes(f, 1.0) for k, f in frames.items()}


def _count(samples: dict[int, np.ndarray]) -> int:
    """Most people seen in at least two sampled frames (one frame may hold a false detection)."""
    counts = sorted(len(b) for b in samples.values())
    return counts[-2] if len(counts) >= 2 else (counts[-1] if counts else 0)


def largest_person_track(samples: dict[int, np.ndarray], n_frames: int) -> np.ndarray | None:
    """A box [T, 4] per frame following the largest person: start at the tallest box, then the nearest one."""
    keys = sorted(k for k, b in samples.items() if len(b))
    if not keys:
        return None
    start = max(keys, key=lambda k: samples[k][:, 3].max())
    chosen = {start: samples[start][np.argmax(samples[start][:, 3])]}
    for order in (sorted(k for k in keys if k > start), sorted((k for k in keys if k < start), reverse=True)):
        prev = chosen[start]
        for k in order:
            b = samples[k]
            centre = prev[:2] + prev[2:] / 2
            d = np.linalg.norm(b[:, :2] + b[:, 2:] / 2 - centre, axis=1) / prev[3]
            d += np.abs(np.log(b[:, 3] / prev[3]))  # similar height too
            prev = chosen[k] = b[np.argmin(d)]
    ks = np.array(sorted(chosen))
    vals = np.stack([chosen[k] for k in ks])
    t = np.arange(n_frames)
    return np.stack([np.interp(t, ks, vals[:, c]) for c in range(4)], axis=1)


def _crop_window(box: np.ndarray, width: int, height: int, margin: float = 0.5) -> tuple[int, int, int, int]:
    """A crop (x0, y0, x1, y1) around a person box with ``margin`` of its height on each side, inside the frame."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    half = h * (0.5 + margin)
    x0, x1 = int(max(cx - half, 0)), int(min(cx + half, width))
    y0, y1 = int(max(cy - half, 0)), int(min(cy + half, height))
    return x0, y0, max(x1, x0 + 2), max(y1, y0 + 2)


def _pose_pass(info: VideoInfo, track: np.ndarray | None, progress: Callable[[int, int], None] | None,
               max_frames: int | None, total: int) -> tuple[list, list, list, list]:
    """BlazePose over every frame (or over the crop around ``track``'s box); per-frame lists."""
    mp = _mediapipe()
    cv2 = _cv2()
    image, world, vis, found = [], [], [], []
    nan = np.full((N_LANDMARKS, 3), np.nan)
    frames = prefetch(read_frames(info.path, max_frames))
    with warnings.catch_warnings(), closing(frames), mp.solutions.pose.Pose(
            static_image_mode=False, model_complexity=1, smooth_landmarks=True, enable_segmentation=False,
            min_detection_confidence=0.5, min_tracking_confidence=0.5) as pose:
        warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype")  # protobuf 4 notes, per frame
        for k, frame in enumerate(frames):
            x0, y0 = 0, 0
            crop = frame
            if track is not None:
                x0, y0, x1, y1 = _crop_window(track[min(k, len(track) - 1)], info.width, info.height)
                crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
                if crop.shape[0] < 256:  # BlazePose wants the person a few hundred pixels tall
                    s = 256 / crop.shape[0]
                    crop = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
            res = pose.process(crop)
            if res.pose_landmarks is None or res.pose_world_landmarks is None:
                image.append(nan), world.append(nan), vis.append(np.zeros(N_LANDMARKS)), found.append(False)
            else:
                lm = res.pose_landmarks.landmark
                ch, cw = (frame.shape[0], frame.shape[1]) if track is None else (y1 - y0, x1 - x0)
                image.append(np.array([[p.x * cw + x0, p.y * ch + y0, p.z * cw] for p in lm]))
                world.append(np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark]))
                vis.append(np.array([p.visibility for p in lm]))
                found.append(True)
            if progress is not None:
                progress(k + 1, max(total, k + 1))
    return image, world, vis, found


def detect_landmarks(info: VideoInfo, progress: Callable[[int, int], None] | None = None,
                     max_frames: int | None = None) -> Landmarks:
    """Run BlazePose over the video; ``progress(frames_read, total)`` after each frame (it may raise to cancel).

    A person too small for BlazePose on the whole frame (found in under half of the frames) is looked for once
    more on an enlarged crop around HOG's box (searched at 2x where 1x missed them): a walker far from the
    camera at the start of a clip, or a figure a hundred pixels tall. That second pass reads the video again.
    """
    _mediapipe()  # the missing extra is reported before any work
    total = info.frames if info.frames > 0 else 0
    if max_frames:
        total = min(total, max_frames) if total else max_frames
    sample_at = set(np.linspace(0, max(total - 1, 0), PEOPLE_SAMPLES).round().astype(int).tolist()) if total else {0}
    sampled = read_sampled_frames(info.path, sample_at)
    samples = people_boxes(sampled)
    people = _count(samples)
    notes = []
    track = None
    if people >= 2:
        track = largest_person_track(samples, max(total, 1))
        notes.append(f"several people in the video (up to {people} at once): following the largest one")
    image, world, vis, found = _pose_pass(info, track, progress, max_frames, total)
    if track is None and found and np.mean(found) < SMALL_PERSON_RETRY:
        samples = {k: b if len(b) else _hog_boxes(sampled[k], 2.0) for k, b in samples.items()}
        small = largest_person_track(samples, max(total, len(found)))
        people = max(people, _count(samples))
        if people >= 2:
            notes.append(f"several people in the video (up to {people} at once): following the largest one")
        if small is not None:
            second = _pose_pass(info, small, progress, max_frames, total)
            if sum(second[3]) > sum(found):
                notes.append(f"the person is small in the picture (BlazePose found them in {100 * np.mean(found):.0f}% "
                             f"of the frames): read again from an enlarged crop around them")
                image, world, vis, found = second
    t = len(found)
    return Landmarks(np.array(image).reshape(t, N_LANDMARKS, 3), np.array(world).reshape(t, N_LANDMARKS, 3),
                     np.array(vis).reshape(t, N_LANDMARKS), np.array(found, dtype=bool), info.fps, info.width,
                     info.height, people, notes)
