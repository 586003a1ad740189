"""Benchmark: retarget + keyframe writing for a 196-frame SMPL-22 clip.

    python -m benchmarks.bench_retarget [--frames 196] [--dense 200000]

Prints the time of the numpy retarget and of the F-curve writes, with our small body mesh and again
with a dense skinned mesh, to show the cost does not depend on mesh size (writing keys must not
trigger a depsgraph evaluation). Target: <= 0.1 s in total.

Also home of :func:`synthetic_walk`, the procedural test motion (no model output needed).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from salad_blender import smpl22


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices [T, 3, 3] about a fixed ``axis`` by per-frame ``angle`` [T]."""
    from salad_blender.retarget import matrix_from_quat

    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    half = np.asarray(angle, dtype=np.float64)[:, None] / 2.0
    q = np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)
    return matrix_from_quat(q)


def synthetic_walk(frames: int = 196, fps: float = smpl22.FPS, turn_deg: float = 150.0) -> np.ndarray:
    """A rigid, turning, walking-like SMPL-22 motion [frames, 22, 3] in model space (HumanML3D axes).

    Forward kinematics from the canonical T-pose with swinging legs/arms, bending knees and elbows,
    arms lowered out of the T, spine twist, head nod, pelvis bob/roll, and a heading that turns by
    ``turn_deg`` over the clip (non-uniformly) while the root walks along it. Bone lengths are
    constant, so an exact retarget reproduces it exactly. Frame 0 faces +Z with the root at x = z = 0.
    """
    from salad_blender.rigs import tpose_offsets

    t = np.arange(frames) / fps
    ph = 2.0 * np.pi * 1.0 * t  # 1 Hz gait
    off = smpl22.blender_to_model(tpose_offsets())  # Y up, facing +Z, left +X
    x, y, z = np.eye(3)
    local = np.broadcast_to(np.eye(3), (frames, smpl22.NUM_JOINTS, 3, 3)).copy()

    def rot(j: str, axis: np.ndarray, angle: np.ndarray) -> None:
        i = smpl22.INDEX[j]
        local[:, i] = local[:, i] @ _axis_angle(axis, angle)

    for s, sign in (("left", 1.0), ("right", -1.0)):
        p = ph if s == "left" else ph + np.pi
        rot(f"{s}_hip", x, -0.45 * np.sin(p))  # flexion: -x rotation swings the leg forward (+Z)
        rot(f"{s}_hip", z, sign * (0.08 + 0.05 * np.sin(p)))  # abduction
        rot(f"{s}_hip", y, sign * 0.1 * np.cos(p))  # twist
        rot(f"{s}_knee", x, 0.6 * (1.0 + np.sin(p + 1.2)) / 2.0 + 0.05)
        rot(f"{s}_ankle", x, 0.25 * np.sin(p + 0.5))
        rot(f"{s}_ankle", z, sign * 0.05 * np.cos(p))
        rot(f"{s}_collar", z, sign * (-0.1 + 0.03 * np.sin(p)))
        rot(f"{s}_shoulder", z, -sign * (1.2 + 0.1 * np.sin(2 * p)))  # lower the arm out of the T
        rot(f"{s}_shoulder", x, 0.5 * np.sin(p + np.pi))  # swing opposite to the leg
        rot(f"{s}_shoulder", y, sign * 0.2 * np.cos(p))
        rot(f"{s}_elbow", y, sign * (0.4 + 0.3 * (1.0 + np.sin(p)) / 2.0))
        rot(f"{s}_wrist", z, sign * 0.2 * np.sin(p))
    rot("spine1", y, 0.15 * np.sin(ph))
    rot("spine2", x, 0.05 + 0.03 * np.sin(2 * ph))
    rot("spine3", y, -0.1 * np.sin(ph))
    rot("spine3", z, 0.05 * np.cos(ph))
    rot("neck", x, 0.1 * np.sin(2 * ph))
    rot("head", y, 0.3 * np.sin(0.5 * ph))

    # Heading: slow start, fast middle -> a smooth turn by turn_deg; pelvis roll and pitch on top.
    u = t / max(t[-1], 1e-9)
    heading = np.deg2rad(turn_deg) * (u - np.sin(2 * np.pi * u) / (2 * np.pi))
    root = _axis_angle(y, heading) @ _axis_angle(z, 0.06 * np.sin(ph)) @ _axis_angle(x, np.full(frames, 0.05))
    speed = 1.2
    fwd = np.stack([np.sin(heading), np.zeros_like(t), np.cos(heading)], -1)
    step = speed / fps * fwd
    traj = np.concatenate([np.zeros((1, 3)), np.cumsum(step[:-1], axis=0)])
    traj[:, 0] += 0.02 * np.sin(ph)  # lateral sway

    glob = np.zeros_like(local)
    pos = np.zeros((frames, smpl22.NUM_JOINTS, 3))
    for j, par in enumerate(smpl22.PARENTS):
        if par == -1:
            glob[:, j] = root @ local[:, j]
            pos[:, j] = traj
        else:
            glob[:, j] = glob[:, par] @ local[:, j]
            pos[:, j] = pos[:, par] + np.einsum("tij,j->ti", glob[:, par], off[j])
    pos[..., 1] += (off[0, 1] - 0.03 + 0.02 * np.cos(2 * ph))[:, None]  # pelvis height with bob
    pos[..., 1] -= pos[..., 1].min() - 0.02  # lowest joint 2 cm above the floor
    return pos.astype(np.float32)


def _dense_mesh(arm_obj, n_verts: int):  # noqa: ANN001, ANN202 - bpy types
    """A grid of ``n_verts`` vertices, rigidly skinned to the pelvis bone."""
    import bpy

    side = int(np.ceil(np.sqrt(n_verts)))
    mesh = bpy.data.meshes.new("dense")
    gx, gy = np.meshgrid(np.linspace(-1, 1, side), np.linspace(-1, 1, side))
    co = np.stack([gx.ravel(), gy.ravel(), np.ones(side * side)], -1).astype(np.float32)
    mesh.vertices.add(len(co))
    mesh.vertices.foreach_set("co", co.ravel())
    mesh.update()
    obj = bpy.data.objects.new("dense", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.parent = arm_obj
    vg = obj.vertex_groups.new(name="pelvis")
    vg.add(list(range(len(co))), 1.0, "REPLACE")
    mod = obj.modifiers.new("Armature", "ARMATURE")
    mod.object = arm_obj
    return obj


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=196)
    ap.add_argument("--dense", type=int, default=200_000, help="vertices of the dense mesh")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import bpy

    from salad_blender import actions, armature, retarget, rigs

    bpy.ops.wm.read_factory_settings(use_empty=True)
    joints = synthetic_walk(args.frames)
    arm = armature.create_smpl22_armature(joints=joints, with_mesh=True)
    n_body = len(arm.children[0].data.vertices) if arm.children else 0
    rig = armature.rig_rest_from_object(arm)
    _, bone_map = rigs.resolve_bone_map(rig.bone_names)

    def run(label: str) -> None:
        t_ret, t_write = [], []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            res = retarget.retarget(joints, rig, bone_map)
            t1 = time.perf_counter()
            actions.write_action(arm, res, name=f"bench {i}")
            t2 = time.perf_counter()
            t_ret.append(t1 - t0)
            t_write.append(t2 - t1)
        r, w = min(t_ret), min(t_write)
        print(f"{label:<32} retarget {r * 1e3:7.1f} ms   write {w * 1e3:7.1f} ms   "
              f"total {(r + w) * 1e3:7.1f} ms  (best of {args.repeat}, {args.frames} frames "
              f"x {smpl22.NUM_JOINTS} joints)")

    run(f"body mesh ({n_body} verts)")
    _dense_mesh(arm, args.dense)
    bpy.context.view_layer.update()
    run(f"+ dense mesh ({args.dense} verts)")
    t0 = time.perf_counter()
    full = actions.apply_motion(arm, joints, prompt="bench", seed=0)
    t1 = time.perf_counter()
    print(f"{'apply_motion (all steps)':<32} {(t1 - t0) * 1e3:7.1f} ms  -> action {full.name!r}")


if __name__ == "__main__":
    main()
