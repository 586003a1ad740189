"""Render a test video with ground truth: a Bandai-Namco clip played by a simple clothed human figure.

Run with the venv's Python (bpy 5.0.1 as a module, Cycles on the CPU; the machine is shared, so ``nice``):

    nice -n 10 python tools/render_video_testclip.py tests/data/dataset-2_walk-turn-left_active_024.bvh \
        --camera front --seconds 3 --out tests/data/video/walk_front

writes ``<out>.mp4`` (640x480, 25 fps, MPEG-4) and ``<out>.npz`` with the ground truth: ``joints`` [T, 22, 3]
(SMPL-22, metres, Y up, the video's frame rate, the clip's own world frame), ``fps``, ``camera_world``
(the camera's 4x4 pose in Blender's Z-up world), ``lens_mm``, ``sensor_mm``, ``clip`` and ``camera``.

The figure is ellipsoids between the joints (skin, a blue long-sleeved shirt, dark trousers and shoes) with
a head that has hair, eyes, nose, mouth and ears: BlazePose's detector looks for a face, and the plain
ellipsoid body of the add-on was not found in most frames. Model space (Y up) maps to Blender by
(x, y, z) -> (x, -z, y).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from salad_model.motion.bandai_rig import bvh_to_smpl22  # noqa: E402
from salad_model.motion.skeleton import T2M  # noqa: E402

J = {n: i for i, n in enumerate(T2M.joint_names)}
SKIN, SHIRT, TROUSERS, SHOES = (0.80, 0.58, 0.45), (0.10, 0.25, 0.65), (0.12, 0.12, 0.15), (0.05, 0.04, 0.04)
HAIR, WHITE, DARK, LIPS = (0.08, 0.05, 0.03), (0.95, 0.95, 0.95), (0.02, 0.02, 0.02), (0.6, 0.2, 0.2)
# (name, from joint, to joint, radius x, radius y, extra length at each end, colour)
SEGMENTS = [
    ("thigh_l", "left_hip", "left_knee", 0.075, 0.075, 0.04, TROUSERS),
    ("thigh_r", "right_hip", "right_knee", 0.075, 0.075, 0.04, TROUSERS),
    ("shin_l", "left_knee", "left_ankle", 0.055, 0.055, 0.03, TROUSERS),
    ("shin_r", "right_knee", "right_ankle", 0.055, 0.055, 0.03, TROUSERS),
    ("foot_l", "left_ankle", "left_foot", 0.045, 0.05, 0.05, SHOES),
    ("foot_r", "right_ankle", "right_foot", 0.045, 0.05, 0.05, SHOES),
    ("collar_l", "left_collar", "left_shoulder", 0.06, 0.06, 0.02, SHIRT),
    ("collar_r", "right_collar", "right_shoulder", 0.06, 0.06, 0.02, SHIRT),
    ("upper_arm_l", "left_shoulder", "left_elbow", 0.05, 0.05, 0.03, SHIRT),
    ("upper_arm_r", "right_shoulder", "right_elbow", 0.05, 0.05, 0.03, SHIRT),
    ("forearm_l", "left_elbow", "left_wrist", 0.04, 0.04, 0.02, SKIN),
    ("forearm_r", "right_elbow", "right_wrist", 0.04, 0.04, 0.02, SKIN),
    ("neck", "neck", "head", 0.05, 0.05, 0.02, SKIN),
]


def to_blender(p: np.ndarray) -> np.ndarray:
    """Model space (Y up) -> Blender (Z up): (x, y, z) -> (x, -z, y)."""
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(np.linalg.norm(v), 1e-9)


def frame_axes(z: np.ndarray, left: np.ndarray) -> np.ndarray:
    """3x3 rotation with columns (x = left made orthogonal to z, y = z × x, which is *backward*, z)."""
    z = _unit(z)
    x = _unit(left - z * (left @ z))
    return np.stack([x, np.cross(z, x), z], axis=1)


def body_left(p: np.ndarray) -> np.ndarray:
    return (p[J["left_shoulder"]] - p[J["right_shoulder"]]) + (p[J["left_hip"]] - p[J["right_hip"]])


def pose_parts(p: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per body part (location, rotation 3x3, scale) for one frame of Blender-space joints [22, 3]."""
    left = body_left(p)
    out = {}
    for name, a, b, rx, ry, extra, _ in SEGMENTS:
        pa, pb = p[J[a]], p[J[b]]
        half = np.linalg.norm(pb - pa) / 2 + extra
        out[name] = ((pa + pb) / 2, frame_axes(pb - pa, left), np.array([rx, ry, half]))
    up = p[J["neck"]] - p[J["pelvis"]]
    rot = frame_axes(up, left)
    sh_w = np.linalg.norm(p[J["left_shoulder"]] - p[J["right_shoulder"]]) / 2 + 0.04
    out["chest"] = ((p[J["spine3"]] * 0.7 + p[J["spine1"]] * 0.3), rot, np.array([sh_w, 0.12, 0.26]))
    out["waist"] = (p[J["spine1"]], rot, np.array([0.15, 0.11, 0.16]))
    hip_w = np.linalg.norm(p[J["left_hip"]] - p[J["right_hip"]]) / 2 + 0.08
    out["hips"] = (p[J["pelvis"]] - rot[:, 2] * 0.02, rot, np.array([hip_w, 0.12, 0.12]))
    for side in ("left", "right"):
        e, w = p[J[f"{side}_elbow"]], p[J[f"{side}_wrist"]]
        d = _unit(w - e)
        out[f"hand_{side[0]}"] = (w + d * 0.08, frame_axes(d, left), np.array([0.045, 0.025, 0.08]))
    head_up = p[J["head"]] - p[J["neck"]]
    hr = frame_axes(head_up, left)
    c = p[J["head"]] + hr[:, 2] * 0.06
    x, y, z = hr[:, 0], -hr[:, 1], hr[:, 2]  # y: the face's direction (the frame's own y axis points back)
    out["head"] = (c, hr, np.array([0.085, 0.1, 0.115]))
    out["hair"] = (c + z * 0.045 - y * 0.035, hr, np.array([0.09, 0.085, 0.085]))  # top and back: the face shows
    for s, sx in (("l", 1.0), ("r", -1.0)):
        out[f"eye_{s}"] = (c + y * 0.078 + x * 0.035 * sx + z * 0.015, hr, np.array([0.022, 0.016, 0.016]))
        out[f"pupil_{s}"] = (c + y * 0.092 + x * 0.035 * sx + z * 0.015, hr, np.array([0.011, 0.006, 0.011]))
        out[f"brow_{s}"] = (c + y * 0.088 + x * 0.035 * sx + z * 0.042, hr, np.array([0.024, 0.007, 0.006]))
        out[f"ear_{s}"] = (c + x * 0.085 * sx, hr, np.array([0.012, 0.025, 0.03]))
    out["nose"] = (c + y * 0.1 - z * 0.012, hr, np.array([0.014, 0.025, 0.028]))
    out["mouth"] = (c + y * 0.086 - z * 0.05, hr, np.array([0.03, 0.01, 0.009]))
    return out


PART_COLOURS = {**{s[0]: s[6] for s in SEGMENTS}, "chest": SHIRT, "waist": SHIRT, "hips": TROUSERS,
                "hand_l": SKIN, "hand_r": SKIN, "head": SKIN, "hair": HAIR, "eye_l": WHITE, "eye_r": WHITE,
                "pupil_l": DARK, "pupil_r": DARK, "brow_l": HAIR, "brow_r": HAIR, "ear_l": SKIN, "ear_r": SKIN,
                "nose": SKIN, "mouth": LIPS}


def camera_pose(p_all: np.ndarray, azimuth_deg: float, lens: float, sensor: float, aspect: float
                ) -> np.ndarray:
    """4x4 camera pose looking at the clip (Blender space, all frames) from ``azimuth`` off its front.

    The distance is the smallest (from 3 m in 0.25 m steps) that keeps every joint inside the frame with a
    margin of 8% (heads and feet have some volume beyond their joints).
    """
    p0 = p_all[0]
    fwd = np.cross(_unit(body_left(p0)), np.array([0.0, 0.0, 1.0]))
    fwd[2] = 0
    fwd = _unit(fwd)
    a = np.radians(azimuth_deg)
    d = np.array([fwd[0] * np.cos(a) - fwd[1] * np.sin(a), fwd[0] * np.sin(a) + fwd[1] * np.cos(a), 0.0])
    pts = p_all.reshape(-1, 3)
    centre = (pts.min(0) + pts.max(0)) / 2
    centre[2] = 0.95
    half_w, half_h = sensor / 2 / lens, sensor / 2 / lens / aspect
    for dist in np.arange(3.0, 30.0, 0.25):
        eye = centre + d * dist + np.array([0.0, 0.0, 0.25])
        zc = _unit(eye - centre)  # camera looks along -z
        xc = _unit(np.cross(np.array([0.0, 0.0, 1.0]), zc))
        yc = np.cross(zc, xc)
        rel = (pts - eye) @ np.stack([xc, yc, zc], axis=1)
        depth = -rel[:, 2]
        if (depth > 0.5).all() and (np.abs(rel[:, 0] / depth) < half_w * 0.84).all() \
                and (np.abs(rel[:, 1] / depth) < half_h * 0.84).all():
            break
    m = np.eye(4)
    m[:3, :3] = np.stack([xc, yc, zc], axis=1)
    m[:3, 3] = eye
    return m


def build_scene(bpy, width: int, height: int, samples: int) -> dict:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    sc.cycles.device = "CPU"
    sc.cycles.samples = samples
    sc.cycles.use_denoising = False
    sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = width, height, 100
    sc.render.image_settings.file_format = "PNG"
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs[0].default_value = (0.75, 0.78, 0.82, 1)
    world.node_tree.nodes["Background"].inputs[1].default_value = 0.8
    sc.world = world
    mats = {}
    for col in PART_COLOURS.values():
        if col not in mats:
            m = bpy.data.materials.new(f"m{len(mats)}")
            m.use_nodes = True
            bsdf = m.node_tree.nodes["Principled BSDF"]
            bsdf.inputs["Base Color"].default_value = (*col, 1)
            bsdf.inputs["Roughness"].default_value = 0.7
            mats[col] = m
    bpy.ops.mesh.primitive_uv_sphere_add(segments=24, ring_count=12, radius=1.0)
    sphere = bpy.context.object.data
    bpy.data.objects.remove(bpy.context.object)
    parts = {}
    for name, col in PART_COLOURS.items():
        me = sphere.copy()
        me.materials.append(mats[col])
        for poly in me.polygons:
            poly.use_smooth = True
        ob = bpy.data.objects.new(name, me)
        ob.rotation_mode = "QUATERNION"
        sc.collection.objects.link(ob)
        parts[name] = ob
    bpy.ops.mesh.primitive_plane_add(size=60)
    floor = bpy.context.object
    fm = bpy.data.materials.new("floor")
    fm.use_nodes = True
    fm.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.45, 0.42, 0.38, 1)
    floor.data.materials.append(fm)
    sun = bpy.data.lights.new("sun", "SUN")
    sun.energy = 3.0
    sun_ob = bpy.data.objects.new("sun", sun)
    sun_ob.rotation_euler = (np.radians(40), 0, np.radians(30))
    sc.collection.objects.link(sun_ob)
    cam = bpy.data.cameras.new("cam")
    cam_ob = bpy.data.objects.new("cam", cam)
    sc.collection.objects.link(cam_ob)
    sc.camera = cam_ob
    return {"parts": parts, "camera": cam_ob}


def render(bvh: Path, out: Path, camera: str, seconds: float, start: float, fps: float, width: int, height: int,
           samples: int, lens: float) -> None:
    import bpy
    import cv2
    from mathutils import Matrix

    joints = bvh_to_smpl22(bvh.read_text(), fps=fps)
    s0 = int(round(start * fps))
    joints = joints[s0:s0 + int(round(seconds * fps))]
    joints = joints - np.array([joints[0, 0, 0], 0.0, joints[0, 0, 2]])
    joints[..., 1] -= joints[..., 1].min() - 0.05  # the lowest joint (ankle / toe) 5 cm above the floor
    pb = to_blender(joints)
    scene = build_scene(bpy, width, height, samples)
    cam_ob = scene["camera"]
    cam_ob.data.lens = lens
    cam_ob.data.sensor_width = 36.0
    azimuth = {"front": 0.0, "threequarter": 45.0}[camera]
    pose = camera_pose(pb, azimuth, lens, 36.0, width / height)
    cam_ob.matrix_world = Matrix(pose.tolist())
    writer = None
    with tempfile.TemporaryDirectory() as tmp:
        for f in range(len(pb)):
            for name, (loc, rot, scale) in pose_parts(pb[f]).items():
                ob = scene["parts"][name]
                ob.location = loc.tolist()
                ob.rotation_quaternion = Matrix(rot.tolist()).to_quaternion()
                ob.scale = scale.tolist()
            png = Path(tmp) / f"{f:04d}.png"
            bpy.context.scene.render.filepath = str(png)
            bpy.ops.render.render(write_still=True)
            img = cv2.imread(str(png))
            if writer is None:
                tmp_mp4 = out.with_name(out.name + ".tmp.mp4")
                writer = cv2.VideoWriter(str(tmp_mp4), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            writer.write(img)
            print(f"frame {f + 1}/{len(pb)}", flush=True)
        writer.release()
    tmp_mp4.replace(out.with_suffix(".mp4"))
    with open(out.with_suffix(".npz"), "wb") as fh:
        np.savez(fh, joints=joints.astype(np.float32), fps=np.float32(fps), camera_world=pose.astype(np.float32),
                 lens_mm=np.float32(lens), sensor_mm=np.float32(36.0), clip=bvh.name, camera=camera)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bvh", type=Path, help="a Bandai-Namco BVH file")
    ap.add_argument("--out", type=Path, required=True, help="output stem: writes STEM.mp4 and STEM.npz")
    ap.add_argument("--camera", choices=["front", "threequarter"], default="front")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--start", type=float, default=0.0, help="seconds skipped at the clip's start")
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--samples", type=int, default=2, help="Cycles samples per pixel (2: noisy but cheap; enough)")
    ap.add_argument("--lens", type=float, default=35.0)
    a = ap.parse_args(argv)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    render(a.bvh, a.out.with_suffix(""), a.camera, a.seconds, a.start, a.fps, a.width, a.height, a.samples,
           a.lens)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
