"""Fixtures for the add-on's retargeting tests: a synthetic walk, a clean bpy scene, rig builders."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from needs import require_module  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import smpl22  # noqa: E402
from salad_blender.rigs import MIXAMO_MAP, tpose_joints_from_motion  # noqa: E402


@pytest.fixture(scope="session")
def walk() -> np.ndarray:
    """196-frame turning walk, model space [196, 22, 3] (rigid: constant bone lengths)."""
    return synthetic_walk(196)


@pytest.fixture
def scene():
    """An empty factory-settings scene, per test (isolation)."""
    bpy = require_module("bpy")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


@pytest.fixture
def addon(scene, tiny_model_dir, monkeypatch):
    """The add-on registered with a scripted shot worker (:func:`shot_fakes.shot_addon`); yields its fake pool.

    test_operators.py and test_ui_conventions.py define their own ``addon`` (a real worker; more fakes)."""
    from shot_fakes import shot_addon

    with shot_addon(tiny_model_dir, monkeypatch) as pool:
        yield pool


@pytest.fixture(scope="module")
def config(tiny_model_dir):
    """A worker on the tiny random model, one thread (the job tests' worker settings)."""
    import sys

    from salad_blender import jobs

    return jobs.WorkerConfig(python=sys.executable, model=str(tiny_model_dir), device="cpu", threads=1)


@pytest.fixture(scope="module")
def pool():
    """A worker pool of the test module's own, closed at its end."""
    from salad_blender import jobs

    p = jobs.WorkerPool()
    yield p
    p.close()


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# Segment (parent -> joint) length factors of the test rig relative to the motion.
_SCALE = {
    "left_hip": 1.2, "right_hip": 1.2, "spine1": 1.2,  # pelvis children: uniformly (shape kept)
    "neck": 0.9, "left_collar": 0.9, "right_collar": 0.9,  # spine3 children: uniformly
    "left_knee": 1.12, "right_knee": 1.12, "left_ankle": 1.12, "right_ankle": 1.12,
    "left_foot": 0.9, "right_foot": 0.9, "spine2": 1.05, "spine3": 1.05, "head": 1.1,
    "left_shoulder": 0.95, "right_shoulder": 0.95, "left_elbow": 0.9, "right_elbow": 0.9,
    "left_wrist": 0.9, "right_wrist": 0.9,
}
LEG_SCALE = 1.12


def mixamo_rest_world(joints_model: np.ndarray, swap_sides: bool = False) -> np.ndarray:
    """Rest joint positions [22, 3] (metres, facing -Y) of a Mixamo-like test rig.

    Different from the motion: other segment lengths, A-pose arms (40 deg down), bent knees (15 deg).
    The branching joints' children keep their directions (only scaled), so an exact retarget exists.
    """
    base = tpose_joints_from_motion(smpl22.model_to_blender(joints_model))
    off = np.zeros_like(base)
    for j, p in enumerate(smpl22.PARENTS):
        if p == -1:
            continue
        name = smpl22.JOINT_NAMES[j]
        o = (base[j] - base[p]) * _SCALE[name]
        if name in ("left_elbow", "left_wrist"):
            o = _rot("y", 40.0) @ o
        elif name in ("right_elbow", "right_wrist"):
            o = _rot("y", -40.0) @ o
        elif name.endswith("_knee"):
            o = _rot("x", -15.0) @ o  # knee forward (-Y)
        elif name.endswith("_ankle"):
            o = _rot("x", 15.0) @ o
        off[j] = o
    pos = np.zeros_like(base)
    for j, p in enumerate(smpl22.PARENTS):
        pos[j] = base[j] * np.array([1.0, 1.0, LEG_SCALE]) if p == -1 else pos[p] + off[j]
    if swap_sides:
        pos = pos[list(smpl22.MIRROR)]  # same geometry, but the Left* bones sit on the right
    return pos


@pytest.fixture
def build_mixamo_rig(scene):
    """Builder: a Mixamo-style armature like an FBX import, with extra unmapped bones.

    Armature data in centimetres, Y up, facing +Z; object rotation (90, 0, heading) and scale 0.01
    turn it into a Z-up rig facing -Y rotated by ``heading`` degrees. Bone rolls random (non-zero),
    Hips' tail points away from its children, plus an unmapped root, a thigh twist bone between
    LeftUpLeg and LeftLeg, and a finger.
    """
    import bpy
    from mathutils import Vector

    def build(joints_model, *, heading=30.0, location=(1.5, -2.0, 0.0), swap_sides=False,
              rename=None, prefix="mixamorig:"):
        pos = mixamo_rest_world(joints_model, swap_sides=swap_sides)
        local = smpl22.blender_to_model(pos) / 0.01  # Y up, facing +Z, centimetres
        names = {j: prefix + b for j, b in MIXAMO_MAP.items()}
        for old, new in (rename or {}).items():
            names = {j: (new if b == old else b) for j, b in names.items()}
        data = bpy.data.armatures.new("MixamoRig")
        obj = bpy.data.objects.new("MixamoRig", data)
        scene.collection.objects.link(obj)
        obj.rotation_euler = (np.pi / 2, 0.0, np.deg2rad(heading))
        obj.scale = (0.01, 0.01, 0.01)
        obj.location = location
        bpy.context.view_layer.objects.active = obj
        bpy.ops.object.mode_set(mode="EDIT")
        rng = np.random.default_rng(7)
        eb = data.edit_bones
        root = eb.new("Root")
        root.head = Vector((local[0, 0], 0.0, local[0, 2]))
        root.tail = Vector((local[0, 0], 0.0, local[0, 2] + 20.0))
        for j, jname in enumerate(smpl22.JOINT_NAMES):
            b = eb.new(names[jname])
            b.head = Vector(local[j])
            ch = smpl22.children(j)
            if jname == "pelvis":
                b.tail = Vector(local[j] + np.array([0.0, 6.0, 8.0]))  # not toward any child
            elif jname == "spine3":
                b.tail = Vector(local[smpl22.INDEX["neck"]])
            elif ch:
                b.tail = Vector(local[ch[0]])
            else:
                b.tail = Vector(local[j] + np.array([0.0, 0.0, 7.0]))
            b.roll = float(rng.uniform(0.3, 2.8) * rng.choice([-1, 1]))
            p = smpl22.PARENTS[j]
            b.parent = eb[names[smpl22.JOINT_NAMES[p]]] if p != -1 else root
        hip, knee = local[smpl22.INDEX["left_hip"]], local[smpl22.INDEX["left_knee"]]
        twist = eb.new(prefix + "LeftUpLegTwist")
        twist.head, twist.tail = Vector((hip + knee) / 2), Vector(knee)
        twist.roll = 1.1
        twist.parent = eb[names["left_hip"]]
        eb[names["left_knee"]].parent = twist
        finger = eb.new(prefix + "LeftHandIndex1")
        hand = eb[names["left_wrist"]]
        finger.head, finger.tail = hand.tail, hand.tail + Vector((0.0, 0.0, 3.0))
        finger.parent = hand
        bpy.ops.object.mode_set(mode="OBJECT")
        obj.pose.bones[names["left_shoulder"]].rotation_mode = "XYZ"  # we must switch it
        obj.pose.bones["Root"].rotation_quaternion = (0.9, 0.3, 0.1, 0.0)  # stale pose, must be reset
        return obj, names

    return build


# Tests that open a .blend with the add-on running (``reopened_with_its_file`` in their name) run in a process of
# their own (test_live_preview_blender.py::test_file_reopen_tests_in_their_own_process): with them in the
# suite's process, bpy 4.2's module crashed at interpreter exit (SIGSEGV after every test had passed), which
# fails CI although no test failed; their own process ends with os._exit after pytest's result.
REOPEN_TESTS = "reopened_with_its_file"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("SALAD_REOPEN_PROCESS") == "1":
        return
    moved = [it for it in items if REOPEN_TESTS in it.nodeid]
    if moved:
        config.hook.pytest_deselected(items=moved)
        items[:] = [it for it in items if REOPEN_TESTS not in it.nodeid]
