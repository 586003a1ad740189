"""A shot whose recipe (the ``salad_shot`` custom property) was edited by hand or written by another version.

audit9: with a segment missing its seconds or prompt, a seed that is not a number, or ``segments`` not a list,
'Use This Shot's Segments' and 'Re-roll Segment' showed a Python traceback (KeyError / ValueError / TypeError), and
the Shot panel's draw raised on a recipe without segments; a leg length that is not a number failed the re-roll
only after the worker had made it. Each now names the broken property before anything is sent or changed.
"""

import json

import pytest

bpy = pytest.importorskip("bpy")

from blender_state import snapshot  # noqa: E402
from test_shot_audit import activate  # noqa: E402
from test_shot_audit import make_shot as make_body  # noqa: E402
from test_shot_operators import draw  # noqa: E402

from salad_blender import shot_inputs as si  # noqa: E402
from salad_blender import shot_panels  # noqa: E402
from salad_blender.inputs import JobError  # noqa: E402


def make_shot() -> bpy.types.Action:
    """A two-segment shot, its armature active: the action it plays."""
    body = make_body()
    activate(body)
    return body.animation_data.action


BROKEN = {  # what a hand edit did to the recipe → what the message says is wrong
    "no seconds": (lambda r: r["segments"][0].pop("seconds"), "segment 1 has no seconds"),
    "seconds text": (lambda r: r["segments"][1].update(seconds="abc"), "segment 2's seconds"),
    "seconds NaN": (lambda r: r["segments"][1].update(seconds=float("nan")), "segment 2's seconds"),
    "no prompt": (lambda r: r["segments"][0].pop("prompt"), "segment 1 has no prompt"),
    "seed text": (lambda r: r["segments"][0].update(seed="x"), "segment 1's seed"),
    "seed fraction": (lambda r: r["segments"][0].update(seed=1.5), "segment 1's seed"),
    "segments text": (lambda r: r.update(segments="abc"), "segments is not a list"),
    "segment number": (lambda r: r.update(segments=[1, 2]), "segment 1 is not an object"),
    "leg length text": (lambda r: r.update(leg_length="abc"), "leg_length"),
    "leg length negative": (lambda r: r.update(leg_length=-1.0), "leg_length"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_hand_edited_recipe_is_named_not_a_traceback(addon, case):
    act = make_shot()
    edit, why = BROKEN[case]
    recipe = json.loads(act["salad_shot"])
    edit(recipe)
    act["salad_shot"] = json.dumps(recipe)
    draw(shot_panels.SALAD_PT_shot)  # the panel still draws
    sent, before = len(addon.worker.ops), snapshot()
    ops = [lambda: bpy.ops.salad.reroll_segment(seed=7, blocking=True)]
    if "leg length" not in case:  # the segments are fine: they can be used
        ops.append(bpy.ops.salad.shot_use_recipe)
    for op in ops:
        with pytest.raises(RuntimeError) as err:
            op()
        text = str(err.value)
        assert "Traceback" not in text, text
        assert f"The action '{act.name}' has a broken custom property salad_shot" in text and why in text, text
    assert len(addon.worker.ops) == sent and snapshot() == before


def test_a_recipe_without_segments_draws_the_panel_and_is_refused(addon):
    act = make_shot()
    act["salad_shot"] = json.dumps({"kind": "compose", "seed": 1})
    draw(shot_panels.SALAD_PT_shot)  # was: KeyError 'segments' on every redraw
    with pytest.raises(RuntimeError, match="not a timeline made by 'Generate Shot'"):
        bpy.ops.salad.reroll_segment(seed=7, blocking=True)


def test_an_older_recipe_without_seeds_or_leg_length_still_reads():
    """Recipes before seeds and leg lengths were recorded: segments without a seed derive it, no leg length."""
    recipe = {"kind": "compose", "seed": 3, "segments": [{"prompt": "a person walks", "seconds": 4}]}
    assert si.recipe_segments(recipe) == [si.Segment("a person walks", 4.0, None)]
    assert si.recipe_leg_length(recipe) is None
    assert si.recipe_leg_length({**recipe, "leg_length": 0.91}) == 0.91
    with pytest.raises(JobError, match="leg_length"):
        si.recipe_leg_length({**recipe, "leg_length": True})


def test_a_seed_beyond_the_panels_field_is_refused_and_the_list_kept(addon):
    """A shot made by tools/batch.py may carry a segment seed up to 2**32 - 1 (what the worker takes); the
    segment list's seed field holds at most 2**31 - 1. 'Use This Shot's Segments' cleared the list, then raised
    ValueError on that seed (a traceback and the user's segments lost); now it says so and keeps the list."""
    act = make_shot()
    recipe = json.loads(act["salad_shot"])
    recipe["segments"][1]["seed"] = 3_000_000_000
    act["salad_shot"] = json.dumps(recipe)
    s = bpy.context.scene.salad_shot
    s.segments[0].prompt = "my own segment"
    kept = [(r.prompt, r.seconds, r.use_seed, r.seed) for r in s.segments]
    with pytest.raises(RuntimeError) as err:
        bpy.ops.salad.shot_use_recipe()
    assert "Traceback" not in str(err.value) and "Segment 2's seed 3000000000" in str(err.value), str(err.value)
    assert [(r.prompt, r.seconds, r.use_seed, r.seed) for r in s.segments] == kept
