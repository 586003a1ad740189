"""audit10: sampling a source action reads a plainly keyed rig's F-curves at once instead of a scene update per frame.

The fast path (fk_sampling) must give the heads Blender's own evaluation gives (within 1e-5 of the rig's size:
float32 keys), on a Mixamo-like rig (bone rolls, an unmapped root and twist bone, object rotation and scale 0.01)
whose bones use every rotation mode, with keys on every frame and sparse Bézier keys between frames; and it must
step aside (None: the frame-by-frame path) where it would be wrong: a constraint, a driver, an NLA layer, a keyed
object transform, or a disagreement at its spot-check frames. Headless bpy (4.2 and 5.0); no timing here
(benchmarks/bench_pose_sampling.py times it).
"""

from pathlib import Path

import numpy as np
import pytest
from needs import require_module

bpy = require_module("bpy")

from salad_blender import actions, armature, fk_sampling, pose_sampling, real_motion, rigs  # noqa: E402


@pytest.fixture
def keyed_rig(build_mixamo_rig, walk, scene):
    rig, names = build_mixamo_rig(walk)
    scene.render.fps = 30
    modes = {"left_hip": "ZXY", "right_knee": "AXIS_ANGLE", "spine2": "YZX", "left_elbow": "XZY"}
    for joint, mode in modes.items():
        rig.pose.bones[names[joint]].rotation_mode = mode
    actions.apply_motion(rig, walk[:80], prompt="walk", bone_map="mixamo", scene=scene, start_frame=1)
    twist = rig.pose.bones["mixamorig:LeftUpLegTwist"]  # sparse Bézier keys, between the frames too
    twist.rotation_mode = "XYZ"
    for f, v in ((1, 0.0), (17.5, 0.6), (40, -0.3), (90, 0.2)):
        twist.rotation_euler[1], twist.location[2] = v, v * 3.0
        twist.keyframe_insert("rotation_euler", index=1, frame=f)
        twist.keyframe_insert("location", index=2, frame=f)
    twist.scale = (1.0, 1.2, 1.0)  # unkeyed: the pose holds it
    _, mapping = rigs.resolve_bone_map(armature.rig_rest_from_object(rig).bone_names, "mixamo")
    return rig, mapping


def _both(rig, mapping, frames=range(1, 100)):
    fast = pose_sampling.sample_world_joints(rig, mapping, frames)
    slow = pose_sampling.sample_world_joints(rig, mapping, frames, fast=False)
    return fast, slow


def _fast_used(rig, mapping, frames=range(1, 100)):
    bones = real_motion.joint_bones(mapping)
    calls = []

    def evaluated(f):
        calls.append(f)
        return pose_sampling.sample_world_joints(rig, mapping, [f], fast=False)[0]

    return fk_sampling.world_heads(rig, bones, list(frames), evaluated) is not None


def test_the_fast_path_gives_blenders_heads(keyed_rig):
    rig, mapping = keyed_rig
    assert _fast_used(rig, mapping)
    fast, slow = _both(rig, mapping)
    size = np.abs(slow).max()
    assert np.abs(fast - slow).max() <= 1e-5 * size
    assert np.abs(slow[1:] - slow[:-1]).max() > 1e-2 * size  # it moves: the comparison means something


@pytest.mark.parametrize("change", ["constraint", "driver", "nla", "object_keys"])
def test_it_steps_aside_where_it_would_be_wrong(keyed_rig, change):
    rig, mapping = keyed_rig
    hand = rig.pose.bones["mixamorig:LeftHand"]
    if change == "constraint":
        c = hand.constraints.new("COPY_ROTATION")
        c.target, c.subtarget = rig, "mixamorig:RightHand"
    elif change == "driver":
        fc = rig.pose.bones["mixamorig:Spine"].driver_add("rotation_quaternion", 1)
        fc.driver.expression = "frame / 100"
    elif change == "nla":
        track = rig.animation_data.nla_tracks.new()
        other = bpy.data.actions.new("Layer")
        strip = track.strips.new("Layer", 1, other)
        strip.blend_type = "ADD"
    else:
        rig.keyframe_insert("location", index=2, frame=1)
        rig.location[2] += 1.0
        rig.keyframe_insert("location", index=2, frame=60)
    assert not _fast_used(rig, mapping)
    fast, slow = _both(rig, mapping)
    np.testing.assert_array_equal(fast, slow)


def test_a_disagreement_at_a_spot_check_frame_means_the_slow_path(keyed_rig):
    rig, mapping = keyed_rig
    bones = real_motion.joint_bones(mapping)
    frames = list(range(1, 100))
    truth = pose_sampling.sample_world_joints(rig, mapping, frames, fast=False)
    ok = fk_sampling.world_heads(rig, bones, frames, lambda f: truth[f - 1])
    assert ok is not None
    off = fk_sampling.world_heads(rig, bones, frames, lambda f: truth[f - 1] + (0.01 if f == 99 else 0.0))
    assert off is None


class _Cursor:
    def __init__(self):
        self.calls = []

    def progress_begin(self, lo, hi):
        self.calls.append(("begin", lo, hi))

    def progress_update(self, value):
        self.calls.append(("update", value))

    def progress_end(self):
        self.calls.append(("end",))


def test_a_long_frame_by_frame_sampling_shows_its_progress(keyed_rig, monkeypatch):
    """audit10: sampling frame by frame (a rig with constraints) ran with no sign of life; from 500 frames the mouse
    cursor counts them, as Blender's Bake Action does, and is put back. Short or fast samplings show nothing."""
    rig, mapping = keyed_rig
    pose_sampling.sample_world_joints(rig, mapping, range(1, 601), fast=False)  # the real window manager: no error
    cursor = _Cursor()
    monkeypatch.setattr(pose_sampling, "_window_manager", lambda: cursor)
    pose_sampling.sample_world_joints(rig, mapping, range(1, 601), fast=False)
    assert cursor.calls[0] == ("begin", 0, 600) and cursor.calls[-1] == ("end",)
    done = [c[1] for c in cursor.calls if c[0] == "update"]
    assert done == sorted(done) and done[-1] >= 575 and len(done) >= 20
    cursor.calls.clear()
    pose_sampling.sample_world_joints(rig, mapping, range(1, 400), fast=False)
    pose_sampling.sample_world_joints(rig, mapping, range(1, 601))  # the F-curves: well under a second
    assert cursor.calls == []


def test_a_connected_bones_keyed_location_is_ignored_as_blender_does(scene):
    """A BVH with position channels on every joint keys the location of connected bones, which Blender ignores (the
    head stays on the parent's tail): the fast path did not, disagreed at its spot checks and fell back."""
    data = bpy.data.armatures.new("Chain")
    obj = bpy.data.objects.new("Chain", data)
    scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    a = data.edit_bones.new("a")
    a.head, a.tail = (0.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    b = data.edit_bones.new("b")
    b.head, b.tail, b.parent, b.use_connect = (0.0, 0.0, 1.0), (0.0, 1.0, 1.0), a, True
    c = data.edit_bones.new("c")
    c.head, c.tail, c.parent, c.use_connect = (0.0, 1.0, 1.0), (0.0, 1.0, 2.0), b, True
    bpy.ops.object.mode_set(mode="OBJECT")
    pa, pb = obj.pose.bones["a"], obj.pose.bones["b"]
    for f in range(1, 21):
        pa.rotation_quaternion = (np.cos(f / 20), np.sin(f / 20), 0.0, 0.0)
        pb.location = (0.1 * f, 0.0, 0.05 * f)
        pa.keyframe_insert("rotation_quaternion", frame=f)
        pb.keyframe_insert("location", frame=f)

    def evaluated(f):
        scene.frame_set(f)
        ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        return np.array([tuple(ev.pose.bones[n].head) for n in "abc"])

    fast = fk_sampling.world_heads(obj, list("abc"), list(range(1, 21)), evaluated)
    assert fast is not None
    truth = np.array([evaluated(f) for f in range(1, 21)])
    assert np.abs(fast - truth).max() < 1e-5 and np.abs(truth[0] - truth[-1]).max() > 0.1


def test_a_bvh_import_takes_the_fast_path(scene):
    """Mocap as users bring it: a Bandai BVH through Blender's own importer (bones with rolls, Euler channels, root
    location keys, centimetre-scale units) is read from its F-curves, equal to Blender's heads within 1e-6 of its
    size (float32 keys)."""
    import addon_utils

    addon_utils.enable("io_anim_bvh", default_set=False)
    bpy.ops.import_anim.bvh(filepath=str(Path(__file__).resolve().parents[1] / "data"
                                         / "dataset-2_walk-turn-left_active_024.bvh"))
    obj = bpy.context.view_layer.objects.active
    names = [b.name for b in obj.data.bones]

    def evaluated(f):
        scene.frame_set(f)
        ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mw = np.array(ev.matrix_world)
        return np.array([tuple(ev.pose.bones[n].head) for n in names]) @ mw[:3, :3].T + mw[:3, 3]

    lo, hi = (int(f) for f in obj.animation_data.action.frame_range)
    frames = list(range(lo, hi + 1))
    fast = fk_sampling.world_heads(obj, names, frames, evaluated)
    assert fast is not None and len(frames) > 100
    truth = np.array([evaluated(f) for f in frames])
    assert np.abs(fast - truth).max() <= 1e-6 * np.abs(truth).max()
