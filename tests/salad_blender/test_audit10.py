"""audit10: shot results an animator would trip over (headless bpy, 4.2 legacy and 5.0 slotted actions).

An in-between's other channels (channels SALAD does not drive: a custom property, a prop) follow A up to the gap
and B after it, B's keys moved to where B's part plays. Regenerated legs take the root with them unless the path is
kept (a kept path under new legs slides). Scripted worker (shot_fakes); no timing.
Tolerance: kept curves evaluate to the user's within 1e-5.
"""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from shot_fakes import FakePool, ShotWorker  # noqa: E402
from test_audit9b import _key_mood, _mood, _play  # noqa: E402
from test_shot_jobs_scripted import CONFIG, FAST, keyed_body, run  # noqa: E402
from test_shot_operators import draw  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, armature, metadata, shot_inputs, shot_jobs, shot_panels  # noqa: E402


@pytest.fixture
def pool():
    return FakePool(ShotWorker(steps=2))


def _key_prop(obj, action, prop, frames_values):
    _play(obj, action)
    for f, v in frames_values:
        obj[prop] = v
        obj.keyframe_insert(f'["{prop}"]', frame=f)


def _curve(action, prop):
    return next((fc for fc in actions.action_fcurves(action) if fc.data_path == f'["{prop}"]'), None)


@pytest.mark.parametrize("fps,a_end,b_start", [(20, 93, 113), (24, 96, 121)])
def test_an_inbetweens_other_channels_follow_a_then_b(pool, fps, a_end, b_start):
    """The fake worker: A (keyed on frames 1-96) sampled to 20 fps model frames (96 at 20 fps, 81 at 24 fps) cut to
    whole latents (92, 80), a 20-frame gap, then B from its first frame: B's part starts at scene frame
    1 + (92 + 20) = 113 at 20 fps, 1 + round((80 + 20) * 24 / 20) = 121 at 24 fps; A's part ends at A's last key
    or the gap, whichever is first (1 + 92 = 93; 96)."""
    obj = keyed_body({"A": synthetic_walk(96), "B": synthetic_walk(60, turn_deg=-40.0)})
    bpy.context.scene.render.fps = fps
    a, b = bpy.data.actions["A"], bpy.data.actions["B"]
    _key_mood(obj, a, [(1, 0.1), (90, 0.4)])                 # both key 'mood'
    _key_mood(obj, b, [(1, 0.9), (30, 0.2), (60, 0.6)])
    _key_prop(obj, a, "blink", [(1, 0.0), (50, 1.0)])        # A alone keys 'blink'
    _key_prop(obj, b, "prop_swing", [(5, -1.0), (40, 2.0)])  # B alone keys 'prop_swing'
    _play(obj, a)
    new = run(shot_jobs.start_inbetween(CONFIG, obj, a, b, "a person turns around", 1.0, sampling=FAST,
                                        pin_feet=False, pool=pool))
    offset = b_start - 1  # B's keys start on frame 1
    hand = metadata.shot_recipe(metadata.read_metadata(new))["handover"]
    assert (hand["a_end"], hand["b_start"], hand["b_offset"]) == (a_end, b_start, offset)
    mood, want_a, want_b = _mood(new), _mood(a), _mood(b)
    for f in (1.0, 30.0, 60.5, hand["a_end"]):
        assert mood.evaluate(f) == pytest.approx(want_a.evaluate(f), abs=1e-5), f
    for f in (b_start, b_start + 10.5, b_start + 29, b_start + 45.25, b_start + 55):
        assert mood.evaluate(f) == pytest.approx(want_b.evaluate(f - offset), abs=1e-5), f
    gap = [mood.evaluate(f) for f in np.arange(hand["a_end"], b_start + 0.01, 0.5)]
    assert np.all(np.diff(gap) >= -1e-6) and gap[-1] == pytest.approx(0.9, abs=1e-5)  # eases A's 0.4 → B's 0.9
    keys = np.array([k.co[0] for k in mood.keyframe_points])
    assert np.allclose(keys, np.round(keys))  # B's keys stay on frames
    blink = _curve(new, "blink")
    assert blink.evaluate(50.0) == pytest.approx(1.0) and blink.evaluate(150.0) == pytest.approx(1.0)  # A's held
    swing, want = _curve(new, "prop_swing"), _curve(b, "prop_swing")
    for f in (b_start, b_start + 20.5, b_start + 39, b_start + 50):
        assert swing.evaluate(f) == pytest.approx(want.evaluate(f - offset), abs=1e-5), f
    assert swing.evaluate(10.0) == pytest.approx(-1.0)  # before B's part: B's first value, as B's curve holds it


@pytest.mark.parametrize("parts,keep_path,sent", [
    (["legs"], False, ["root", "left_leg", "right_leg"]),
    (["left_leg", "head"], False, ["root", "left_leg", "head"]),
    (["legs"], True, ["left_leg", "right_leg"]),
    (["arms"], False, ["left_arm", "right_arm"]),
    (["legs", "upper"], False, ["left_leg", "right_leg", "torso", "left_arm", "right_arm", "head"]),  # root: all kept
])
def test_regenerated_legs_take_the_root_unless_the_path_is_kept(pool, parts, keep_path, sent):
    """audit10 (demo model): 'legs' under a kept root slid the feet 1.65 m/s in contact — the kept path went on while
    the new legs stood, kicked or jumped; with the root ('lower') 0.39, the sources' own 0.35-0.52."""
    obj = keyed_body({"Mocap": synthetic_walk(80)})
    new = run(shot_jobs.start_regenerate_parts(CONFIG, obj, "a person kicks", parts, sampling=FAST,
                                               keep_path=keep_path, pool=pool))
    assert pool.worker.ops[-1]["parts"] == sent
    assert pool.worker.ops[-1]["keep_path"] is keep_path  # the worker applies the same rule (a no-op on these parts)
    assert metadata.shot_recipe(metadata.action_meta(new))["parts"] == sent


def test_the_addon_and_the_model_carry_the_root_by_one_rule():
    """The add-on's copy of the rule (it cannot import torch) against the model's, on every choice of parts."""
    import itertools

    inpainting = pytest.importorskip("salad_model.runtime.inpainting")
    names = inpainting.PART_NAMES
    for n in range(1, len(names)):
        for chosen in itertools.combinations(range(len(names)), n):
            for keep in (False, True):
                want = [names[i] for i in inpainting.legs_carry_root(chosen, keep)]
                assert shot_inputs.legs_carry_root([names[i] for i in chosen], keep) == want, (chosen, keep)


def test_the_panel_says_the_root_comes_with_the_legs_and_the_button_keeps_the_path(addon):
    walk = synthetic_walk(80)
    obj = armature.create_smpl22_armature("Mocap", walk, with_mesh=False)
    actions.apply_motion(obj, walk, prompt="a person walks", bone_map="smpl22", start_frame=1, seed=3)
    bpy.context.view_layer.objects.active = obj
    s = bpy.context.scene.salad_shot
    s.parts, s.parts_prompt = {"left_arm", "right_arm"}, "a person kicks"
    assert ("prop", "keep_path") not in draw(shot_panels.SALAD_PT_regenerate_parts)
    s.parts = {"left_leg", "right_leg"}
    calls = draw(shot_panels.SALAD_PT_regenerate_parts)
    assert ("prop", "keep_path") in calls and ("label", "The root (hips) comes with the legs") in calls
    s.keep_path = True
    assert ("label", "Feet may slide on the kept path") in draw(shot_panels.SALAD_PT_regenerate_parts)
    assert bpy.ops.salad.regenerate_parts(blocking=True) == {"FINISHED"}
    assert addon.worker.ops[-1]["parts"] == ["left_leg", "right_leg"]
    s.keep_path = False
    assert bpy.ops.salad.regenerate_parts(blocking=True) == {"FINISHED"}
    assert addon.worker.ops[-1]["parts"] == ["root", "left_leg", "right_leg"]
