"""Benchmark: video → motion extraction speed (issue 14: >= 15 video frames per second on a 2-core CPU).

    python -m benchmarks.bench_video [VIDEO ...] [--repeat 3]

Default video: the committed test clip (3 s, 640x480, 25 fps). Prints, per run, video frames per second of
wall-clock time and of this process's CPU time (all its threads) for the whole of ``extract_motion``, and
the cost of its stages: decoding alone, the HOG people count on the sampled frames (and, for the ratio, the
per-frame search of the earlier version: pyramid step 1.05, 2x wherever 1x found nobody), BlazePose over all
frames. Only ratios within one run mean anything on a shared machine; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT / "tests" / "data" / "video" / "walk_turn_left_front.mp4"


class Clock:
    """Wall and process CPU seconds of a block."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


def _earlier_people_count(frames: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """The earlier version's search: every sampled frame at 1x, again at 2x where 1x found nobody, step 1.05."""
    from salad_model.video import landmarks as lmk

    step = lmk.HOG_PYRAMID
    lmk.HOG_PYRAMID = 1.05
    try:
        out = {}
        for k, f in frames.items():
            b = lmk._hog_boxes(f, 1.0)
            out[k] = b if len(b) else lmk._hog_boxes(f, 2.0)
        return out
    finally:
        lmk.HOG_PYRAMID = step


def bench(video: Path) -> dict:
    from salad_model.video import extract_motion
    from salad_model.video.landmarks import PEOPLE_SAMPLES, people_boxes
    from salad_model.video.reader import probe, read_frames, read_sampled_frames

    info = probe(video)
    with Clock() as decode:
        n = sum(1 for _ in read_frames(video))
    sample_at = np.linspace(0, n - 1, PEOPLE_SAMPLES).round().astype(int).tolist()
    frames = read_sampled_frames(video, sample_at)
    with Clock() as hog:
        people_boxes(frames)
    with Clock() as hog_before:
        _earlier_people_count(frames)
    with Clock() as total:
        m = extract_motion(video)
    assert m.meta["video_frames"] == n
    return {"video": video.name, "frames": n, "size": f"{info.width}x{info.height}", "fps_wall": n / total.wall,
            "fps_cpu": n / total.cpu, "decode_ms": 1000 * decode.cpu / n, "hog_ms": 1000 * hog.cpu / n,
            "hog_before_ms": 1000 * hog_before.cpu / n, "total_ms": 1000 * total.cpu / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="*", type=Path, default=[DEFAULT_VIDEO])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.path.insert(0, str(ROOT))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    print("CPU ms per video frame: decode = decoding alone; HOG = people count over the sampled frames (now / "
          "earlier search); total = all of extract_motion")
    rows = []
    for r in range(a.repeat):
        for v in a.videos:
            row = bench(v)
            rows.append(row)
            print(f"run {r + 1} {row['video']} ({row['frames']} frames, {row['size']}): "
                  f"{row['fps_wall']:.1f} frames/s wall, {row['fps_cpu']:.1f} frames/s CPU | decode "
                  f"{row['decode_ms']:.1f}, HOG {row['hog_ms']:.1f} (earlier {row['hog_before_ms']:.1f}), total "
                  f"{row['total_ms']:.1f} ms", flush=True)
    for v in a.videos:
        rs = [r for r in rows if r["video"] == v.name]
        print(f"{v.name}: median {np.median([r['fps_wall'] for r in rs]):.1f} frames/s wall, "
              f"{np.median([r['fps_cpu'] for r in rs]):.1f} frames/s CPU; HOG earlier / now "
              f"{np.median([r['hog_before_ms'] / max(r['hog_ms'], 1e-9) for r in rs]):.1f}x "
              f"(load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
