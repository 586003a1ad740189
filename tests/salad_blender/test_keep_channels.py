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
