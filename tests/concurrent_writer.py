"""A child process of the concurrent-writers test: writes one result with the CLI's save_motion.

Kept apart from the test module so that spawned children do not import torch (start-up ~1 s).
"""

from __future__ import annotations

import numpy as np


class FakeMotion:
    """What save_motion reads: joints, features, meta; a real clip moved ``run_id`` metres along X."""

    def __init__(self, joints: np.ndarray, run_id: int):
        self.joints = (joints + np.array([run_id, 0.0, 0.0])).astype(np.float32)
        self.features = np.full((len(joints), 263), float(run_id), np.float32)
        self.meta = {"fps": 20.0, "prompt": f"run {run_id}", "run": run_id}
        self.latent = None  # a generation's latent (kept in the npz so a shot can continue it); none here


def write_one(args) -> None:
    """Wait for the other writer, then write npz + BVH of run ``run_id`` to ``out``."""
    from salad_model.__main__ import save_motion

    out, joints, run_id, barrier = args
    barrier.wait()
    save_motion(FakeMotion(joints, run_id), out, bvh=True, force=True)
