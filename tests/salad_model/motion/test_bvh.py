"""BVH reader / FK / writer: channel orders, position channels, frame rates, units, real Bandai files,
and the positions → BVH → positions round trip (also through Blender's own importer when bpy is there)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from needs import require_module
from scipy.spatial.transform import Rotation
from testdata import DATA

from salad_model.motion.bvh import parse_bvh, read_bvh, resample_pose, write_joint_positions_bvh
from salad_model.motion.skeleton import T2M

RAISE_LEFT = DATA / "dataset-2_raise-up-left-hand_active_020.bvh"
TURN_LEFT = DATA / "dataset-2_walk-turn-left_active_024.bvh"


def _chain_bvh(root_channels: str, joint_channels: str, rows: list[list[float]], frame_time: float = 0.05,
               offset_child: str = "10 0 0") -> str:
    n_root = len(root_channels.split())
    n_joint = len(joint_channels.split())
    return (
        "HIERARCHY\nROOT Root\n{\n  OFFSET 1 2 3\n"
        f"  CHANNELS {n_root} {root_channels}\n"
        "  JOINT Arm\n  {\n"
        f"    OFFSET {offset_child}\n    CHANNELS {n_joint} {joint_channels}\n"
        "    End Site\n    {\n      OFFSET 5 0 0\n    }\n  }\n}\n"
        f"MOTION\nFrames: {len(rows)}\nFrame Time: {frame_time}\n"
        + "\n".join(" ".join(str(v) for v in r) for r in rows) + "\n"
    )


def test_simple_chain_fk_by_hand():
    # Root at (0, 0, 0) turned +90° about Z: the child offset (10, 0, 0) must land on (0, 10, 0).
    text = _chain_bvh("Xposition Yposition Zposition Zrotation Xrotation Yrotation",
                      "Zrotation Xrotation Yrotation", [[0, 0, 0, 90, 0, 0, 0, 0, 0]])
    m = parse_bvh(text)
    assert m.names == ["Root", "Arm"] and m.parents == [-1, 0]
    assert len(m.end_sites) == 1 and m.end_sites[0][0] == 1
    np.testing.assert_allclose(m.end_sites[0][1], [5, 0, 0])
    p = m.positions()
    np.testing.assert_allclose(p[0, 0], [0, 0, 0], atol=1e-12)  # position channels replace OFFSET 1 2 3
    np.testing.assert_allclose(p[0, 1], [0, 10, 0], atol=1e-9)


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "YZX", "ZYX"])
def test_rotation_channels_apply_in_listed_order(order):
    """R = R_first · R_second · R_third for channels listed first..third (intrinsic)."""
    angles = {"X": 30.0, "Y": -50.0, "Z": 70.0}
    chans = " ".join(f"{a}rotation" for a in order)
    text = _chain_bvh(f"Xposition Yposition Zposition {chans}", "Zrotation Xrotation Yrotation",
                      [[0.5, 1.0, -2.0] + [angles[a] for a in order] + [0, 0, 0]], offset_child="1 2 3")
    p = parse_bvh(text).positions()
    r = np.eye(3)
    for a in order:  # explicit matrix product in listed order
        r = r @ Rotation.from_euler(a.lower(), angles[a], degrees=True).as_matrix()
    np.testing.assert_allclose(p[0, 1], np.array([0.5, 1.0, -2.0]) + r @ np.array([1.0, 2.0, 3.0]), atol=1e-9)


def test_orders_are_not_interchangeable():
    a = parse_bvh(_chain_bvh("Xposition Yposition Zposition Zrotation Xrotation Yrotation", "Zrotation",
                             [[0, 0, 0, 40, 60, 20, 0]])).positions()
    b = parse_bvh(_chain_bvh("Xposition Yposition Zposition Yrotation Xrotation Zrotation", "Zrotation",
                             [[0, 0, 0, 20, 60, 40, 0]])).positions()
    assert np.abs(a - b).max() > 0.5  # same angles per axis, different order → different pose


def test_position_channels_on_child_replace_offset_and_scale_units():
    text = _chain_bvh("Xposition Yposition Zposition", "Yposition Xposition Zrotation",
                      [[100, 0, 0, 7, 20, 90], [100, 0, 0, 7, 20, 0]])
    m = parse_bvh(text)
    p = m.positions(scale=0.01)  # centimetres → metres
    # child translation = (20, 7, 0) from its Xposition/Yposition channels, not its OFFSET (10, 0, 0)
    np.testing.assert_allclose(p[:, 1], [[1.2, 0.07, 0], [1.2, 0.07, 0]], atol=1e-12)


def test_frame_time_and_resampling():
    rows = [[0, 0, 0, 0, 0, 0, float(i) * 3.0, 0, 0] for i in range(61)]  # 60 fps, child turns 3°/frame
    text = _chain_bvh("Xposition Yposition Zposition Zrotation Xrotation Yrotation",
                      "Zrotation Xrotation Yrotation", rows, frame_time=1 / 60)
    m = parse_bvh(text)
    assert m.fps == pytest.approx(60.0) and m.num_frames == 61
    q, t = m.local_pose()
    q20, t20 = resample_pose(q, t, 60.0, 20.0)
    assert q20.shape[0] == 21  # 1 s at 20 fps → 21 frames
    z = Rotation.from_quat(q20[:, 1]).as_euler("ZXY", degrees=True)[:, 0]
    np.testing.assert_allclose(z, np.arange(21) * 9.0, atol=1e-9)
    q_mid, _ = resample_pose(q[:2], t[:2], 1.0, 2.0)  # half-way between 0° and 3° → 1.5° (slerp)
    assert Rotation.from_quat(q_mid[1, 1]).magnitude() == pytest.approx(np.radians(1.5))


def test_frame_count_mismatch_raises():
    text = _chain_bvh("Xposition Yposition Zposition", "Zrotation", [[0, 0, 0, 0]])
    with pytest.raises(ValueError, match="motion values"):
        parse_bvh(text.replace("Frames: 1", "Frames: 2"))


def test_real_bandai_file_parses():
    m = read_bvh(RAISE_LEFT)
    assert m.num_joints == 22 and len(m.end_sites) == 5
    assert all(c == ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
               for c in m.channels)
    assert m.fps == 30.0 and m.data.shape == (m.num_frames, 132)
    p = m.positions(scale=0.01)
    head, hips = p[:, m.index("Head"), 1], p[:, m.index("Hips"), 1]
    assert np.all(head > hips + 0.3)  # Y up, metres
    thigh = np.linalg.norm(p[:, m.index("LowerLeg_L")] - p[:, m.index("UpperLeg_L")], axis=-1)
    np.testing.assert_allclose(thigh, 0.3908, atol=2e-4)  # bone lengths constant, 39.08 cm


def _real_smpl_joints() -> np.ndarray:
    from salad_model.motion.bandai_rig import bvh_to_smpl22
    from salad_model.motion.motion_process import canonicalize

    return canonicalize(bvh_to_smpl22(TURN_LEFT.read_text()))


def _read_back(path: Path) -> np.ndarray:
    m = read_bvh(path)
    return m.positions()[:, [m.index(n) for n in T2M.joint_names]]


def test_writer_round_trip_real_motion(tmp_path):
    joints = _real_smpl_joints()
    path = tmp_path / "out.bvh"
    write_joint_positions_bvh(path, joints, fps=20)
    m = read_bvh(path)
    assert m.fps == pytest.approx(20.0)
    assert [c[0] for c in m.channels].count("Xposition") == 1  # only the root has position channels
    err = np.abs(_read_back(path) - joints).max()
    assert err < 1e-5, f"{err} m"  # rigid input → exact up to the 1e-6 text precision


def test_writer_rest_pose_is_a_t_pose(tmp_path):
    path = tmp_path / "out.bvh"
    write_joint_positions_bvh(path, _real_smpl_joints(), fps=20)
    m = read_bvh(path)
    zero = m.data.copy()
    zero[:] = 0
    m.data = zero
    rest = m.positions()[0]
    idx = {n: m.index(n) for n in m.names}
    assert rest[idx["left_wrist"], 0] > rest[idx["left_shoulder"], 0] + 0.3  # arms out to +X (left)
    assert rest[idx["right_wrist"], 0] < rest[idx["right_shoulder"], 0] - 0.3
    assert rest[idx["head"], 1] > rest[idx["pelvis"], 1] + 0.3
    assert rest[idx["left_ankle"], 1] < rest[idx["left_knee"], 1] - 0.3


def test_writer_stretch_mode_reproduces_non_rigid_positions(tmp_path):
    rng = np.random.default_rng(0)
    joints = _real_smpl_joints()
    joints = joints + rng.normal(scale=0.005, size=joints.shape)  # bone lengths now wobble by ~1 cm
    rigid, stretch = tmp_path / "rigid.bvh", tmp_path / "stretch.bvh"
    write_joint_positions_bvh(rigid, joints, fps=20)
    write_joint_positions_bvh(stretch, joints, fps=20, stretch=True)
    assert np.abs(_read_back(stretch) - joints).max() < 1e-5
    assert np.abs(_read_back(rigid) - joints).max() > 1e-3  # fixed bones cannot follow the noise


def test_blender_imports_written_bvh(tmp_path):
    bpy = require_module("bpy")
    joints = _real_smpl_joints()
    path = tmp_path / "out.bvh"
    write_joint_positions_bvh(path, joints, fps=20)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_anim.bvh(filepath=str(path), axis_forward="-Z", axis_up="Y", update_scene_fps=True)
    ob = bpy.context.object
    assert ob.type == "ARMATURE" and len(ob.data.bones) == 22
    assert bpy.context.scene.render.fps == 20
    worst = 0.0
    for frame in (1, len(joints) // 2, len(joints)):
        bpy.context.scene.frame_set(frame)
        ev = ob.evaluated_get(bpy.context.evaluated_depsgraph_get())
        for k, name in enumerate(T2M.joint_names):
            h = ev.matrix_world @ ev.pose.bones[name].head
            # Blender is Z up: BVH (x, y, z) arrives as (x, -z, y).
            worst = max(worst, float(np.abs(np.array([h.x, h.z, -h.y]) - joints[frame - 1, k]).max()))
    assert worst < 1e-4, f"Blender pose differs by {worst} m"
