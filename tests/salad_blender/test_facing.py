"""salad_blender.facing, without Blender, and its agreement with the model side's copy.

The add-on cannot import salad_model (Blender's Python has no torch), so ``motion_process.facing_angle``
is a second computation of the same thing; these tests pin the two together.
"""

import numpy as np
import pytest

from salad_blender import facing, smpl22


def random_poses(n: int, seed: int = 0) -> np.ndarray:
    """Model-space poses [n, 22, 3]: the T-pose turned to random headings, plus noise."""
    from salad_blender.rigs import tpose_joints

    rng = np.random.default_rng(seed)
    base = smpl22.blender_to_model(tpose_joints())
    ang = rng.uniform(-np.pi, np.pi, n)
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = (
        np.cos(ang), np.sin(ang), 1.0, -np.sin(ang), np.cos(ang))
    return np.einsum("nij,kj->nki", rot, base) + rng.normal(0.0, 0.02, (n, 22, 3))


def wrap(a):
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def test_forward_and_heading_of_known_poses():
    """A body whose left is +X faces -Y (Blender's front): heading 0; left = +Y faces +X: heading +90°."""
    assert np.allclose(facing.forward([1.0, 0, 1], [-1.0, 0, 1]), [0, -1, 0])
    assert np.allclose(facing.forward([0, 1.0, 1], [0, -1.0, 1]), [1, 0, 0])
    assert facing.heading(facing.FRONT) == pytest.approx(0.0)
    assert facing.heading([1.0, 0.0, 0.0]) == pytest.approx(np.pi / 2)
    # degenerate (hips on top of each other): the front, never NaN
    assert np.allclose(facing.forward([0, 0, 1.0], [0, 0, 0.0]), facing.FRONT)


def test_model_heading_matches_a_known_turn():
    """The T-pose faces +Z (heading 0); turned by θ about +Y it has heading θ (1e-9 rad)."""
    from salad_blender.rigs import tpose_joints

    base = smpl22.blender_to_model(tpose_joints())
    assert facing.model_heading(base) == pytest.approx(0.0, abs=1e-9)
    th = 0.7
    rot = np.array([[np.cos(th), 0, np.sin(th)], [0, 1, 0], [-np.sin(th), 0, np.cos(th)]])
    assert facing.model_heading(base @ rot.T) == pytest.approx(th, abs=1e-9)
    poses = random_poses(8)
    assert np.allclose(facing.model_heading(poses), [facing.model_heading(p) for p in poses])  # batched = one by one


def test_agrees_with_the_model_side_copy():
    """The worker's placement heading (motion_process.facing_angle) and the add-on's, on the same poses (1e-9 rad)."""
    from salad_model.motion import motion_process

    poses = random_poses(64, seed=1)
    ours = np.asarray(facing.model_heading(poses))
    theirs = np.asarray(motion_process.facing_angle(poses))
    assert np.abs(wrap(ours - theirs)).max() < 1e-9


def test_rig_facing_uses_the_same_computation():
    """retarget.rig_facing (a rig's hips in Blender space) agrees with model_heading of the same pose."""
    from salad_blender import retarget as rt
    from salad_blender.rigs import SMPL22_MAP

    pose = random_poses(1, seed=2)[0]
    world = smpl22.model_to_blender(pose)
    rest = np.tile(np.eye(4), (22, 1, 1))
    rest[:, :3, 3] = [world[smpl22.INDEX[j]] for j in SMPL22_MAP]
    rig = rt.RigRest(bone_names=list(SMPL22_MAP.values()), parents=[-1] * 22, rest=rest)
    fwd = rt.rig_facing(rig, SMPL22_MAP)
    hips_only = facing.forward(world[smpl22.INDEX["left_hip"]], world[smpl22.INDEX["right_hip"]])
    assert np.allclose(fwd, hips_only) and abs(float(np.linalg.norm(fwd)) - 1.0) < 1e-12
