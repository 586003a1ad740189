"""``python -m salad_model video IN.mp4 --out motion.npz [--bvh] [--clean-up]``: the CLI's video command.

No model and no torch unless ``--clean-up`` asks for the model's motion-prior clean-up
(:mod:`salad_model.runtime.motion_prior`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def add_video_command(sub, progress) -> None:
    v = sub.add_parser("video", help="video → motion: BlazePose landmarks → SMPL-22 joints (npz, 20 fps)")
    v.add_argument("video", type=Path, help="mp4 / mov / avi showing one person, whole body")
    v.add_argument("--out", type=Path, required=True, help="NAME or NAME.npz (NAME.bvh with --bvh)")
    v.add_argument("--bvh", action="store_true", help="also write a BVH next to the npz")
    v.add_argument("--preview", nargs="?", const="gif", default=None, choices=["gif", "mp4"],
                   help="also write a stick-figure animation")
    v.add_argument("--fov", type=float, default=None,
                   help="the camera's horizontal field of view in degrees (default 55: a typical phone or webcam)")
    v.add_argument("--max-seconds", type=float, default=None, help="read only the first N seconds")
    v.add_argument("--force", action="store_true", help="overwrite existing output files")
    add_clean_up_argument(v)
    v.add_argument("--model", default="demo", help="the model of --clean-up (default: the shipped demo model)")
    v.set_defaults(video_progress=progress)


def add_clean_up_argument(parser) -> None:
    """``--clean-up [STRENGTH]``: the motion-prior clean-up of a video's motion (off unless given)."""
    from ..runtime.requests import CLEAN_UP_STRENGTH

    parser.add_argument("--clean-up", type=float, nargs="?", const=CLEAN_UP_STRENGTH, default=None,
                        metavar="STRENGTH", help="pull the video's motion toward the model's motion prior (SDEdit "
                        f"with an empty prompt; STRENGTH in (0, 1], default {CLEAN_UP_STRENGTH:g}; docs/video.md)")


def motion_writers(motion, bvh: bool, preview: str | None) -> list:
    """Writers (npz [+ bvh, + preview]) in the order of ``salad_model.__main__.output_paths``."""
    from ..motion.motion_process import joints_to_features
    from ..runtime.pose_count import with_end_pose

    joints, fps = motion.joints, motion.meta["fps"]
    features = joints_to_features(with_end_pose(joints))  # one row per pose, like edit_real's (pose_count)

    def npz(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, joints=joints.astype(np.float32), features=features.astype(np.float32),
                     contacts=np.asarray(motion.contacts, bool), fps=np.float32(fps), meta=json.dumps(motion.meta))

    def bvh_file(p: Path) -> None:
        from ..motion.bvh import write_joint_positions_bvh

        write_joint_positions_bvh(p, joints, fps=fps)

    def preview_file(p: Path) -> None:
        from ..evaluation.plots import preview as draw

        draw(joints, p, title=motion.meta.get("video", ""), fps=fps, stride=2)

    return [npz, *([bvh_file] if bvh else []), *([preview_file] if preview else [])]


def run_video_command(args: argparse.Namespace, targets: list[Path]) -> list[Path]:
    """Extract, then write all outputs atomically (nothing is written when the video is refused)."""
    from ..runtime.outputs import write_outputs
    from ..runtime.requests import check_value
    from . import extract_motion

    if args.clean_up is not None:
        check_value("clean_up", args.clean_up)  # before any work
    motion = extract_motion(args.video, fov_deg=args.fov, progress=args.video_progress("reading video"),
                            max_seconds=args.max_seconds)
    for w in motion.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.clean_up is not None:
        from ..runtime.pipeline import SaladPipeline
        from .extract import clean_video_motion

        print(f"loading model {args.model} for the clean-up …", file=sys.stderr, flush=True)
        motion = clean_video_motion(motion, SaladPipeline.from_pretrained(args.model), args.clean_up)
    writers = motion_writers(motion, args.bvh, args.preview)
    return write_outputs(dict(zip(targets, writers, strict=True)), force=args.force)
