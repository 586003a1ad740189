"""Reading frames with OpenCV, with the input checks a user needs to hear about before any work."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import VIDEO_SUFFIXES, VideoError


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise VideoError("reading videos needs OpenCV and mediapipe: pip install \"salad-blender[video]\" "
                         "(or -e \".[video]\" in a checkout) in the model's environment") from exc
    return cv2


@dataclass
class VideoInfo:
    path: Path
    fps: float
    frames: int  # as the container reports it (may be approximate; the reader counts the real ones)
    width: int
    height: int


def probe(path: str | Path) -> VideoInfo:
    """Open the file and read its first frame: refuses a missing file, a non-video and an unreadable codec."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video file not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head:
        raise VideoError(f"{path} is empty")
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            kind = "a video" if path.suffix.lower() in VIDEO_SUFFIXES else "a video file OpenCV can open"
            raise VideoError(f"{path} is not {kind} (OpenCV cannot open it; use mp4, mov or avi)")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise VideoError(f"{path}: no frame could be decoded (unsupported or damaged codec; re-encode it as "
                             "H.264 or MPEG-4 mp4)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not np.isfinite(fps) or not 1.0 <= fps <= 1000.0:
            raise VideoError(f"{path}: the video reports no usable frame rate ({fps:g} fps)")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return VideoInfo(path, fps, n, frame.shape[1], frame.shape[0])
    finally:
        cap.release()


def read_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """RGB frames [H, W, 3] uint8 in order (decoding stops at the first frame that does not decode)."""
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(path))
    try:
        k = 0
        while max_frames is None or k < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            k += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def read_sampled_frames(path: str | Path, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """RGB frames at ``indices``; the others are only grabbed (demuxed and decoded, never converted)."""
    cv2 = _cv2()
    want = sorted(set(int(i) for i in indices))
    out: dict[int, np.ndarray] = {}
    if not want:
        return out
    cap = cv2.VideoCapture(str(path))
    try:
        for k in range(want[-1] + 1):
            if not cap.grab():
                break
            if k in want:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    out[k] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    return out


_DONE = object()


def prefetch(frames: Iterator[np.ndarray], depth: int = 8) -> Iterator[np.ndarray]:
    """``frames`` decoded in a background thread, up to ``depth`` ahead (OpenCV decodes without the GIL).

    Decoding the next frames then overlaps with the pose model on the current one. Closing the returned
    generator (a cancel, an error) stops the thread and releases the video.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for f in frames:
                if not put(f):
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
            return
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # releases the capture now, in the thread that iterated it
        put(_DONE)

    thread = threading.Thread(target=work, name="video-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
