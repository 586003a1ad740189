"""Benchmark: sampling a source action (continue / in-between / regenerate / edit / video target) into joints.

    python -m benchmarks.bench_pose_sampling [--seconds 120] [--fps 30] [--dense 0]

Times :func:`salad_blender.pose_sampling.sample_world_joints` on the SMPL-22 body keyed on every frame (as
mocap is), frame by frame (a scene update each: the old way) and from the F-curves (:mod:`fk_sampling`), in the
same run, and prints both, their ratio and the largest difference. ``--dense N``: a skinned mesh of about N
more vertices, as a production character has (the frame-by-frame path pays for its deformation every frame).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--dense", type=int, default=0, help="vertices of an extra skinned mesh (0: none)")
    a = p.parse_args(argv)
    import bpy
    import numpy as np

    from benchmarks.bench_retarget import _dense_mesh, synthetic_walk
    from salad_blender import actions, armature, pose_sampling, rigs

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = a.fps
    clip = synthetic_walk(int(a.seconds * 20))
    obj = armature.create_smpl22_armature("Mocap", clip, with_mesh=True)
    if a.dense:
        _dense_mesh(obj, a.dense)
    act = actions.apply_motion(obj, clip, prompt="walk", bone_map="smpl22", scene=scene, start_frame=1)
    _, mapping = rigs.resolve_bone_map(armature.rig_rest_from_object(obj).bone_names, "smpl22")
    frames = range(int(act.frame_range[0]), int(act.frame_range[1]) + 1)
    t = time.perf_counter()
    slow = pose_sampling.sample_world_joints(obj, mapping, frames, scene, fast=False)
    t_slow = time.perf_counter() - t
    t = time.perf_counter()
    fast = pose_sampling.sample_world_joints(obj, mapping, frames, scene)
    t_fast = time.perf_counter() - t
    n = len(frames)
    print(f"{n} frames ({a.seconds:g} s at {a.fps} fps), mesh +{a.dense} vertices")
    print(f"frame by frame: {t_slow:.3f} s ({t_slow / n * 1e3:.3f} ms/frame)")
    print(f"from F-curves:  {t_fast:.3f} s ({t_fast / n * 1e3:.3f} ms/frame)")
    print(f"ratio {t_slow / t_fast:.1f}x; max difference {np.abs(fast - slow).max():.2e} (scene units)")


if __name__ == "__main__":
    main()
