"""salad_blender.shot_jobs in Blender against a scripted worker (shot_fakes.ShotWorker, by the op contract).

What is checked: the request each job sends (sampled source motion, segments, parts, recipe fields), the
new Action it makes (placement where the source stands, length, ``salad_*`` recipe), that nothing existing
changes (source actions, their assignment, the scene), and that every bad input fails before anything is
sent. Known motion in, known motion out, so placement is checked to the millimetre; the real worker's runs
are in test_shot_jobs.py.
"""

import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_state import key_values, snapshot, world_heads  # noqa: E402
from shot_fakes import FakePool, ShotWorker  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, armature, jobs, metadata, shot_jobs, smpl22  # noqa: E402
from salad_blender import retarget as rt  # noqa: E402
from salad_blender import shot_inputs as si  # noqa: E402
from salad_blender.client import WorkerError  # noqa: E402

CONFIG = jobs.WorkerConfig(python="python", model="demo")
SEGS = [si.Segment("a person walks forward", 4.0), si.Segment("a person waves", 3.0)]
FAST = jobs.Sampling(seed=2, steps=3)


@pytest.fixture
def pool():
    return FakePool(ShotWorker(steps=2))


def keyed_body(clips: dict[str, np.ndarray], location=(0.0, 0.0, 0.0), angle: float = 0.0) -> bpy.types.Object:
    """A fresh 20 fps scene with an SMPL-22 armature and one plain (non-SALAD) action per clip; plays the first."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0
    first = next(iter(clips.values()))
    obj = armature.create_smpl22_armature("Mocap", first, with_mesh=False)
    obj.location, obj.rotation_euler = location, (0.0, 0.0, angle)
    bpy.context.view_layer.update()
    made = []
    for name, clip in clips.items():
        act = actions.apply_motion(obj, clip, prompt=name, bone_map="smpl22", scene=scene, start_frame=1)
        for key in [k for k in act.keys() if k.startswith("salad_")]:
            del act[key]
        act.name = name
        made.append(act)
    actions.assign_action(obj, made[0], made[0].slots[0] if hasattr(made[0], "slots") else None)
    scene.frame_start, scene.frame_end = 1, len(first)
    bpy.context.view_layer.objects.active = obj
    return obj


def run(job):
    job.wait(timeout=30)
    assert job.state == "done", job.message
    return job.output


def test_compose_new_body_records_the_recipe(scene, pool):
    old = bpy.data.actions.new("keep me")
    job = shot_jobs.start_compose(CONFIG, SEGS, FAST, jobs.Target(kind="new", pin_feet=False), pool=pool)
    act = run(job)
    (req,) = pool.worker.ops
    assert req["segments"] == [{"prompt": "a person walks forward", "seconds": 4.0},
                               {"prompt": "a person waves", "seconds": 3.0}] and req["seed"] == 2
    assert act.name == "SALAD: shot: a person walks forward | a person waves"
    assert bpy.data.objects["SALAD Body"].animation_data.action == act and "keep me" in bpy.data.actions
    meta = metadata.action_meta(act)
    assert meta["salad_source"] == "shot" and meta["salad_frames"] == 140 and meta["salad_seed"] == 2
    assert meta["salad_prompt"] == "a person walks forward; a person waves"
    assert metadata.shot_recipe(meta)["segments"] == [
        {"prompt": "a person walks forward", "seconds": 4.0, "seed": 1020, "start": 0, "end": 80},
        {"prompt": "a person waves", "seconds": 3.0, "seed": 1021, "start": 80, "end": 140}]
    assert (scene.frame_start, scene.frame_end) == (1, 167)  # 140 frames at 20 fps span 6.95 s: 167 at 24 fps
    assert old.users == 0 and not key_values(old)  # untouched


def test_reroll_changes_one_seed_and_keeps_the_shot(scene, pool):
    run(shot_jobs.start_compose(CONFIG, SEGS, FAST, jobs.Target(kind="new", pin_feet=False), pool=pool))
    body = bpy.data.objects["SALAD Body"]
    first = body.animation_data.action
    before = key_values(first)
    with pytest.raises(jobs.JobError, match="is a shot"):  # prompt edits regenerate one prompt + seed
        jobs.start_edit(CONFIG, body, new_prompt="a person runs", pool=pool)
    new = run(shot_jobs.start_reroll_segment(CONFIG, body, 1, 99, pool=pool))
    req = pool.worker.ops[-1]
    assert req["segments"] == [{"prompt": "a person walks forward", "seconds": 4.0, "seed": 1020},
                               {"prompt": "a person waves", "seconds": 3.0, "seed": 99}]
    assert (req["steps"], req["scheduler"], req["guidance"]) == (3, "ddim", 2.5)  # from the shot's metadata
    assert new != first and body.animation_data.action == new and key_values(first) == before
    meta = metadata.action_meta(new)
    assert meta["salad_parent"] == first.name and new.name.startswith("SALAD: shot re-roll 2: a person")
    assert [s["seed"] for s in metadata.shot_recipe(meta)["segments"]] == [1020, 99]
    with pytest.raises(jobs.JobError, match="already has seed 99"):
        shot_jobs.start_reroll_segment(CONFIG, body, 1, 99, pool=pool)


def test_end_on_last_segment_is_asked_recorded_and_kept_by_a_reroll(scene, pool):
    """trim_last (on by default) reaches the worker explicitly either way, the recipe records the choice, and a
    re-roll of the shot makes it the same way (else the re-rolled shot's last segment would be made differently);
    a shot whose recipe predates the option (no trim_last key: made untrimmed) re-rolls untrimmed."""
    for trim in (None, True, False):
        asked = {} if trim is None else {"trim_last": trim}
        run(shot_jobs.start_compose(CONFIG, SEGS, FAST, jobs.Target(kind="new", pin_feet=False), **asked, pool=pool))
        made = trim is not False
        assert pool.worker.ops[-1]["trim_last"] is made
        body = bpy.data.objects["SALAD Body"]
        shot = body.animation_data.action
        assert metadata.shot_recipe(metadata.action_meta(shot))["trim_last"] is made
        rolled = run(shot_jobs.start_reroll_segment(CONFIG, body, 0, 99, pool=pool))
        assert pool.worker.ops[-1]["trim_last"] is made
        assert metadata.shot_recipe(metadata.action_meta(rolled))["trim_last"] is made
        if trim is None:  # the same shot as recorded before the option existed
            recipe = json.loads(shot["salad_shot"])
            del recipe["trim_last"]
            shot["salad_shot"] = json.dumps(recipe)
            rolled = run(shot_jobs.start_reroll_segment(CONFIG, body, 0, 98, action=shot, pool=pool))
            assert pool.worker.ops[-1]["trim_last"] is False
            assert metadata.shot_recipe(metadata.action_meta(rolled))["trim_last"] is False
        bpy.data.objects.remove(body)


def test_continue_places_the_source_where_it_was(pool):
    walk = synthetic_walk(96)
    obj = keyed_body({"Walk": walk}, location=(1.0, -2.0, 0.0), angle=0.6)
    src = obj.animation_data.action
    names = list(smpl22.JOINT_NAMES)
    was = {f: world_heads(obj, names, f) for f in (1, 40, 92)}
    before, snap = key_values(src), snapshot()
    job = shot_jobs.start_continue(CONFIG, obj, "a person sits down", 2.0, sampling=FAST, pin_feet=False, pool=pool)
    req = job._op  # sent at the first poll
    placed = rt.Placement(heading=0.6, origin=np.array([1.0, -2.0, 0.0])).apply(smpl22.model_to_blender(walk))
    assert np.abs(req["joints"] - smpl22.blender_to_model(placed)).max() < 1e-3  # world pose, model axes, 20 fps
    assert req["seconds"] == 2.0 and req["context_seconds"] == si.CONTEXT_SECONDS
    assert snapshot() == snap  # sampling left the frame and everything else as it was
    new = run(job)
    assert obj.animation_data.action == new and key_values(src) == before
    meta = metadata.action_meta(new)
    assert meta["salad_frames"] == 92 + 40 and meta["salad_source_action"] == "Walk"
    assert metadata.shot_recipe(meta) == {"kind": "continue", "prompt": "a person sits down", "seconds": 2.0,
                                          "seed": 2, "context_seconds": si.CONTEXT_SECONDS, "sources": ["Walk"]}
    for f, heads in was.items():  # the source part stands where the original did (position and heading)
        assert np.abs(world_heads(obj, names, f) - heads).max() < 0.01, f


def test_inbetween_samples_b_without_keeping_it(pool):
    a, b = synthetic_walk(96), synthetic_walk(60, turn_deg=-40.0)
    obj = keyed_body({"A": a, "B": b})
    act_a, act_b = bpy.data.actions["A"], bpy.data.actions["B"]
    slot = getattr(obj.animation_data, "action_slot", None)
    keys = key_values(act_a), key_values(act_b)
    snap = snapshot()
    job = shot_jobs.start_inbetween(CONFIG, obj, act_a, act_b, "a person turns around", 1.0, sampling=FAST,
                                    pin_feet=False, pool=pool)
    assert snapshot() == snap and getattr(obj.animation_data, "action_slot", None) == slot  # A plays again
    req = job._op
    assert np.abs(req["joints_a"] - a).max() < 1e-3 and np.abs(req["joints_b"] - b).max() < 1e-3
    new = run(job)
    assert (key_values(act_a), key_values(act_b)) == keys and obj.animation_data.action == new
    meta = metadata.action_meta(new)
    assert meta["salad_frames"] == 92 + 20 + 56
    assert metadata.shot_recipe(meta)["sources"] == ["A", "B"]
    assert np.abs(world_heads(obj, ["pelvis"], 1) - smpl22.model_to_blender(a[0, :1])).max() < 0.01


def test_regenerate_parts_of_a_generation_and_of_mocap(pool):
    walk = synthetic_walk(80)
    obj = keyed_body({"Mocap": walk})
    mocap = obj.animation_data.action
    gen = actions.apply_motion(obj, walk, prompt="a person walks", seed=3, model="demo", guidance=2.5, steps=10,
                               bone_map="smpl22", start_frame=1, meta={"scheduler": "ddim", "rig": "smpl22"})
    new = run(shot_jobs.start_regenerate_parts(CONFIG, obj, "a person waves", ["arms"], sampling=FAST, pool=pool))
    req = pool.worker.ops[-1]
    assert "joints" not in req and req["source_prompt"] == "a person walks"  # the exact latent, from the recipe
    assert {k: req[k] for k in ("frames", "seed", "guidance", "steps", "parts")} == {
        "frames": 80, "seed": 3, "guidance": 2.5, "steps": 10, "parts": ["left_arm", "right_arm"]}
    recipe = metadata.shot_recipe(metadata.action_meta(new))
    assert recipe == {"kind": "regenerate_parts", "prompt": "a person waves", "parts": ["left_arm", "right_arm"],
                      "sources": [gen.name], "source": "generation", "seed": 3}
    actions.assign_action(obj, mocap, mocap.slots[0] if hasattr(mocap, "slots") else None)
    new = run(shot_jobs.start_regenerate_parts(CONFIG, obj, "a person waves", ["legs", "head"], sampling=FAST,
                                               pool=pool))
    req = pool.worker.ops[-1]
    assert np.abs(req["joints"] - walk).max() < 1e-3 and req["parts"] == ["root", "left_leg", "right_leg", "head"]
    assert metadata.shot_recipe(metadata.action_meta(new))["source"] == "animation"
    assert len(bpy.data.actions) == 4  # mocap, generation, two results


@pytest.mark.parametrize("case,pattern", [
    ("empty_prompt", "Segment 2 has no prompt"),
    ("duration", r"Segment 1's duration is 0.5 s; it must be within 2–300 s"),
    ("total", "The shot is 320 s long; the limit is 300 s"),
    ("short_continue", r"The action 'Walk' is 0.80 s long; continuing it needs at least 1 s"),
    ("short_inbetween", r"The action 'Short' is 0.80 s long; in-betweening to it needs at least 1 s"),
    ("no_b", "Pick both actions"),
    ("no_part", "No body part selected"),
    ("short_regenerate", r"^The action 'Short' is 0.80 s long; regenerating its parts needs at least 2 s of it \(the "
                         r"model's shortest clip\)\.$"),
    ("no_continue_prompt", "Type a prompt for the continuation"),
    ("no_armature", "Select an armature with an animation to continue"),
])
def test_bad_input_changes_nothing_and_sends_nothing(pool, case, pattern):
    obj = keyed_body({"Walk": synthetic_walk(16 if case == "short_continue" else 96), "Short": synthetic_walk(16)})
    snap = snapshot()
    new = jobs.Target(kind="new")
    calls = {
        "empty_prompt": lambda: shot_jobs.start_compose(CONFIG, [SEGS[0], si.Segment(" ", 3)], FAST, new, pool=pool),
        "duration": lambda: shot_jobs.start_compose(CONFIG, [si.Segment("a", 0.5)], FAST, new, pool=pool),
        "total": lambda: shot_jobs.start_compose(CONFIG, [si.Segment("a", 160), si.Segment("b", 160)], FAST, new,
                                                 pool=pool),
        "short_continue": lambda: shot_jobs.start_continue(CONFIG, obj, "a person runs", 2.0, pool=pool),
        "short_inbetween": lambda: shot_jobs.start_inbetween(CONFIG, obj, bpy.data.actions["Walk"],
                                                             bpy.data.actions["Short"], "a person turns", 1.0,
                                                             pool=pool),
        "no_b": lambda: shot_jobs.start_inbetween(CONFIG, obj, bpy.data.actions["Walk"], None, "turn", 1.0, pool=pool),
        "no_part": lambda: shot_jobs.start_regenerate_parts(CONFIG, obj, "a person waves", [], pool=pool),
        "short_regenerate": lambda: shot_jobs.start_regenerate_parts(CONFIG, obj, "a person waves", ["arms"],
                                                                     action=bpy.data.actions["Short"], pool=pool),
        "no_continue_prompt": lambda: shot_jobs.start_continue(CONFIG, obj, "  ", 2.0, pool=pool),
        "no_armature": lambda: shot_jobs.start_continue(CONFIG, None, "a person runs", 2.0, pool=pool),
    }
    with pytest.raises(jobs.JobError, match=pattern):
        calls[case]()
    assert snapshot() == snap and pool.worker.sent == []


def test_cancel_and_worker_refusal_leave_the_scene(pool):
    obj = keyed_body({"Walk": synthetic_walk(96)})
    snap = snapshot()
    job = shot_jobs.start_continue(CONFIG, obj, "a person runs", 2.0, sampling=FAST, pool=pool)
    job.poll()
    job.cancel()
    assert job.poll() and job.state == "cancelled" and snapshot() == snap
    pool.worker.error = WorkerError("invalid_input", "the in-between gap is 9 s; it must be within 0.2–7.8 s")
    job = shot_jobs.start_inbetween(CONFIG, obj, bpy.data.actions["Walk"], bpy.data.actions["Walk"], "turn", 9.0,
                                    pool=pool)
    job.wait(timeout=30)
    assert job.state == "failed" and "it must be within 0.2–7.8 s" in job.message and snapshot() == snap


class _LongerLegsOnReroll(ShotWorker):
    """Segment 2 re-rolled under seed 99 comes back with every joint 1.25× farther from the origin (longer legs
    over most of the shot: the motion's median leg length changes); everything before it is unchanged."""

    @staticmethod
    def op_compose(req: dict) -> dict:
        result = ShotWorker.op_compose(req)
        if req["segments"][1].get("seed") == 99:
            start = result["meta"]["shot"]["segments"][1]["start"]
            result["joints"] = result["joints"].copy()
            result["joints"][start:] *= 1.25
        return result


@pytest.mark.parametrize("moved", [False, True])
def test_a_reroll_keeps_the_parents_scale_so_the_keys_before_it_stay(moved):
    """The automatic scale divides by the motion's median leg length, which a re-rolled segment changes: the
    re-roll keeps its parent's scale (recipe's leg_length), so the keys before the segment are the same.
    ``moved``: the body was moved and turned after the shot was made; the re-roll still faces and stands where
    the rig does (its placement's heading and origin), so the keys before the segment are still the same."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    pool = FakePool(_LongerLegsOnReroll(steps=2))
    segs = [si.Segment("a person walks forward", 2.0), si.Segment("a person waves", 6.0)]
    first = run(shot_jobs.start_compose(CONFIG, segs, FAST, jobs.Target(kind="new", pin_feet=False), pool=pool))
    body = bpy.data.objects["SALAD Body"]
    if moved:
        body.location, body.rotation_euler = (2.0, -1.5, 0.0), (0.0, 0.0, 0.7)
        bpy.context.view_layer.update()
    leg = metadata.shot_recipe(metadata.action_meta(first))["leg_length"]
    new = run(shot_jobs.start_reroll_segment(CONFIG, body, 1, 99, pool=pool))
    assert pool.worker.ops[-1]["seed"] == 2  # the shot's seed, from the parent's metadata
    assert metadata.shot_recipe(metadata.action_meta(new))["leg_length"] == leg
    old_keys, new_keys = key_values(first), key_values(new)
    assert old_keys.keys() == new_keys.keys()
    end = 40 * 24 / 20  # segment 2 starts at model frame 40: scene frame 1 + 48
    moved = 0.0
    for path, keys in old_keys.items():
        a = np.array([k for k in keys if k[0] < end])
        b = np.array([k for k in new_keys[path] if k[0] < end])
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-5, path
        later = [k[1] for k in keys if k[0] > end + 4]
        moved = max(moved, np.abs(np.subtract(later, [k[1] for k in new_keys[path] if k[0] > end + 4])).max())
    assert moved > 0.05  # the re-rolled segment itself did change


def test_reroll_refusals_word_for_word(scene, pool):
    run(shot_jobs.start_compose(CONFIG, SEGS, FAST, jobs.Target(kind="new", pin_feet=False), pool=pool))
    body = bpy.data.objects["SALAD Body"]
    shot = body.animation_data.action
    sent = len(pool.worker.ops)
    pick = "Select an armature that plays a shot made by 'Generate Shot'."
    for obj, action in ((None, shot), (None, None)):
        with pytest.raises(jobs.JobError) as e:
            shot_jobs.start_reroll_segment(CONFIG, obj, 1, 99, action=action, pool=pool)
        assert str(e.value) == pick
    plain = run(shot_jobs.start_compose(CONFIG, SEGS, FAST, jobs.Target(kind="new", pin_feet=False), pool=pool))
    plain["salad_shot"] = "{}"  # a SALAD action that is not a timeline
    with pytest.raises(jobs.JobError) as e:
        shot_jobs.start_reroll_segment(CONFIG, body, 1, 99, action=plain, pool=pool)
    assert str(e.value) == (f"The action '{plain.name}' is not a timeline made by 'Generate Shot', so it has no "
                            "segments to re-roll.")
    assert len(pool.worker.ops) == sent + 1  # only the second shot's request went out


def test_an_edited_generation_is_regenerated_from_its_pose_not_its_recipe(pool):
    """Only a generation without edits (and not itself a shot) can be regenerated from its recipe: an edited
    one's recipe no longer gives its motion, so it is sampled like any animation. The result is named after
    the prompt and the parts."""
    walk = synthetic_walk(80)
    obj = keyed_body({"Mocap": walk})
    reweight = [{"mode": "reweight", "word": "walks", "scale": 2.0}]
    for edits, extra, source in (((), {}, "generation"), (reweight, {}, "animation"),
                                 ((), {"source": "shot"}, "animation")):
        gen = actions.apply_motion(obj, walk, prompt="a person walks", seed=3, model="demo", guidance=2.5, steps=10,
                                   bone_map="smpl22", start_frame=1, edits=edits,
                                   meta={"scheduler": "ddim", "rig": "smpl22", **extra})
        new = run(shot_jobs.start_regenerate_parts(CONFIG, obj, " a person waves ", ["arms", "head"], sampling=FAST,
                                                   pool=pool))
        req = pool.worker.ops[-1]
        assert ("joints" in req) == (source == "animation"), extra
        assert metadata.shot_recipe(metadata.action_meta(new))["source"] == source
        assert new.name == "SALAD: a person waves [left_arm, right_arm, head]"
        actions.assign_action(obj, gen, gen.slots[0] if hasattr(gen, "slots") else None)
        bpy.data.actions.remove(new)


def test_a_shot_result_with_contacts_has_its_feet_pinned_when_asked():
    """The worker's contacts reach the retargeter: with pin_feet a planted ankle holds its place on the ground
    plane over its contact frames; without it, it follows the synthetic walk."""
    class Planted(ShotWorker):
        @staticmethod
        def op_compose(req: dict) -> dict:
            result = ShotWorker.op_compose(req)
            contacts = np.zeros((len(result["joints"]), 4), bool)
            contacts[10:14, 0] = True  # the left ankle planted for 4 frames
            result["contacts"] = contacts
            return result

    spread = {}
    for pin in (True, False):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = 20, 1.0
        pool = FakePool(Planted(steps=1))
        run(shot_jobs.start_compose(CONFIG, SEGS, FAST, jobs.Target(kind="new", pin_feet=pin), pool=pool))
        body = bpy.data.objects["SALAD Body"]
        feet = np.array([world_heads(body, ["left_ankle"], f)[0, :2] for f in range(11, 15)])  # scene frames
        spread[pin] = float(np.abs(feet - feet.mean(axis=0)).max())
    assert spread[True] < 1e-3 < spread[False]


def test_regenerate_parts_sends_the_whole_recipe_and_records_its_parent():
    """Every field of the request and of the result: the generation's own model, scheduler, start frame and
    foot pinning carry over; the result names its parent and is a shot; the job says what it does."""
    walk = synthetic_walk(80)
    obj = keyed_body({"Mocap": walk})
    pool = FakePool(ShotWorker(steps=1))
    gen = actions.apply_motion(obj, walk, prompt="a person walks", seed=3, model="demo", guidance=2.5, steps=10,
                               bone_map="smpl22", start_frame=5,
                               meta={"scheduler": "dpm++", "rig": "smpl22", "pin_feet": False})
    job = shot_jobs.start_regenerate_parts(CONFIG, obj, "a person waves", ["head"], pool=pool)
    assert (job.kind, job.label, job._describe) == ("regenerate_parts", "Regenerate parts", "Regenerating head")
    new = run(job)
    sent = {k: v for k, v in pool.worker.ops[-1].items() if k != "id"}  # the job id travels in the request line
    assert sent == {"op": "regenerate_parts", "source_prompt": "a person walks", "frames": 80,
                    "seed": 3, "guidance": 2.5, "steps": 10, "scheduler": "dpm++",
                    "prompt": "a person waves", "parts": ["head"], "keep_path": False}
    meta = metadata.action_meta(new)
    assert (meta["salad_prompt"], meta["salad_parent"], meta["salad_source_action"], meta["salad_source"],
            meta["salad_model"]) == ("a person waves", gen.name, gen.name, "shot", "demo")
    assert int(new.frame_range[0]) == 5 and metadata.read_flag(meta["salad_pin_feet"]) is False
    assert obj.animation_data.action == new
    # from an animation: the sampled pose, the prompt, the sampling's seed
    actions.assign_action(obj, bpy.data.actions["Mocap"], None)
    job = shot_jobs.start_regenerate_parts(CONFIG, obj, "a person bows", ["torso"], sampling=FAST, pool=pool)
    assert (job.kind, job.label, job._describe) == ("regenerate_parts", "Regenerate parts", "Regenerating torso")
    new = run(job)
    req = pool.worker.ops[-1]
    assert (req["prompt"], req["parts"], req["seed"]) == ("a person bows", ["torso"], 2)
    meta = metadata.action_meta(new)
    assert meta["salad_prompt"] == "a person bows" and metadata.shot_recipe(meta)["seed"] == 2
    assert new.name == "SALAD: a person bows [torso]"


def test_a_reroll_and_a_regeneration_fill_in_what_the_parents_metadata_leaves_out():
    """An older or hand-cleaned action without ``salad_pin_feet`` / ``salad_model`` and with an empty
    ``salad_scheduler``: a re-roll samples with DDIM, pins the feet and uses the demo model; a regeneration from
    the recipe uses the demo model and the foot pinning it was asked for."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    pool = FakePool(ShotWorker(steps=1))
    config = jobs.WorkerConfig(python="python", model="unused")
    sampling = jobs.Sampling(seed=2, steps=3, sampler="dpm++")
    shot = run(shot_jobs.start_compose(CONFIG, SEGS, sampling, jobs.Target(kind="new", pin_feet=False), pool=pool))
    body = bpy.data.objects["SALAD Body"]
    for key in ("salad_pin_feet", "salad_model"):
        del shot[key]
    shot["salad_scheduler"] = ""  # (a missing one is filled in by metadata.action_meta)
    new = run(shot_jobs.start_reroll_segment(config, body, 1, 99, pool=pool))
    assert pool.worker.ops[-1]["scheduler"] == "ddim"
    meta = metadata.action_meta(new)
    assert meta["salad_model"] == "demo" and metadata.read_flag(meta["salad_pin_feet"]) is True
    walk = synthetic_walk(80)
    obj = keyed_body({"Mocap": walk})
    for pin in (False, True):
        gen = actions.apply_motion(obj, walk, prompt="a person walks", seed=3, model="demo", guidance=2.5, steps=10,
                                   bone_map="smpl22", start_frame=1, meta={"scheduler": "ddim", "rig": "smpl22"})
        for key in ("salad_pin_feet", "salad_model"):
            gen.pop(key, None)
        new = run(shot_jobs.start_regenerate_parts(config, obj, "a person waves", ["head"], pin_feet=pin, pool=pool))
        assert "joints" not in pool.worker.ops[-1]  # from the recipe
        meta = metadata.action_meta(new)
        assert meta["salad_model"] == "demo" and metadata.read_flag(meta["salad_pin_feet"]) is pin
        assert meta["salad_source_action"] == gen.name


def regeneration_source(source: str):
    """(a body playing the action to regenerate, a pool, that action): an 80-frame mocap walk, or a generation."""
    walk = synthetic_walk(80)
    obj = keyed_body({"Mocap": walk})
    src = bpy.data.actions["Mocap"]
    if source == "generation":
        src = actions.apply_motion(obj, walk, prompt="a person walks", seed=3, model="demo", guidance=2.5,
                                   steps=10, bone_map="smpl22", start_frame=1,
                                   meta={"scheduler": "ddim", "rig": "smpl22"})
    actions.assign_action(obj, src, src.slots[0] if hasattr(src, "slots") else None)
    return obj, FakePool(ShotWorker(steps=1)), src


@pytest.mark.parametrize("source", ["generation", "animation"])
def test_regenerate_parts_honours_the_scene_range_choice(source):
    """'Keep' leaves the scene's frame range alone, 'set' makes it the result's: from a generation's recipe and
    from sampled animation alike."""
    obj, pool, src = regeneration_source(source)
    scene = bpy.context.scene
    for choice in ("keep", "set"):
        actions.assign_action(obj, src, src.slots[0] if hasattr(src, "slots") else None)
        scene.frame_start, scene.frame_end = 7, 500
        new = run(shot_jobs.start_regenerate_parts(CONFIG, obj, "a person waves", ["head"], sampling=FAST,
                                                   scene_range=choice, pool=pool))
        assert metadata.shot_recipe(metadata.action_meta(new))["source"] == source
        want = (7, 500) if choice == "keep" else (1, int(round(new.frame_range[1])))
        assert (scene.frame_start, scene.frame_end) == want and new.frame_range[1] < 200, choice


@pytest.mark.parametrize("source", ["generation", "animation"])
def test_regenerate_parts_applies_to_the_scene_it_was_started_in(source):
    """The user switches scenes while the worker runs: the result's frame range (and fps) is the starting scene's,
    and the scene current at the end is left alone — from a generation's recipe and from sampled animation."""
    obj, pool, _ = regeneration_source(source)
    started = bpy.context.scene
    started.frame_start, started.frame_end = 7, 500
    other = bpy.data.scenes.new("Other")
    other.render.fps, other.frame_start, other.frame_end = 30, 3, 33
    job = shot_jobs.start_regenerate_parts(CONFIG, obj, "a person waves", ["head"], sampling=FAST, pool=pool)
    with bpy.context.temp_override(scene=other):
        new = run(job)
    assert (started.frame_start, started.frame_end) == (1, int(round(new.frame_range[1])))
    assert (other.frame_start, other.frame_end) == (3, 33)
    assert new.frame_range[1] <= 80  # keyed at the starting scene's 20 fps (at 30 fps: past 110)
