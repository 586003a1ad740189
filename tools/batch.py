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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
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


# ------------------------------------------------------------------------------------------------
# Outputs


def export_bvh(arm, path: Path, scene) -> None:  # noqa: ANN001 - bpy objects
    import addon_utils
    import bpy

    try:
        bpy.ops.export_anim.bvh.get_rna_type()
    except KeyError:  # Blender's BVH add-on is off (ships with Blender, also in the bpy wheel)
        addon_utils.enable("io_anim_bvh", default_set=False)
    _activate(arm)
    res = bpy.ops.export_anim.bvh(filepath=str(path), check_existing=False, frame_start=scene.frame_start,
                                  frame_end=scene.frame_end, rotate_mode="NATIVE", root_transform_only=False)
    if "FINISHED" not in res:
        raise RuntimeError(f"BVH export failed: {res}")


def export_fbx(arm, path: Path) -> None:  # noqa: ANN001
    import bpy

    _activate(arm, with_children=True)
    res = bpy.ops.export_scene.fbx(filepath=str(path), check_existing=False, use_selection=True,
                                   object_types={"ARMATURE", "MESH"}, add_leaf_bones=False, bake_anim=True,
                                   bake_anim_use_all_actions=False, bake_anim_use_nla_strips=False)
    if "FINISHED" not in res:
        raise RuntimeError(f"FBX export failed: {res}")


def _activate(obj, with_children: bool = False) -> None:  # noqa: ANN001
    import bpy

    vl = bpy.context.view_layer
    for o in vl.objects:
        o.select_set(False)
    obj.select_set(True)
    if with_children:
        for c in obj.children:
            c.select_set(True)
    vl.objects.active = obj


def preview_frame(root: np.ndarray, hands: np.ndarray, min_raise: float = 0.35) -> int:
    """The frame a still should show: where a hand is highest, if one rises to the chest; else the middle.

    Prompts are mostly about the hands (wave, raise, reach) or about travelling (walk, run, turn):
    the wave in "walks and waves" is what people want to see, a mid-clip stride is right for a walk.
    ``root`` [F, 3] and ``hands`` [F, H, 3] in metres, Z up; ``min_raise`` is the height above the
    pelvis that counts as raised (a running arm swing stays below it).
    """
    height = (np.asarray(hands)[..., 2] - np.asarray(root)[:, None, 2]).max(-1)
    if len(height) == 0 or height.max() < min_raise:
        return max(len(height) - 1, 0) // 2
    return int(np.argmax(height))


def _key_frame(scene, arm) -> int:  # noqa: ANN001
    """The scene frame :func:`preview_frame` picks from the pelvis and wrist bones (the middle without them)."""
    pose = arm.pose.bones
    names = ("pelvis", "left_wrist", "right_wrist")
    if not all(n in pose for n in names):
        return (scene.frame_start + scene.frame_end) // 2
    mw = np.array(arm.matrix_world)
    track = []
    for f in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(f)
        track.append([mw[:3, :3] @ np.array(pose[n].head) + mw[:3, 3] for n in names])
    track = np.array(track)
    return scene.frame_start + preview_frame(track[:, 0], track[:, 1:])


PREVIEW_OBJECTS = ("SALAD Preview Camera", "SALAD Floor", "SALAD Sun")

# Headless Blender on Linux asks EGL for an OpenGL 4.6 context first and steps down until the driver accepts
# one; every refusal prints this line from Blender's C code (e.g. Mesa's software llvmpipe offers 4.5: three
# lines on the first render, one per context). Said once, before the first render, so nobody hunts for a bug.
EGL_NOTE = ("note: headless Blender may now print 'EGL Error (0x3009): EGL_BAD_MATCH' lines: it asks the OpenGL "
            "driver for version 4.6 first and steps down to what the driver offers; harmless, the picture renders")
_egl_note_shown = False


def explain_egl_once() -> None:
    global _egl_note_shown
    import bpy

    if not _egl_note_shown and bpy.app.background and sys.platform.startswith("linux"):
        print(EGL_NOTE, file=sys.stderr, flush=True)
    _egl_note_shown = True


def render_preview(scene, arm, path: Path, engine: str, resolution: str, frame: int | None = None) -> None:  # noqa: ANN001
    """A still of ``frame`` (default the key frame, :func:`preview_frame`): 3/4 front camera framing the body,
    floor, sun; Workbench or Cycles CPU."""
    import bpy
    from mathutils import Vector

    from salad_blender import facing

    for name in PREVIEW_OBJECTS:  # a strip renders several stills: one camera, floor and sun at a time
        old = bpy.data.objects.get(name)
        if old is not None:
            bpy.data.objects.remove(old, do_unlink=True)
    scene.frame_set(_key_frame(scene, arm) if frame is None else int(frame))
    body = next((c for c in arm.children if c.type == "MESH"), None)
    deps = bpy.context.evaluated_depsgraph_get()
    if body is not None:
        ev = body.evaluated_get(deps)
        me = ev.to_mesh()
        co = np.empty(len(me.vertices) * 3, dtype=np.float64)
        me.vertices.foreach_get("co", co)
        mw = np.array(ev.matrix_world)
        pts = co.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3]
        ev.to_mesh_clear()
    else:
        ev = arm.evaluated_get(deps)
        mw = np.array(ev.matrix_world)
        pts = np.array([np.array(pb.head) for pb in ev.pose.bones]) @ mw[:3, :3].T + mw[:3, 3]
    lo, hi = pts.min(0), pts.max(0)
    centre = (lo + hi) / 2
    radius = max(float(np.linalg.norm(hi - lo)) / 2, 0.6)

    # Facing at this frame from the hips (the add-on's one computation of it).
    pose = arm.evaluated_get(deps).pose.bones
    fwd = facing.FRONT
    if "left_hip" in pose and "right_hip" in pose:
        rot = mw[:3, :3]
        fwd = facing.forward(rot @ np.array(pose["left_hip"].head), rot @ np.array(pose["right_hip"].head))
    side = np.cross(fwd, [0.0, 0.0, 1.0])
    view = fwd * 0.85 + side * 0.45 + np.array([0.0, 0.0, 0.12])
    view /= np.linalg.norm(view)

    cam_data = bpy.data.cameras.new("SALAD Preview Camera")
    cam_data.lens = 50.0
    cam = bpy.data.objects.new("SALAD Preview Camera", cam_data)
    scene.collection.objects.link(cam)
    w, h = (int(x) for x in resolution.split("x"))
    fov = 2 * np.arctan(cam_data.sensor_width / 2 / cam_data.lens) * min(1.0, h / w)
    dist = radius / np.sin(fov / 2) * 1.08
    cam.location = Vector(centre + view * dist)
    cam.rotation_euler = (Vector(centre) - cam.location).to_track_quat("-Z", "Y").to_euler()
    cam_data.clip_end = max(100.0, dist * 4)
    scene.camera = cam

    floor_mesh = bpy.data.meshes.new("SALAD Floor")
    s = max(60.0, radius * 30)
    c = centre
    floor_mesh.from_pydata([(c[0] - s, c[1] - s, 0), (c[0] + s, c[1] - s, 0), (c[0] + s, c[1] + s, 0),
                            (c[0] - s, c[1] + s, 0)], [], [(0, 1, 2, 3)])
    floor = bpy.data.objects.new("SALAD Floor", floor_mesh)
    scene.collection.objects.link(floor)
    floor_mat = bpy.data.materials.new("SALAD Floor")
    floor_mat.diffuse_color = (0.62, 0.62, 0.64, 1.0)
    floor_mesh.materials.append(floor_mat)
    if body is not None and not body.data.materials:
        mat = bpy.data.materials.new("SALAD Body")
        mat.diffuse_color = (0.85, 0.45, 0.2, 1.0)
        body.data.materials.append(mat)

    sun_data = bpy.data.lights.new("SALAD Sun", "SUN")
    sun_data.energy = 3.0
    sun = bpy.data.objects.new("SALAD Sun", sun_data)
    sun.rotation_euler = (0.7, 0.2, 0.6)
    scene.collection.objects.link(sun)
    if scene.world is None:
        scene.world = bpy.data.worlds.new("SALAD World")
    scene.world.color = (0.30, 0.34, 0.40)

    r = scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = w, h, 100
    r.image_settings.file_format = "PNG"
    r.filepath = str(path)
    if engine == "cycles":
        r.engine = "CYCLES"
        scene.cycles.device = "CPU"
        scene.cycles.samples = 16
        if scene.world.use_nodes is False:
            scene.world.use_nodes = True
        bg = scene.world.node_tree.nodes.get("Background")
        if bg is not None:
            bg.inputs[0].default_value = (0.8, 0.82, 0.86, 1.0)
            bg.inputs[1].default_value = 0.6
        for m in (floor_mat, *(body.data.materials if body is not None else [])):
            m.use_nodes = True
            bsdf = m.node_tree.nodes.get("Principled BSDF")
            if bsdf is not None:
                bsdf.inputs[0].default_value = m.diffuse_color
    else:
        r.engine = "BLENDER_WORKBENCH"
        sh = scene.display.shading
        sh.light = "STUDIO"
        sh.color_type = "MATERIAL"
        sh.show_shadows = True
        sh.shadow_intensity = 0.4
        sh.show_cavity = True
        scene.display.light_direction = (0.4, -0.4, 0.8)
    bpy.ops.render.render(write_still=True)
    if not path.is_file():
        raise RuntimeError(f"the renderer wrote no image to {path}")


# ------------------------------------------------------------------------------------------------


def strip_frames(scene, action, n: int) -> list[int]:  # noqa: ANN001
    """Scene frames of a picture strip: for a shot, the middle of each segment's own content first, then
    evenly spaced frames up to ``n``; otherwise ``n`` evenly spaced frames."""
    import json

    lo, hi = scene.frame_start, scene.frame_end
    frames: list[int] = []
    shot = json.loads(action["salad_shot"]) if "salad_shot" in action.keys() else None
    if shot and shot.get("segments"):
        per_frame = scene.render.fps / scene.render.fps_base / float(action.get("salad_source_fps", 20.0))
        for seg in shot["segments"]:
            a, b = seg.get("content_start", seg.get("start", 0)), seg.get("content_end", seg.get("end", 0))
            mid = (a + b) / 2
            frames.append(int(round(lo + mid * per_frame)))
    extra = max(n - len(frames), 0)
    frames += [int(round(lo + (hi - lo) * (k + 0.5) / extra)) for k in range(extra)]
    return sorted(min(max(f, lo), hi) for f in frames)


def render_strip(scene, arm, path: Path, frames: list[int], engine: str, resolution: str) -> None:  # noqa: ANN001
    """Stills of ``frames`` side by side in one PNG (each framed on the body, left to right in time)."""
    import tempfile

    import bpy

    tiles = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, f in enumerate(frames):
            p = Path(tmp) / f"tile_{k}.png"
            render_preview(scene, arm, p, engine, resolution, frame=f)
            img = bpy.data.images.load(str(p))
            w, h = img.size
            tiles.append(np.array(img.pixels[:], dtype=np.float32).reshape(h, w, 4))
            bpy.data.images.remove(img)
    strip = np.concatenate(tiles, axis=1)
    out = bpy.data.images.new("SALAD strip", strip.shape[1], strip.shape[0], alpha=True)
    out.pixels.foreach_set(strip.ravel())
    out.filepath_raw = str(path)
    out.file_format = "PNG"
    out.save()
    bpy.data.images.remove(out)
    for name in PREVIEW_OBJECTS:
        obj = bpy.data.objects.get(name)
        if obj is not None:
            bpy.data.objects.remove(obj, do_unlink=True)


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


def save_blend(path: Path) -> None:
    """Save the .blend without Blender's ``.blend1`` backup of the file it replaces: ``--force`` means overwrite,
    and a batch run leaves only its outputs (the user's "Save Versions" preference is put back afterwards)."""
    import bpy

    prefs = bpy.context.preferences.filepaths
    versions = prefs.save_version
    prefs.save_version = 0
    try:
        bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)
    finally:
        prefs.save_version = versions


def write_output(path: Path, write, written: list[Path]) -> None:  # noqa: ANN001 - write(path) makes the file
    """Write through a temporary name, renamed once complete (Blender's exporters write in place: a full disk
    left a truncated file under the final name). The .blend: Blender saves so itself. Errors: one line."""
    tmp = path if path.suffix == ".blend" else path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        write(tmp)
        if tmp != path:
            os.replace(tmp, path)
    except (RuntimeError, OSError) as exc:
        if tmp != path:
            tmp.unlink(missing_ok=True)
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("Location:")]
        why = re.sub(r"^(Error: )?(Python: )?(\w*Error: )?(\[Errno \d+\] )?", "", lines[-1] if lines else "")
        done = f" ({', '.join(p.name for p in written)} written)" if written else ""
        raise OSError(f"cannot write {path.name}: {getattr(exc, 'strerror', None) or why or exc}{done}") from None


def check_out_folder(out: Path) -> str | None:
    """Why ``--out`` cannot be the output folder (a file, not creatable, not writable), else None."""
    import tempfile

    if out.exists() and not out.is_dir():
        return f"--out {out} is a file; it must be a folder (it will hold one .blend per prompt)"
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".salad-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write into --out {out}: {exc.strerror or exc}"
    return None


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
