"""Command line: ``python -m salad_model generate|edit|attention|compose|continue|inbetween ...``.

Writes an .npz (joints [T,22,3] metres Y-up at the model's fps, features, metadata JSON) and optionally a
BVH (SMPL-22 skeleton Blender imports) and a stick-figure preview (.gif/.mp4).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def _progress(label: str):
    """Per-step progress on stderr: a tqdm bar on a terminal (rate and time left), a plain line at each
    quarter in logs (a redrawn bar would fill a log file with carriage returns)."""
    start = time.time()
    if not sys.stderr.isatty():
        def line(i: int, n: int) -> None:
            if i == n or i % max(n // 4, 1) == 0:
                sys.stderr.write(f"{label}: step {i}/{n} ({time.time() - start:.1f}s)\n")

        return line
    from tqdm import tqdm

    bar = None

    def cb(i: int, n: int) -> None:
        nonlocal bar
        if bar is None or n != bar.total or i < bar.n:  # a new pass (shots call one callback per window)
            if bar is not None:
                bar.close()
            bar = tqdm(total=n, desc=label, unit="step", file=sys.stderr, dynamic_ncols=True)
        bar.update(i - bar.n)
        if i >= n:
            bar.close()

    return cb


def output_paths(out: Path, bvh: bool = False, preview: str | None = None, extra: tuple[str, ...] = ()
                 ) -> list[Path]:
    """Every file a result writes: ``<stem>.npz`` (+ ``.bvh``, + preview, + extras); see runtime.outputs."""
    from salad_model.runtime.outputs import output_stem, with_ext

    stem = output_stem(out)
    exts = [".npz", *([".bvh"] if bvh else []), *(["." + preview.lstrip(".")] if preview else []), *extra]
    return [with_ext(stem, e) for e in exts]


def save_motion(motion, out: Path, bvh: bool = False, preview: str | None = None, force: bool = True,
                extra: dict | None = None) -> list[Path]:
    """Write the npz (+ BVH, + preview, + ``extra`` {suffix: writer(path)}) of one motion atomically.

    Returns exactly the written paths. ``force=False`` refuses to replace an existing file.
    """
    import numpy as np

    from salad_model.runtime.outputs import write_outputs

    paths = output_paths(out, bvh, preview, tuple(extra or ()))
    joints, fps = motion.joints, motion.meta["fps"]
    # the latent lets a shot continue this motion exactly (python -m salad_model continue FILE.npz)
    latent = {} if motion.latent is None else {"latent": motion.latent.detach().float().cpu().numpy()}

    def npz(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, joints=joints.astype(np.float32), features=motion.features.astype(np.float32),
                     fps=np.float32(fps), meta=json.dumps(motion.meta), **latent)

    def bvh_file(p: Path) -> None:
        from .motion.bvh import write_joint_positions_bvh

        write_joint_positions_bvh(p, joints, fps=fps)

    def preview_file(p: Path) -> None:
        from .evaluation.plots import preview as draw

        title = motion.meta.get("edit_prompt") or motion.meta.get("prompt") or ""
        draw(joints, p, title=title, fps=fps, stride=2)

    writers = [npz, *([bvh_file] if bvh else []), *([preview_file] if preview else []), *(extra or {}).values()]
    return write_outputs(dict(zip(paths, writers, strict=True)), force=force)


def _common(p: argparse.ArgumentParser, length: bool = True) -> None:
    """Options every generating command shares; ``length``: also --seconds / --frames (one clip's length)."""
    p.add_argument("--model", default="demo", help="'demo' (bundled), 'official' (after `download official`), "
                   "our model folder, or an official checkpoint folder (checkpoints/t2m/<denoiser name>)")
    if length:
        p.add_argument("--seconds", type=float, default=None, help="duration (rounded to 4-frame units)")
        p.add_argument("--frames", type=int, default=None, help="length in frames (multiple of 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: model's)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--sampler", default="ddim", choices=["ddim", "dpm++"])
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: OMP_NUM_THREADS, else the physical cores)")
    p.add_argument("--out", type=Path, required=True,
                   help="output name: NAME or NAME.npz writes NAME.npz (NAME.bvh with --bvh, NAME.gif with --preview)")
    p.add_argument("--bvh", action="store_true", help="also write a BVH next to the npz")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--preview", nargs="?", const="gif", default=None, choices=["gif", "mp4"],
                   help="also write a stick-figure animation")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m salad_model", description="SALAD text-to-motion.")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="text → motion")
    g.add_argument("prompt")
    g.add_argument("--fast", action="store_true",
                   help="fast mode: DPM-Solver++ at few steps, guidance on the first ones (replaces --steps/--sampler)")
    _common(g)
    e = sub.add_parser("edit", help="edit a generation (source prompt + seed + length) by attention control")
    e.add_argument("source_prompt")
    e.add_argument("--fast", action="store_true",
                   help="the source was generated with --fast: source and edit use the fast preset")
    e.add_argument("--to", dest="edit_prompt", default=None, help="new prompt (word swap or refinement)")
    e.add_argument("--mode", default="auto", choices=["auto", "word_swap", "refine", "reweight", "mirror"])
    e.add_argument("--word", default=None, help="word or phrase to re-weight")
    e.add_argument("--scale", type=float, default=None, help="re-weight factor (−2…3; 1 = unchanged)")
    e.add_argument("--mirror", default=None, choices=["lower", "upper", "all"])
    e.add_argument("--mirror-method", default="geometric", choices=["geometric", "attention"],
                     help="geometric: the exact mirror image; attention: the paper's attention-row swap")
    e.add_argument("--source-out", type=Path, default=None, help="also write the source motion here")
    e.add_argument("--parts", default=None,
                   help="regenerate only these body parts from --to (arms, legs, upper, lower, part names or "
                        "indices 0–6, comma-separated); the other parts follow the source; legs take the root "
                        "(hips) with them unless --keep-path")
    e.add_argument("--keep-path", action="store_true",
                   help="with --parts: regenerated legs walk the source's kept path (their feet may slide on it)")
    _common(e)
    r = sub.add_parser("edit-real", help="edit real motion (BVH/npz): invert it under a caption, then edit")
    r.add_argument("motion", type=Path, help=".bvh (SMPL-22 or Bandai-Namco names), .npz with 'joints', or a video "
                   "(mp4 / mov / avi: its motion is extracted first, see the video command)")
    r.add_argument("--fov", type=float, default=None, help="a video's horizontal field of view (degrees)")
    r.add_argument("--prompt", required=True, help="a caption describing the input motion")
    r.add_argument("--to", dest="edit_prompt", default=None)
    r.add_argument("--mode", default="auto", choices=["auto", "word_swap", "refine", "reweight", "mirror"])
    r.add_argument("--word", default=None)
    r.add_argument("--scale", type=float, default=None)
    r.add_argument("--mirror", default=None, choices=["lower", "upper", "all"])
    r.add_argument("--mirror-method", default="geometric", choices=["geometric", "attention"],
                     help="geometric: the exact mirror image; attention: the paper's attention-row swap")
    r.add_argument("--null-text-iters", type=int, default=0,
                   help="0 = plain DDIM inversion at guidance 1 (default); N > 0 = null-text optimisation, guidance as "
                        "--guidance")
    r.add_argument("--edit-guidance", type=float, default=None,
                   help="guidance of the edit (default: 2.0 after plain DDIM inversion, --guidance after null-text)")
    r.add_argument("--overlap", type=int, default=40, help="frames shared by windows of long clips")
    from .video.cli import add_clean_up_argument

    add_clean_up_argument(r)
    _common(r)
    a = sub.add_parser("attention", help="per-word cross-attention heat maps (PNG + npz)")
    a.add_argument("prompt")
    _common(a)
    from .serving.shots_cli import add_shot_commands

    add_shot_commands(sub, _common)
    from .video.cli import add_video_command

    add_video_command(sub, _progress)
    from .fetch.cli import add_download_command

    add_download_command(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run the command; any failure is one ``error:`` line on stderr and exit code 2 (no traceback)."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - users get one line; SALAD_DEBUG=1 shows the traceback
        if os.environ.get("SALAD_DEBUG"):
            raise
        message = str(exc) or type(exc).__name__
        print(f"error: {message.splitlines()[0] if message else type(exc).__name__}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from salad_model.runtime.outputs import check_targets

    if getattr(args, "fast", False) and (args.steps != 50 or args.sampler != "ddim"):
        raise ValueError("--fast sets its own steps and sampler: give --fast or --steps/--sampler, not both")
    from .fetch.cli import resolve_model, run_download

    if args.command == "download":
        return run_download(args)
    if hasattr(args, "model"):  # `video` loads no model
        args.model = resolve_model(args.model)

    if getattr(args, "seconds", 0) is None and getattr(args, "frames", 0) is None:
        args.seconds = 4.0
    extra = (".attention.png", ".attention.npz") if args.command == "attention" else ()
    targets = output_paths(args.out, args.bvh, args.preview, extra)
    if getattr(args, "source_out", None):
        targets += output_paths(args.source_out, args.bvh, args.preview)
    check_targets(targets, force=args.force)  # before any model work
    if args.command == "video":  # no model: BlazePose only
        from .video.cli import run_video_command

        for p in run_video_command(args, targets):
            print(p)
        return 0
    real_joints = video = None  # edit-real's input motion (read from a video or a file)
    if args.command == "edit-real":  # the input is read before the model loads: a bad one fails at once
        from .runtime.requests import check_value
        from .video import VIDEO_SUFFIXES, extract_motion

        if args.clean_up is not None:
            check_value("clean_up", args.clean_up)
            if args.motion.suffix.lower() not in VIDEO_SUFFIXES:
                raise ValueError("--clean-up is for motion read from a video (mocap is cleaner than the model's prior)")
        if args.motion.suffix.lower() in VIDEO_SUFFIXES:
            video = extract_motion(args.motion, fov_deg=args.fov, progress=_progress("reading video"))
            for w in video.warnings:
                print(f"warning: {w}", file=sys.stderr)
            real_joints = video.joints
        else:  # a motion file too is read before the model: a bad one costs no model load
            from .motion.motion_io import load_motion

            real_joints = load_motion(args.motion)
    for path in (getattr(args, "source", None), getattr(args, "a", None), getattr(args, "b", None)):
        if isinstance(path, Path):  # continue / inbetween: their motion files too are checked before the model
            from .motion.motion_io import load_motion

            load_motion(path)
    print(f"loading model {args.model} …", file=sys.stderr, flush=True)  # the next seconds are torch and weights
    from .runtime.pipeline import SaladPipeline

    pipe = SaladPipeline.from_pretrained(args.model, device=args.device, threads=args.threads)
    if video is not None and args.clean_up is not None:
        from .video.extract import clean_video_motion

        real_joints = clean_video_motion(video, pipe, args.clean_up, callback=_progress("clean-up")).joints
    keys = ("edit_prompt",) if args.command == "edit-real" else ("prompt", "source_prompt", "edit_prompt")
    prompts = [getattr(args, k, None) for k in keys]  # edit-real's --prompt describes the input: not checked
    if args.command == "compose":  # a timeline: every segment's prompt
        from .runtime.shots import Segment

        prompts += [Segment.parse(s).prompt for s in args.segment]
    for warning in pipe.prompt_warnings(*(p for p in prompts if isinstance(p, str))):
        print(f"warning: {warning.message}", file=sys.stderr)  # still generates: the user may know better
    if args.command in ("compose", "continue", "inbetween") or getattr(args, "parts", None) is not None:
        from .serving.shots_cli import run_shot_command

        for p in run_shot_command(pipe, args, _progress,
                                  lambda m, out, bvh, prev: save_motion(m, out, bvh, prev, args.force)):
            print(p)
        return 0
    common = dict(frames=args.frames, seconds=args.seconds, seed=args.seed, guidance=args.guidance,
                  steps=args.steps, scheduler=args.sampler)
    if args.command in ("generate", "edit") and args.fast:
        common.update(fast=True)
    if args.command == "generate":
        motion = pipe.generate(args.prompt, callback=_progress("generating"), **common)
        paths = save_motion(motion, args.out, args.bvh, args.preview, args.force)
    elif args.command == "edit":
        motion, source = pipe.edit(args.source_prompt, edit_prompt=args.edit_prompt, mode=args.mode,
                                   word=args.word, scale=args.scale, mirror=args.mirror,
                                   mirror_method=args.mirror_method, callback=_progress("editing"),
                                   return_source=True, **common)
        print(f"edit: {motion.meta['edits'][0].get('why') or motion.meta['edits'][0]['mode']}")
        paths = save_motion(motion, args.out, args.bvh, args.preview, args.force)
        if args.source_out and source is not None:
            paths += save_motion(source, args.source_out, args.bvh, args.preview, args.force)
    elif args.command == "edit-real":
        source = real_joints
        edit = {k: v for k, v in dict(edit_prompt=args.edit_prompt, word=args.word, scale=args.scale,
                                      mirror=args.mirror).items() if v is not None}
        if edit:
            edit.update(mode=args.mode, mirror_method=args.mirror_method)
            if args.edit_guidance is not None:
                edit["edit_guidance"] = args.edit_guidance
        motion = pipe.edit_real(args.prompt, joints=source, overlap=args.overlap,
                                null_text_iters=args.null_text_iters, steps=args.steps, guidance=args.guidance,
                                callback=_progress("inverting + editing"), **edit)
        paths = save_motion(motion, args.out, args.bvh, args.preview, args.force)
    else:
        import numpy as np

        from .evaluation.plots import attention_heatmaps

        att = pipe.attention(args.prompt, callback=_progress("generating"), **common)
        def maps_npz(p: Path) -> None:
            with open(p, "wb") as f:
                np.savez(f, maps=att.maps, tokens=np.array(att.tokens), parts=np.array(att.parts))

        extra = {".attention.png": lambda p: attention_heatmaps(att.tokens, att.maps, p, fps=pipe.fps,
                                                                title=args.prompt),
                 ".attention.npz": maps_npz}
        paths = save_motion(att.motion, args.out, args.bvh, args.preview, args.force, extra)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
