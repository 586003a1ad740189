"""Keep Other Channels: a result that replaces a rig's animated Action keeps the user's keys on what it does not drive.

The rig: a Mixamo-like armature whose own Action keys a finger (Bézier, keys before, inside and after the
result's frames), the left hand's scale and rotation (the hand is driven: rotation only), a bone custom
property with a Cycles modifier, an object custom property, the rig object's own location and the location of
the root bone above the hips (it carries the body: held at rest like the object's transform).
Runs in-process with the bpy wheel (4.2 legacy actions and 5.0 slotted actions alike).
Tolerance: copied curves evaluate to the user's curve within 1e-4 at every quarter frame of the result (a baked
curve, one with modifiers: at every frame).
"""

import warnings

import numpy as np
import pytest
from needs import require_module

bpy = require_module("bpy")

from blender_state import key_values  # noqa: E402

from salad_blender import actions  # noqa: E402
from salad_blender.inputs import ResultWarning  # noqa: E402

START = 10  # the result's first frame; 60 model frames (2.95 s) at 24 fps: 71 frames, so it ends at 80
END = START + 70


def _key(owner, prop, frames_values, index=-1, group=""):
    for f, v in frames_values:
        if index >= 0:
            getattr(owner, prop)[index] = v
        else:
            owner[prop] = v
        path = f'["{prop}"]' if index < 0 else prop
        owner.keyframe_insert(path, index=index, frame=f, group=group)


@pytest.fixture
def animated_rig(build_mixamo_rig, walk):
    rig, names = build_mixamo_rig(walk)
    bpy.context.scene.render.fps = 24
    finger = rig.pose.bones["mixamorig:LeftHandIndex1"]
    finger.rotation_mode = "XYZ"
    _key(finger, "rotation_euler", [(0, 0.0), (20, 0.8), (50, -0.4), (100, 0.3)], index=0, group="Fingers")
    hand = rig.pose.bones[names["left_wrist"]]
    _key(hand, "scale", [(5, 1.0), (90, 1.0), (40, 1.3)], index=1)  # the pose is left at 1.3: a stale scale
    _key(hand, "rotation_quaternion", [(1, 1.0), (60, 0.7)], index=0)
    _key(hand, "rotation_euler", [(1, 0.0), (60, 0.5)], index=2)  # another rotation mode of a driven bone
    _key(rig.pose.bones["Root"], "location", [(1, 0.0), (70, 20.0)], index=1)  # carries the body: not kept
    rig.pose.bones["Root"]["grip"] = 0.0
    _key(rig.pose.bones["Root"], "grip", [(1, 0.0), (12, 1.0)])
    rig["mood"] = 0.0
    _key(rig, "mood", [(30, 0.5)])
    _key(rig, "location", [(1, 1.5), (80, 3.0)], index=0)
    user = rig.animation_data.action
    user.name = "Hand Work"
    grip = next(fc for fc in actions.action_fcurves(user) if fc.data_path.endswith('["grip"]'))
    grip.modifiers.new("CYCLES")
    return rig, names, user


def _curve(action, path, index=0):
    return next((fc for fc in actions.action_fcurves(action) if (fc.data_path, fc.array_index) == (path, index)), None)


def _apply(rig, walk, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        act = actions.apply_motion(rig, walk[:60], prompt="walk", start_frame=START, **kw)
    return act, [str(w.message) for w in caught if issubclass(w.category, ResultWarning)]


def test_other_channels_play_on_trimmed_to_the_result(animated_rig, walk):
    rig, names, user = animated_rig
    before = key_values(user)
    act, said = _apply(rig, walk)
    assert rig.animation_data.action == act and key_values(user) == before  # the user's action only read
    assert (bpy.context.scene.frame_start, bpy.context.scene.frame_end) == (START, END)
    frames = np.arange(START, END + 0.01, 0.25)
    hand = f'pose.bones["{names["left_wrist"]}"]'
    for path, index in [('pose.bones["mixamorig:LeftHandIndex1"].rotation_euler', 0), (f"{hand}.scale", 1),
                        ('pose.bones["Root"]["grip"]', 0), ('["mood"]', 0)]:
        old, new = _curve(user, path, index), _curve(act, path, index)
        assert new is not None, path
        at = frames[::4] if "grip" in path else frames  # a curve with modifiers is baked: one key per frame
        want = np.array([old.evaluate(f) for f in at])
        got = np.array([new.evaluate(f) for f in at])
        assert np.abs(got - want).max() < 1e-4, path
        keys = [k.co[0] for k in new.keyframe_points]
        assert min(keys) == pytest.approx(START) and max(keys) == pytest.approx(END), path  # trimmed
    finger = _curve(act, 'pose.bones["mixamorig:LeftHandIndex1"].rotation_euler')
    assert [round(k.co[0]) for k in finger.keyframe_points] == [START, 20, 50, END]  # the user's keys inside
    assert finger.group is not None and finger.group.name == "Fingers"
    # the hand is driven: its rotation is the result's alone, its scale the user's (no rest key over it)
    assert len(_curve(act, f"{hand}.rotation_quaternion").keyframe_points) == END - START + 1
    assert _curve(act, f"{hand}.rotation_euler", 2) is None  # would come back if the bone's mode were switched
    assert len(_curve(act, f"{hand}.scale", 1).keyframe_points) > 1
    other_axis = _curve(act, f"{hand}.scale", 0)  # unkeyed by the user: the stale-pose rest key (per property)
    assert [tuple(k.co) for k in other_axis.keyframe_points] == [(START, 1.0)]
    # the rig object's own transform is not merged, but said once
    assert _curve(act, "location") is None
    root = _curve(act, 'pose.bones["Root"].location', 1)  # the stale pose's rest key, not the user's curve
    assert [tuple(k.co) for k in root.keyframe_points] == [(START, 0.0)]
    assert said == ["'Hand Work' also keys the rig object's location and the transform of 'Root', which carries "
                    "the body: they no longer play (the old Action is kept, with a fake user)"]
    assert user.use_fake_user


def test_driven_channels_are_the_same_as_without_keeping(animated_rig, walk):
    rig, names, user = animated_rig
    kept, _ = _apply(rig, walk)
    actions.assign_action(rig, user, actions.object_slot(user, rig))
    plain, said = _apply(rig, walk, keep_others=False)
    plain_keys, kept_keys = key_values(plain), key_values(kept)
    hand_scale = (f'pose.bones["{names["left_wrist"]}"].scale', 1)
    for channel, keys in plain_keys.items():
        assert channel == hand_scale or kept_keys[channel] == keys, channel
    extra = set(kept_keys) - set(plain_keys)
    assert ('pose.bones["mixamorig:LeftHandIndex1"].rotation_euler', 0) in extra and ('["mood"]', 0) in extra
    # without keeping, the stale hand scale gets its rest key (the old behaviour), with keeping the user's curve
    assert len(plain_keys[hand_scale]) == 1 and len(kept_keys[hand_scale]) > 1
    assert said  # the object's location stops playing either way


def test_the_scene_setting_decides_and_an_edit_keeps_the_chain(animated_rig, walk):
    rig, _, user = animated_rig
    import salad_blender

    salad_blender.register()
    try:
        bpy.context.scene.salad.keep_other_channels = False
        off, _ = _apply(rig, walk)
        assert _curve(off, '["mood"]') is None
        bpy.context.scene.salad.keep_other_channels = True
        actions.assign_action(rig, user, actions.object_slot(user, rig))
        first, said_first = _apply(rig, walk)
        second, said_second = _apply(rig, walk)  # an edit of the result: the user's channels travel on
        assert _curve(second, '["mood"]') is not None and said_first and not said_second
    finally:
        salad_blender.unregister()


# ------------------------------------------------------------------------ the module's parts, one by one
# (the tests above run whole results; these pin each rule: which curves are copied, the warning's wording,
# the trimming of a curve to the result's frames)

from salad_blender import kept_channels  # noqa: E402


class _Points:
    def __init__(self, keys):
        self.keys = np.array(keys, dtype=np.float32).reshape(-1, 2)

    def __len__(self):
        return len(self.keys)

    def foreach_get(self, name, out):
        assert name == "co"
        out[:] = self.keys.ravel()


class _Curve:
    """What ``split`` reads of an F-curve."""

    def __init__(self, path, index=0, keys=((1, 0.5),), modifiers=()):
        self.data_path, self.array_index = path, index
        self.keyframe_points, self.modifiers = _Points(keys), list(modifiers)


def test_a_bones_rotation_in_any_mode_is_one_channel():
    for prop in ("rotation_quaternion", "rotation_euler", "rotation_axis_angle"):
        assert kept_channels.channel(f'pose.bones["a.b"].{prop}', 2) == ('pose.bones["a.b"].rotation', -1)
    assert kept_channels.channel('pose.bones["a"].location', 2) == ('pose.bones["a"].location', 2)
    assert kept_channels.channel('pose.bones["a"].scale', 0) == ('pose.bones["a"].scale', 0)
    assert kept_channels.channel('["rotation_euler"]', 1) == ('["rotation_euler"]', 1)


def test_which_curves_are_copied():
    bone = 'pose.bones["mixamorig:LeftHandIndex1"]'
    held = 'pose.bones["Root \\"main\\""]'  # a held bone whose name needs escaping
    curves = [
        _Curve(f"{bone}.rotation_euler", 0),  # driven (the result keys its quaternion): not copied
        _Curve(f"{bone}.scale", 1),  # not driven: copied
        _Curve(f"{bone}.location", 0, keys=()),  # no keys: nothing to copy
        _Curve('["mood"]'), _Curve('pose.bones["Other"]["grip"]'),
        _Curve("location", 0), _Curve("location", 1), _Curve("rotation_quaternion", 0), _Curve("rotation_euler", 2),
        _Curve("delta_scale", 0),
        _Curve(f"{held}.location", 1, keys=((1, 0.0), (9, 0.2))),  # a held bone moved: said, not copied
        _Curve(f"{held}.rotation_quaternion", 0, keys=((1, 1.0),)),  # at rest: not copied, not said
        _Curve(f'{held}["ik_fk"]', 0),  # a held bone's custom property: copied
        _Curve('pose.bones["Hips"].scale', 0, keys=((1, 2.0),)),  # held too, out of rest
    ]
    driven = {kept_channels.channel(f"{bone}.rotation_quaternion", 0)}
    keep, transforms, held_keyed = kept_channels.split(curves, driven, ['Root "main"', "Hips"])
    assert [(c.data_path, c.array_index) for c in keep] == [
        (f"{bone}.scale", 1), ('["mood"]', 0), ('pose.bones["Other"]["grip"]', 0), (f'{held}["ik_fk"]', 0)]
    assert transforms == ["location", "rotation", "delta scale"]  # each once, in the curves' order
    assert held_keyed == ["Hips", 'Root "main"']  # sorted
    keep, transforms, held_keyed = kept_channels.split(curves[10:12], set())  # no held bones: bone curves copied
    assert len(keep) == 2 and transforms == [] and held_keyed == []


@pytest.mark.parametrize("prop, index, rest", [
    ("location", 2, 0.0), ("scale", 0, 1.0), ("rotation_euler", 1, 0.0),
    ("rotation_quaternion", 0, 1.0), ("rotation_quaternion", 3, 0.0),
    ("rotation_axis_angle", 2, 1.0), ("rotation_axis_angle", 0, 0.0), ("rotation_axis_angle", 1, 0.0),
    ("rotation_axis_angle", 3, 0.0),
])
def test_a_held_bones_key_at_its_rest_value_is_not_reported(prop, index, rest):
    path = f'pose.bones["Root"].{prop}'

    def said(keys, modifiers=()):
        return kept_channels.split([_Curve(path, index, keys, modifiers)], set(), ["Root"])[2] == ["Root"]

    assert not said(((1, rest), (5, rest + 5e-7)))  # within 1e-6 of rest
    assert said(((1, rest), (5, rest + 1e-5)))  # one key off rest
    assert said(((1, rest + 0.5),))
    assert said(((1, rest),), modifiers=["NOISE"])  # a modifier moves it


def test_the_warning_names_what_no_longer_plays():
    tail = ": they no longer play (the old Action is kept, with a fake user)"
    w = kept_channels.transform_warning
    assert w("A", ["location"]) == "'A' also keys the rig object's location" + tail
    assert w("A", ["location", "scale"]) == "'A' also keys the rig object's location and scale" + tail
    assert w("A", ["location", "rotation", "scale"]) == ("'A' also keys the rig object's location, rotation and "
                                                         "scale" + tail)
    assert w("A", [], ["Root"]) == "'A' also keys the transform of 'Root', which carries the body" + tail
    assert w("A", [], ["a", "b"]) == "'A' also keys the transform of 'a' and 'b', which carry the body" + tail
    assert w("A", ["scale"], list("abcd")) == ("'A' also keys the rig object's scale and the transform of 'a', 'b', "
                                               "'c' and 'd', which carry the body" + tail)
    assert w("A", [], list("abcdef")) == ("'A' also keys the transform of 'a', 'b', 'c', 'd' and 2 more, which carry "
                                          "the body" + tail)
    assert w("A", [], list("abcde")).startswith("'A' also keys the transform of 'a', 'b', 'c', 'd' and 1 more,")


def _bezier(action, path, keys):
    fc = actions.FCurveSink(action, "Rig").new(path, 0, "")
    for f, v in keys:
        fc.keyframe_points.insert(f, v)
    fc.update()
    return fc


def _frames(fc):
    return [round(k.co[0], 4) for k in fc.keyframe_points]


def test_a_curve_is_trimmed_to_the_result_and_plays_as_before_inside(scene):
    act = bpy.data.actions.new("User")
    src = _bezier(act, '["a"]', [(0, 0.0), (20, 0.8), (50, -0.4), (100, 0.3)])
    src.extrapolation = "LINEAR"
    src.mute = src.lock = src.hide = True
    src.color_mode = "AUTO_RGB"  # (new curves: AUTO_RAINBOW)
    k = src.keyframe_points[1]  # a segment inside the range (20-50): copied as it is
    k.interpolation, k.easing, k.back = "BACK", "EASE_IN", 2.5
    src.keyframe_points[1].handle_right_type = "VECTOR"
    src.update()
    dst = actions.FCurveSink(bpy.data.actions.new("Result"), "Rig").new('["a"]', 0, "")
    kept_channels.copy_trimmed(src, dst, 10.0, 80.0)
    assert _frames(dst) == [10.0, 20.0, 50.0, 80.0]
    at = np.arange(10.0, 80.01, 0.25)
    assert np.abs([dst.evaluate(f) - src.evaluate(f) for f in at]).max() < 1e-4
    assert (dst.extrapolation, dst.mute, dst.lock, dst.hide) == ("LINEAR", True, True, True)
    assert dst.color_mode == "AUTO_RGB"
    inside = dst.keyframe_points[1]
    assert (inside.interpolation, inside.easing, inside.back) == ("BACK", "EASE_IN", 2.5)
    assert dst.keyframe_points[1].handle_right_type == "VECTOR"
    for i in (0, 3):  # the boundary keys' handles are frozen where the insert put them
        assert (dst.keyframe_points[i].handle_left_type, dst.keyframe_points[i].handle_right_type) == ("FREE", "FREE")


def test_a_range_on_keys_adds_none_and_keeps_both_ends(scene):
    act = bpy.data.actions.new("User")
    src = _bezier(act, '["a"]', [(0, 0.0), (20, 0.8), (50, -0.4), (100, 0.3)])
    for start, end in ((20.0, 50.0), (20.00005, 49.99995)):  # within 1e-4 of a key is on it
        dst = actions.FCurveSink(bpy.data.actions.new("Result"), "Rig").new('["a"]', 0, "")
        kept_channels.copy_trimmed(src, dst, start, end)
        assert _frames(dst) == [20.0, 50.0], (start, end)
        assert [k.co[1] for k in dst.keyframe_points] == pytest.approx([0.8, -0.4])
    dst = actions.FCurveSink(bpy.data.actions.new("Result"), "Rig").new('["a"]', 0, "")
    kept_channels.copy_trimmed(src, dst, 19.9, 50.1)  # just outside: keys of their own, the old ones inside
    assert _frames(dst) == [19.9, 20.0, 50.0, 50.1]


def test_the_curves_auto_smoothing_is_copied(scene):
    act = bpy.data.actions.new("User")
    src = _bezier(act, '["a"]', [(0, 0.0), (100, 1.0)])
    src.auto_smoothing = "NONE"  # new curves: CONT_ACCEL (the preference's default)
    dst = actions.FCurveSink(bpy.data.actions.new("Result"), "Rig").new('["a"]', 0, "")
    kept_channels.copy_trimmed(src, dst, 10.0, 80.0)
    assert dst.auto_smoothing == "NONE"  # (its values: the test below)


@pytest.mark.parametrize("case", ["eased", "elastic", "no-smoothing", "vector", "long-handles",
                                  "crossing-handles", "past-the-keys"])
def test_a_trimmed_curve_plays_as_before_whatever_its_segments(scene, case):
    """Boundaries that cut a segment: Bézier split exactly (handles that reach past the other key shortened first);
    easing, or a Bézier piece whose handles cross, baked (Elastic needs sub-frame keys); a neighbour's automatic or
    vector handles frozen; a range past the last key on a linear extrapolation."""
    act = bpy.data.actions.new("User")
    src = _bezier(act, '["a"]', [(0, 0.0), (20, 0.8), (50, -0.4), (100, 0.3)])
    start, end = 10.0, 80.0
    if case in ("eased", "elastic"):
        src.keyframe_points[2].interpolation = "BACK" if case == "eased" else "ELASTIC"  # 50-100 crosses 80
        src.keyframe_points[0].interpolation = "SINE"  # 0-20 crosses 10
    elif case == "no-smoothing":
        src.auto_smoothing = "NONE"
    elif case == "vector":  # they point at the neighbour the cut replaces: 20 at 0 (now 10), 50 at 100 (now 80)
        src.keyframe_points[1].handle_left_type = src.keyframe_points[2].handle_right_type = "VECTOR"
    elif case == "long-handles":  # past the other key: Blender shortens them when it evaluates
        a, b = src.keyframe_points[0], src.keyframe_points[1]
        a.handle_right_type = b.handle_left_type = "FREE"
        a.handle_right, b.handle_left = (26.0, 0.9), (-3.0, -0.5)
    elif case == "crossing-handles":  # 50-100 crosses 80: its pieces' handles would reach past their keys
        a, b = src.keyframe_points[2], src.keyframe_points[3]
        a.handle_right_type = b.handle_left_type = "FREE"
        a.handle_right, b.handle_left = (95.0, -0.1), (60.0, 0.1)
    else:
        src.extrapolation, end = "LINEAR", 120.0
    src.update()
    dst = actions.FCurveSink(bpy.data.actions.new("Result"), "Rig").new('["a"]', 0, "")
    kept_channels.copy_trimmed(src, dst, start, end)
    assert _frames(dst)[0] == start and _frames(dst)[-1] == end
    assert np.abs([dst.evaluate(f) - src.evaluate(f) for f in np.arange(start, end + 0.01, 0.25)]).max() < 1e-4


def test_a_key_whose_value_equals_a_boundary_frame_is_not_a_key_on_it(scene):
    """Frames and values share one flat array: only the frames say whether a boundary already has a key."""
    act = bpy.data.actions.new("User")
    src = _bezier(act, '["a"]', [(0, 0.0), (5, 10.0), (30, 0.0)])
    dst = actions.FCurveSink(bpy.data.actions.new("Result"), "Rig").new('["a"]', 0, "")
    kept_channels.copy_trimmed(src, dst, 10.0, 20.0)
    assert _frames(dst) == [10.0, 20.0]
    assert [k.co[1] for k in dst.keyframe_points] == pytest.approx([src.evaluate(10.0), src.evaluate(20.0)])


def test_a_curve_with_modifiers_is_baked_one_linear_key_per_frame(scene):
    act = bpy.data.actions.new("User")
    src = _bezier(act, '["a"]', [(0, 0.0), (10, 1.0)])
    src.modifiers.new("CYCLES")
    dst = actions.FCurveSink(bpy.data.actions.new("Result"), "Rig").new('["a"]', 0, "")
    kept_channels.copy_trimmed(src, dst, 2.5, 25.5)
    assert _frames(dst) == list(np.arange(2.0, 27.0))  # floor(start) .. ceil(end)
    assert [k.co[1] for k in dst.keyframe_points] == pytest.approx([src.evaluate(f) for f in range(2, 27)], abs=1e-6)
    assert {k.interpolation for k in dst.keyframe_points} == {"LINEAR"} and len(dst.modifiers) == 0
