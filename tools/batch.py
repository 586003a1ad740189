"""Batch text-to-motion with Blender: one .blend (+ .bvh, .fbx, preview .png) per prompt.

Runs the add-on's own job functions (``salad_blender.jobs``), the code behind the "Generate Motion"
button — no second code path — driving ``poll()`` in a loop because headless Blender runs no timers.

    blender -b --python-exit-code 1 --python tools/batch.py -- --prompt "a person runs forward" --out out/
    python tools/batch.py --prompts prompts.txt --seconds 4 --out out/ --bvh --fbx --render
    python tools/batch.py --segment "a person walks forward:4" --segment "a person waves:3" --out out/ --strip 6
    python tools/batch.py --video clip.mp4 --out out/ --bvh

(the second form needs the ``bpy`` module, e.g. ``pip install bpy``). Blender exits 0 after a Python
error in a ``--python`` script unless ``--python-exit-code 1`` is given; this script calls
``sys.exit`` with its own code (0 all written, 1 a prompt failed, 2 bad arguments or set-up), which
Blender passes on either way.

Worker interpreter: ``--python``, else $SALAD_WORKER_PYTHON, else this interpreter if it can import
salad_model and torch (``python tools/batch.py`` in the model's environment), else the installed
add-on's preference / managed environment.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(Path(__file__).resolve().parent) not in sys.path:  # its modules: Blender's --python does not add the folder
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_files import check_out_folder, export_bvh, export_fbx, save_blend, write_output  # noqa: E402, F401
from batch_render import (  # noqa: E402, F401 - tests import preview_frame from here
    explain_egl_once,
    preview_frame,
    render_preview,
    render_strip,
    strip_frames,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def script_args(argv: list[str] | None = None) -> list[str]:
    """Our arguments: everything after "--" (Blender's convention), else all of them."""
    argv = list(sys.argv if argv is None else argv)
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def parse_args(args: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="batch.py", description="Text to motion in Blender, in batch.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="one prompt")
    src.add_argument("--prompts", type=Path, help="a text file, one prompt per line (# comments)")
    src.add_argument("--segment", action="append", metavar="PROMPT:SECONDS[:SEED]",
                     help="a shot: one continuous motion from these segments in order (repeat the option)")
    src.add_argument("--video", type=Path, help="a video (mp4 / mov / avi): import its motion (Import Motion from "
                     "Video; the worker needs the 'video' extra)")
    p.add_argument("--trim-last", action=argparse.BooleanOptionalAction, help="--segment: End on Last Segment, on "
                   "by default (appending later re-makes that segment; --no-trim-last keeps every frame)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--seconds", type=float, default=4.0, help="duration (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="'demo' or a model folder (default $SALAD_MODEL or demo)")
    p.add_argument("--python", default=None, help="the worker's Python interpreter (model environment)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--threads", type=int, default=0, help="worker CPU threads (0: physical cores)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=None, help="default: the model's own (see its config)")
    p.add_argument("--sampler", default="ddim", choices=("ddim", "dpm++"))
    p.add_argument("--fps", type=int, default=None, help="scene frame rate (default: Blender's, 24)")
    p.add_argument("--fov", type=float, default=None, help="--video: the camera's horizontal field of view (deg)")
    p.add_argument("--no-clean-up", dest="clean_up", action="store_false",
                   help="--video: skip the model's motion-prior clean-up (on by default, as in the add-on)")
    p.add_argument("--no-pin-feet", action="store_true", help="keep the model's foot sliding")
    p.add_argument("--bvh", action="store_true", help="also write <slug>.bvh (Blender's BVH exporter)")
    p.add_argument("--fbx", action="store_true", help="also write <slug>.fbx (armature, body, animation)")
    p.add_argument("--render", action="store_true",
                   help="also render a preview <slug>.png (the frame where a hand is highest, else mid-clip)")
    p.add_argument("--engine", default="workbench", choices=("workbench", "cycles"),
                   help="preview renderer (Workbench is fast headless)")
    p.add_argument("--resolution", default="960x540", help="preview size WxH")
    p.add_argument("--strip", type=int, default=0, metavar="N",
                   help="also render a picture strip <slug>_strip.png of N frames (a shot: at least one per segment)")
    p.add_argument("--force", action="store_true",
                   help="overwrite existing output files (default: refuse them before any work)")
    a = p.parse_args(args)
    if not re.fullmatch(r"\d+x\d+", a.resolution):
        p.error("--resolution must look like 960x540")
    if a.strip < 0 or a.strip > 24:
        p.error("--strip takes 0–24 frames")
    if a.trim_last is not None and not a.segment:
        p.error(f"--{'' if a.trim_last else 'no-'}trim-last is an option of a shot (--segment)")
    if a.segment:
        try:
            a.segments = [parse_segment(x) for x in a.segment]
        except ValueError as exc:
            p.error(str(exc))
    return a


def parse_segment(spec: str) -> tuple[str, float, int | None]:
    """``"PROMPT:SECONDS"`` or ``"PROMPT:SECONDS:SEED"`` → (prompt, seconds, seed)."""
    head, sep, last = spec.rpartition(":")
    if not sep:
        raise ValueError(f"--segment {spec!r} must be \"PROMPT:SECONDS\" (e.g. \"a person walks forward:4\")")
    try:
        value = float(last)
    except ValueError:
        raise ValueError(f"--segment {spec!r}: {last!r} is not a number of seconds") from None
    prompt, sep2, secs = head.rpartition(":")
    if sep2 and re.fullmatch(r"\s*\d+(\.\d*)?\s*", secs) and re.fullmatch(r"\s*\d+\s*", last):
        return prompt.strip(), float(secs), int(last)
    return head.strip(), value, None


def read_prompts(a: argparse.Namespace) -> list[str]:
    if a.prompt is not None:
        return [a.prompt]
    lines = a.prompts.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def output_suffixes(a: argparse.Namespace) -> list[str]:
    """What one prompt writes, in the order it is written: <slug>.blend, then the asked extras."""
    return [".blend", *([".bvh"] if a.bvh else []), *([".fbx"] if a.fbx else []), *([".png"] if a.render else []),
            *(["_strip.png"] if a.strip else [])]


def plan(a: argparse.Namespace, prompts: list[str | None]) -> list[tuple[str | None, str, str]]:
    """(prompt, slug, label) of each run: the slug names its files, the label its lines (a prompt shortened)."""
    taken: set[str] = set()
    runs = []
    for prompt in prompts:
        if a.video:
            name, label = "video " + a.video.stem, "'the video'"
        elif prompt is None:
            name, label = "shot " + a.segments[0][0], "'the shot'"
        else:
            name, label = prompt, repr(prompt if len(prompt) <= 80 else prompt[:77] + "…")
        runs.append((prompt, slugify(name, taken), label))
    return runs


def existing_outputs(a: argparse.Namespace, out: Path, slugs: list[str]) -> list[Path]:
    """Output files of this run that exist already (refused without --force, like ``python -m salad_model``)."""
    return [out / f"{slug}{suffix}" for slug in slugs for suffix in output_suffixes(a)
            if (out / f"{slug}{suffix}").exists()]


def slugify(prompt: str, taken: set[str]) -> str:
    """File-name stem for a prompt: lowercase words joined by "_", unique within this run."""
    base = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")[:60].rstrip("_") or "motion"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}_{n}", n + 1
    taken.add(slug)
    return slug


def worker_python(flag: str | None) -> str:
    """See the module docstring for the order."""
    if flag:
        return flag
    if os.environ.get("SALAD_WORKER_PYTHON"):
        return os.environ["SALAD_WORKER_PYTHON"]
    if (importlib.util.find_spec("salad_model") is not None and importlib.util.find_spec("torch") is not None
            and os.path.basename(sys.executable).lower().startswith("python")):
        return sys.executable
    import bpy

    for name, addon in bpy.context.preferences.addons.items():
        if name == "salad_blender" or name.endswith(".salad_motion"):
            prefs = addon.preferences
            if prefs is not None and getattr(prefs, "python_path", ""):
                return bpy.path.abspath(prefs.python_path)
            from salad_blender import setup_env

            managed = setup_env.managed_python(name)
            if managed:
                return managed
    return ""


def run_one(jobs, config, prompt: str | None, a: argparse.Namespace, out: Path, slug: str, tag: str) -> list[Path]:  # noqa: ANN001
    """One prompt (``prompt``) or the shot of ``a.segments`` (``prompt`` None) → .blend and the asked outputs."""
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    scene = bpy.context.scene
    if a.fps:
        scene.render.fps, scene.render.fps_base = int(a.fps), 1.0
    target = jobs.Target(kind="new", pin_feet=not a.no_pin_feet)
    sampling = jobs.Sampling(seconds=a.seconds, seed=a.seed, guidance=a.guidance, steps=a.steps, sampler=a.sampler)
    if a.video is not None:  # the add-on's "Import Motion from Video" job
        from salad_blender import video_jobs
        from salad_blender.protocol import CLEAN_UP_STRENGTH

        fov = None if a.fov is None else math.radians(a.fov)  # typed in degrees; Blender's angles are radians
        job = video_jobs.start_import_video(config, str(a.video), target, fov=fov,
                                            clean_up=CLEAN_UP_STRENGTH if a.clean_up else None)
    elif prompt is None:  # a shot, through the add-on's "Generate Shot" job
        from salad_blender import shot_jobs

        segments = [{"prompt": p, "seconds": s, **({} if seed is None else {"seed": seed})}
                    for p, s, seed in a.segments]
        job = shot_jobs.start_compose(config, segments, sampling, target, trim_last=a.trim_last is not False)
    else:
        job = jobs.start_generate(config, prompt, sampling, target)
    shown = -1
    while not job.poll():
        pct = int(job.progress * 10) * 10
        if pct != shown:
            shown = pct
            print(f"{tag} {pct:3d}% {job.status}", file=sys.stderr, flush=True)
        time.sleep(0.05)
    if job.state != "done":
        details = f"\n{job.details}" if job.details else ""
        raise jobs.JobError(job.message + details)
    if getattr(job, "warning", ""):
        print(f"{tag} warning: {job.warning}", file=sys.stderr, flush=True)
    action = job.output
    arm = next(o for o in scene.objects if o.animation_data is not None and o.animation_data.action == action)
    written: list[Path] = []
    writers = {".blend": save_blend,
               ".bvh": lambda p: export_bvh(arm, p, scene), ".fbx": lambda p: export_fbx(arm, p),
               ".png": lambda p: render_preview(scene, arm, p, a.engine, a.resolution),
               "_strip.png": lambda p: render_strip(scene, arm, p, strip_frames(scene, action, a.strip), a.engine,
                                                    a.resolution)}
    if a.render or a.strip:
        explain_egl_once()
    for suffix in output_suffixes(a):
        write_output(out / f"{slug}{suffix}", writers[suffix], written)
        written.append(out / f"{slug}{suffix}")
    print(f"{tag} done in {job.elapsed:.1f} s: " + ", ".join(p.name for p in written), file=sys.stderr)
    return written


def summary(kind: str, total: int, written: int, out: Path, seconds: float) -> str:
    """The run's last line, worded for what it made: "2/3 prompt(s) written …" counts only prompt runs."""
    if kind == "prompts":
        return f"{written}/{total} prompt(s) written to {out} in {seconds:.1f} s"
    what = "video motion" if kind == "video" else "shot"
    if written:
        return f"{what} written to {out} in {seconds:.1f} s"
    return f"{what} failed (see the error above) after {seconds:.1f} s"


def main(argv: list[str] | None = None) -> int:
    """Run the batch; unexpected failures are one ``error:`` line (SALAD_DEBUG=1 shows the traceback)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - no traceback for users
        if os.environ.get("SALAD_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return EXIT_FAILED


def _main(argv: list[str] | None = None) -> int:
    a = parse_args(script_args(argv))
    out = a.out.expanduser().resolve()
    problem = check_out_folder(out)  # before Blender, the worker or any prompt
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        prompts = [None] if (a.segment or a.video) else read_prompts(a)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read --prompts {a.prompts}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return EXIT_USAGE
    if not prompts:
        print("error: no prompts given (the file is empty?)", file=sys.stderr)
        return EXIT_USAGE
    runs = plan(a, prompts)
    taken = [] if a.force else existing_outputs(a, out, [slug for _, slug, _ in runs])
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        print(f"error: {taken[0]} exists{more}; choose another --out or pass --force to overwrite", file=sys.stderr)
        return EXIT_USAGE
    try:
        import bpy  # noqa: F401
    except ImportError:
        print("error: batch.py needs Blender: run `blender -b --python-exit-code 1 --python tools/batch.py -- "
              "...`, or install the bpy module (pip install bpy) for `python tools/batch.py`", file=sys.stderr)
        return EXIT_USAGE
    if str(REPO) not in sys.path and importlib.util.find_spec("salad_blender") is None:
        sys.path.insert(0, str(REPO))
    from salad_blender import jobs

    if a.segment:
        from salad_blender import shot_inputs

        try:  # the add-on's checks before a worker starts: a bad segment is a usage error, like a bad option
            shot_inputs.check_segments([shot_inputs.Segment(p, s, seed) for p, s, seed in a.segments])
        except jobs.JobError as exc:
            print(f"error: --segment: {exc}", file=sys.stderr)
            return EXIT_USAGE
    python = worker_python(a.python)
    if not python:
        print("error: no worker Python found: pass --python /path/to/model-env/bin/python (an environment "
              "with salad_model and torch), or set SALAD_WORKER_PYTHON", file=sys.stderr)
        return EXIT_USAGE
    model = a.model or os.environ.get("SALAD_MODEL", "demo")
    config = jobs.WorkerConfig(python=python, model=model, device=a.device, threads=a.threads)
    try:
        jobs.resolve_python(python)
        jobs.check_model(model)
    except jobs.JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    failed = 0
    t0 = time.monotonic()
    try:
        for i, (prompt, slug, label) in enumerate(runs, 1):
            tag = f"[{i}/{len(prompts)} {slug}]"
            try:
                run_one(jobs, config, prompt, a, out, slug, tag)
            except (jobs.JobError, RuntimeError, OSError, ValueError) as exc:
                failed += 1
                print(f"error: {label}: {exc}", file=sys.stderr)
    finally:
        jobs.shutdown()
    kind = "video" if a.video else "shot" if a.segment else "prompts"
    print(summary(kind, len(prompts), len(prompts) - failed, out, time.monotonic() - t0), file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
