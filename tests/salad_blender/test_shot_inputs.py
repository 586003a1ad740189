"""salad_blender.shot_inputs and the shot recipe in metadata, without Blender; a shot job's state machine on a
scripted worker (shot_fakes.ShotWorker answers by the op contract)."""

import pytest
from shot_fakes import FakePool, ShotWorker

from salad_blender import metadata, motion_job
from salad_blender import shot_inputs as si
from salad_blender.inputs import JobError, Sampling
from salad_blender.worker_pool import WorkerConfig

TWO = [si.Segment("a person walks forward", 4.0), si.Segment("a person waves", 3.0, 7)]


@pytest.mark.parametrize("segments,pattern", [
    ([], "no segments"),
    ([si.Segment("a person walks", 4), si.Segment("   ", 3)], "Segment 2 has no prompt"),
    ([si.Segment("a person walks", 1.5)], r"Segment 1's duration is 1.5 s; it must be within 2–300 s"),
    ([si.Segment("a person walks", 400)], "within 2–300 s"),
    ([si.Segment("a person walks", float("nan"))], "must be a number of seconds"),
    ([si.Segment("a", 200), si.Segment("b", 101)], "The shot is 301 s long; the limit is 300 s"),
    ([si.Segment("a person walks", 4, -1)], "Segment 1's seed must be an integer within 0 … 4294967295"),
    ([si.Segment("a person walks", 4, 2**32)], "Segment 1's seed must be an integer within 0"),
])
def test_bad_segments_are_refused(segments, pattern):
    with pytest.raises(JobError, match=pattern):
        si.check_segments(segments)


def test_segments_cleaned_and_request_fields():
    segs = si.check_segments([{"prompt": "  a person   walks ", "seconds": 2}, TWO[1]])
    assert segs == [si.Segment("a person walks", 2.0), TWO[1]]
    assert si.check_segments([si.Segment("a", 150), si.Segment("b", 150)])  # exactly the limit is fine
    req = si.compose_request(segs, Sampling(seed=3, steps=10, sampler="dpm++", guidance=4.0))
    assert req == {"op": "compose", "segments": [{"prompt": "a person walks", "seconds": 2.0},
                                                 {"prompt": "a person waves", "seconds": 3.0, "seed": 7}],
                   "context_seconds": si.CONTEXT_SECONDS, "trim_last": True, "seed": 3, "steps": 10,
                   "scheduler": "dpm++", "guidance": 4.0}  # no seconds / frames: the segments give the length


def test_recipe_keeps_the_seeds_the_worker_used_and_rerolls_one():
    wmeta = {"shot": {"segments": [{"seed": 1234, "start": 0, "end": 80}, {"seed": 7, "start": 80, "end": 140}]}}
    recipe = si.compose_recipe(TWO, 5, wmeta)
    assert recipe == {"kind": "compose", "seed": 5, "context_seconds": si.CONTEXT_SECONDS, "trim_last": True,
                      "segments": [
        {"prompt": "a person walks forward", "seconds": 4.0, "seed": 1234, "start": 0, "end": 80},
        {"prompt": "a person waves", "seconds": 3.0, "seed": 7, "start": 80, "end": 140}]}
    segs = si.recipe_segments(recipe)
    assert segs == [si.Segment("a person walks forward", 4.0, 1234), TWO[1]]  # replays exactly, any shot seed
    rolled = si.reroll(segs, 1, 99)
    assert rolled == [segs[0], si.Segment("a person waves", 3.0, 99)]
    with pytest.raises(JobError, match="already has seed 7"):
        si.reroll(segs, 1, 7)
    with pytest.raises(JobError, match="There is no segment 3; the shot has 2"):
        si.reroll(segs, 2, 1)
    with pytest.raises(JobError, match="not a timeline made by 'Generate Shot'"):
        si.recipe_segments({"kind": "continue", "prompt": "x"}, "The action 'x'")
    with pytest.raises(JobError, match="not a timeline"):
        si.recipe_segments(None)


def test_parts():
    assert si.check_parts(["arms"]) == ["left_arm", "right_arm"]
    assert si.check_parts(["head", "legs", "Left Arm"]) == ["left_leg", "right_leg", "left_arm", "head"]
    assert si.check_parts(["upper"]) == ["torso", "left_arm", "right_arm", "head"]
    assert si.check_parts(["lower"]) == ["root", "left_leg", "right_leg"]
    with pytest.raises(JobError, match="No body part selected"):
        si.check_parts([])
    with pytest.raises(JobError, match="Unknown body part 'tail'"):
        si.check_parts(["tail"])
    with pytest.raises(JobError, match="nothing of the source would be kept"):
        si.check_parts(["upper", "lower"])


def test_context_window():
    assert si.context_frames() == 20  # 1 s = 5 latent frames of 4 features, one per joint frame (pose_count)
    si.check_context(20, "walk", "continuing it")
    si.check_context(40, "walk", "regenerating its parts", 2.0)  # a 2 s SALAD shot (was "1.95 s; needs 2 s")
    with pytest.raises(JobError, match=r"The action 'walk' is 0.95 s long; continuing it needs at least 1 s"):
        si.check_context(19, "walk", "continuing it")


def test_shot_recipe_in_metadata():
    recipe = si.compose_recipe(TWO, 5, {})
    props = metadata.make_metadata(prompt="a; b", seed=5, frames=140, source="shot", shot=recipe)
    meta = metadata.read_metadata(props)
    assert meta["salad_shot"] == recipe and metadata.shot_recipe(meta) == recipe
    assert metadata.shot_recipe(props) == recipe  # the stored JSON string reads too
    assert metadata.shot_recipe(metadata.make_metadata(prompt="p", seed=0, frames=40)) is None
    with pytest.raises(JobError, match="is a shot"):  # edits regenerate from one prompt + seed: not a shot
        metadata.refuse_inversion("x", meta)


def test_compose_job_progress_per_step_and_cancel():
    """A shot job reports the worker's steps and ends cancelled without applying."""
    worker = ShotWorker(steps=4)
    applied = []
    op = si.compose_request(TWO, Sampling(seed=1, steps=2))
    job = motion_job.make_job("compose", "Generate shot", WorkerConfig(python="python"), op, applied.append,
                              FakePool(worker), describe="Shot of 2 segments")
    seen = []
    while not job.poll():
        seen.append(job.status)
    assert seen == [f"Shot of 2 segments: step {i}/4" for i in range(1, 4)]
    assert job.state == "done" and len(applied) == 1 and [r["op"] for r in worker.sent] == ["load", "compose"]
    assert len(applied[0]["joints"]) == 140  # 4 s + 3 s at 20 fps

    job = motion_job.make_job("compose", "Generate shot", WorkerConfig(python="python"), op, applied.append,
                              FakePool(ShotWorker(steps=10)))
    job.poll()
    job.poll()
    job.cancel()
    assert job.poll() and job.state == "cancelled" and len(applied) == 1


def _refused(call, message):
    """``call`` raises a JobError whose message is exactly ``message`` (what the user reads)."""
    with pytest.raises(JobError) as err:
        call()
    assert str(err.value) == message


def test_refusals_word_for_word():
    _refused(lambda: si.check_parts(["tail"]), "Unknown body part 'tail'; use arms, legs, upper, lower or root, "
             "left_leg, right_leg, torso, left_arm, right_arm, head.")
    _refused(lambda: si.check_parts(["", "  "]), "No body part selected: tick at least one part to regenerate (or a "
             "preset: arms, legs, upper or lower body).")
    _refused(lambda: si.check_parts(si.PART_NAMES), "All body parts are selected, so nothing of the source would be "
             "kept: generate a new motion instead, or untick a part.")
    _refused(lambda: si.check_context(19, "walk", "continuing it"),
             "The action 'walk' is 0.95 s long; continuing it needs at least 1 s of it (the motion the model "
             "conditions on).")
    _refused(lambda: si.recipe_segments(None), "the action is not a timeline made by 'Generate Shot', so it has no "
             "segments to re-roll.")
    segs = [si.Segment("a", 2.0, 1), si.Segment("b", 3.0, 7)]
    _refused(lambda: si.reroll(segs, 1, 7), "Segment 2 already has seed 7; pick another to re-roll it.")
    _refused(lambda: si.reroll(segs, -1, 3), "There is no segment 0; the shot has 2.")
    _refused(lambda: si.reroll(segs, 0, -1), "The new seed must be an integer within 0 … 4294967295, not -1.")
    _refused(lambda: si.check_segments([si.Segment("a", True)]),
             "Segment 1's duration must be a number of seconds, not True.")
    _refused(lambda: si.check_segments([si.Segment("a", "4")]),
             "Segment 1's duration must be a number of seconds, not '4'.")
    _refused(lambda: si.check_segments([si.Segment("a", 300.5)]),
             "Segment 1's duration is 300.5 s; it must be within 2–300 s.")
    _refused(lambda: si.check_segments([si.Segment("a", 4, True)]),
             "Segment 1's seed must be an integer within 0 … 4294967295, not True.")
    _refused(lambda: si.check_segments([{"seconds": 4}]),
             "Segment 1 has no prompt: describe what happens in it, e.g. 'a person waves'.")


def test_limits_are_inclusive_and_mapped_segments_keep_their_seed():
    segs = si.check_segments([{"prompt": "a", "seconds": 2, "seed": 0}, {"prompt": "b", "seconds": 3,
                                                                         "seed": 2**32 - 1}])
    assert segs == [si.Segment("a", 2.0, 0), si.Segment("b", 3.0, 2**32 - 1)]  # shortest segment, seed ends
    assert si.check_segments([si.Segment("a", 300)]) == [si.Segment("a", 300.0)]  # the longest
    assert si.reroll(segs, 0, 5)[0] == si.Segment("a", 2.0, 5)  # the first segment can be re-rolled
    assert si.check_parts(["Left-Arm", "right arm"]) == ["left_arm", "right_arm"]
    assert si.shot_title(TWO) == "shot: a person walks forward | a person waves"  # the new Action's name
    assert si.shot_title(TWO[:1], "re-roll") == "re-roll: a person walks forward"


def test_recipes_keep_the_segments_own_seeds_and_where_their_prompts_show():
    recipe = si.compose_recipe(TWO, 5, {"shot": {"segments": [{"start": 0, "end": 80, "content_start": 0,
                                                                "content_end": 96}, {}]}})
    assert recipe["segments"] == [
        {"prompt": "a person walks forward", "seconds": 4.0, "seed": None, "start": 0, "end": 80,
         "content_start": 0, "content_end": 96},
        {"prompt": "a person waves", "seconds": 3.0, "seed": 7}]  # the worker reported no seed: the segment's own
    assert si.recipe_segments(recipe) == TWO  # a segment without a seed stays without one
    for bad in ({"kind": "compose", "segments": []}, {"kind": "continue", "segments": recipe["segments"]}):
        with pytest.raises(JobError, match="not a timeline made by 'Generate Shot'"):
            si.recipe_segments(bad)


def test_a_duration_typed_in_blender_is_the_one_typed():
    """audit9: Blender's float properties are 32-bit, so a segment typed as 2.9 s reached the worker (and the recipe,
    shown in Custom Properties) as 2.9000000953674316 s; the worker rounds a duration to whole latent frames of
    0.2 s half-to-even, so at the odd tenths it made another length than the same number from tools/batch.py (2.9 s:
    60 frames from Blender, 56 from batch). Durations are sent as typed (to a millionth of a second)."""
    import numpy as np

    typed = [float(np.float32(v)) for v in (2.1, 2.3, 2.9, 3.7, 12.6)]  # what the Duration fields hold
    segs = si.check_segments([si.Segment("a person walks", t) for t in typed])
    req = si.compose_request(segs, Sampling(seed=1))
    assert [s["seconds"] for s in req["segments"]] == [2.1, 2.3, 2.9, 3.7, 12.6]
    assert si.compose_recipe(segs, 1, {})["segments"][2]["seconds"] == 2.9
    assert si.check_seconds(float(np.float32(0.7)), "The continuation", 0.4, 300) == 0.7
    assert Sampling(seconds=float(np.float32(2.9))).fields()["seconds"] == 2.9  # Text to Motion's Duration


def test_trim_last_is_on_by_default_always_sent_and_kept_in_the_recipe():
    """End on Last Segment (on by default): the request and the recipe always carry it, true or false (a re-roll
    makes the shot the same way whatever the worker's default); a recipe from before the option reads as off,
    the way it was made."""
    assert si.compose_request(TWO, Sampling(seed=1, steps=2))["trim_last"] is True
    assert si.compose_request(TWO, Sampling(seed=1, steps=2), trim_last=False)["trim_last"] is False
    recipe = si.compose_recipe(TWO, 5, {})
    assert recipe["trim_last"] is True and si.recipe_trim_last(recipe) is True
    off = si.compose_recipe(TWO, 5, {}, trim_last=False)
    assert off["trim_last"] is False and si.recipe_trim_last(off) is False
    old = {k: v for k, v in recipe.items() if k != "trim_last"}
    assert si.recipe_trim_last(old) is False
    _refused(lambda: si.recipe_trim_last({**recipe, "trim_last": "yes"}, "The action 'x'"),
             "The action 'x' has a shot recipe whose trim_last is 'yes'; it must be true or false.")
