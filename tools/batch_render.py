"""Preview pictures of ``tools/batch.py`` (``--render``, ``--strip``): a still at the frame that shows the motion
(a raised hand, else the middle), or a strip of stills, on a camera, floor and sun of their own (Workbench or Cycles).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


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
