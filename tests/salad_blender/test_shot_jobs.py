"""salad_blender.shot_jobs end to end: the real worker's shot ops (subprocess) + the tiny random model + bpy.

The tiny model's motion is random, so what is checked is what holds for any model: one new Action per job
with the worker's lengths and recipe, the guarantees the worker gives reaching the scene (same inputs ⇒
same keys; a re-rolled segment leaves the keys before it unchanged; a continuation's source part stands
where the original did), nothing existing changed, and cancels and worker refusals leaving the scene as it
was. Placement to the millimetre and every bad input are in test_shot_jobs_scripted.py.
"""

import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_state import key_values, snapshot, world_heads  # noqa: E402
from test_shot_jobs_scripted import keyed_body  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, jobs, metadata, shot_jobs, smpl22  # noqa: E402
from salad_blender import shot_inputs as si  # noqa: E402

FAST = jobs.Sampling(seed=3, steps=3)
SEGS = [si.Segment("a person walks forward", 2.4), si.Segment("a person waves", 2.0), si.Segment("a person bows", 2.0)]


def done(job, timeout=180):
    job.wait(timeout=timeout)
    assert job.state == "done", job.message
    return job.output


def fresh_scene(fps=20):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    return scene


def keys_before(action, frame: float) -> np.ndarray:
    """The values of every key of ``action`` on scene frames before ``frame`` [channels, frames]."""
    keys = key_values(action)
    return np.array([[co[1] for co in keys[k] if co[0] < frame - 1e-6] for k in sorted(keys)])


def test_timeline_reproducible_and_reroll_keeps_the_prefix(config, pool):
    fresh_scene()
    target = jobs.Target(kind="new", pin_feet=False)
    shot = done(shot_jobs.start_compose(config, SEGS, FAST, target, pool=pool))
    meta = metadata.action_meta(shot)
    recipe = metadata.shot_recipe(meta)
    assert meta["salad_frames"] == 48 + 40 + 40 and meta["salad_source"] == "shot"
    segs = recipe["segments"]
    assert [(s["prompt"], s["start"], s["end"]) for s in segs] == [
        ("a person walks forward", 0, 48), ("a person waves", 48, 88), ("a person bows", 88, 128)]
    assert all(isinstance(s["seed"], int) for s in segs)  # the seeds the worker derived, recorded

    body = bpy.data.objects["SALAD Body"]
    again_job = shot_jobs.start_compose(config, si.recipe_segments(recipe), jobs.Sampling(seed=99, steps=3),
                                        jobs.Target(kind="armature", armature=body.name, rig="smpl22",
                                                    pin_feet=False), pool=pool)
    again = done(again_job)
    assert key_values(again) == key_values(shot)  # the recipe replays exactly, whatever the shot seed

    shot_keys = key_values(shot)
    job = shot_jobs.start_reroll_segment(config, body, 2, segs[2]["seed"] + 1, action=shot, pool=pool)
    rolled = done(job)
    assert np.array_equal(job.result["joints"][:88], again_job.result["joints"][:88])  # the worker's guarantee
    assert key_values(shot) == shot_keys and rolled != shot
    third = 1 + segs[2]["start"]  # scene frame where segment 3 starts (20 fps, frame 1 = model frame 0)
    before, after = keys_before(shot, third), keys_before(rolled, third)
    # ... reaches the keys: the re-roll keeps the shot's retarget scale (its median leg length is recorded)
    assert before.shape == after.shape and np.abs(before - after).max() < 1e-5
    assert metadata.shot_recipe(metadata.action_meta(rolled))["leg_length"] == recipe["leg_length"]
    assert key_values(rolled) != shot_keys  # and the segment itself did change


def test_continue_real_motion_keeps_the_source(config, pool):
    walk = synthetic_walk(96)
    obj = keyed_body({"Walk": walk}, location=(1.0, -2.0, 0.0), angle=0.6)
    src = obj.animation_data.action
    names = list(smpl22.JOINT_NAMES)
    was = {f: world_heads(obj, names, f) for f in (1, 30, 50)}
    src_keys = key_values(src)
    new = done(shot_jobs.start_continue(config, obj, "a person runs", 2.0, sampling=FAST, pin_feet=False, pool=pool))
    meta = metadata.action_meta(new)
    assert meta["salad_frames"] == 96 + 40 and key_values(src) == src_keys and obj.animation_data.action == new
    # before its last 1 s (the hand-over) the source comes back as itself, where it stood
    for f, heads in was.items():
        assert np.abs(world_heads(obj, names, f) - heads).max() < 0.02, f


def test_inbetween_and_parts_of_real_and_generated_motion(config, pool):
    obj = keyed_body({"A": synthetic_walk(96), "B": synthetic_walk(60, turn_deg=-40.0)})
    a, b = bpy.data.actions["A"], bpy.data.actions["B"]
    keys = key_values(a), key_values(b)
    mid = done(shot_jobs.start_inbetween(config, obj, a, b, "a person turns around", 1.0, sampling=FAST,
                                         pin_feet=False, pool=pool))
    assert metadata.action_meta(mid)["salad_frames"] == 96 + 20 + 60 and (key_values(a), key_values(b)) == keys

    actions.assign_action(obj, a, a.slots[0] if hasattr(a, "slots") else None)
    parts = done(shot_jobs.start_regenerate_parts(config, obj, "a person waves", ["arms"], sampling=FAST,
                                                  pin_feet=False, pool=pool))
    meta = metadata.action_meta(parts)
    assert meta["salad_frames"] == 96 and metadata.shot_recipe(meta)["source"] == "animation"

    gen = done(jobs.start_generate(config, "a person walks", jobs.Sampling(seconds=2.4, seed=1, steps=3),
                                   jobs.Target(kind="armature", armature=obj.name, pin_feet=False), pool=pool))
    regen = done(shot_jobs.start_regenerate_parts(config, obj, "a person waves", ["upper"], pool=pool))
    meta = metadata.action_meta(regen)
    assert metadata.shot_recipe(meta)["source"] == "generation" and meta["salad_parent"] == gen.name
    assert meta["salad_frames"] == 48


def test_cancel_and_worker_refusal_leave_the_scene(config, pool, tiny_model_dir):
    obj = keyed_body({"A": synthetic_walk(96)})
    before = snapshot()
    slow = jobs.WorkerConfig(config.python, config.model, config.device, config.threads,
                             env=(("SALAD_WORKER_DEBUG_STEP_DELAY", "0.15"),))
    slow_pool = jobs.WorkerPool()
    try:
        job = shot_jobs.start_compose(slow, SEGS, jobs.Sampling(steps=20), jobs.Target(kind="new"), pool=slow_pool)
        while job.step < 2 and not job.finished:
            job.poll()
            time.sleep(0.02)
        assert job.steps >= 3 * 20  # one running total over all windows
        job.cancel()
        assert job.poll() and job.state == "cancelled" and snapshot() == before
    finally:
        slow_pool.close()
    a = bpy.data.actions["A"]
    job = shot_jobs.start_inbetween(config, obj, a, a, "a person turns", 9.5, sampling=FAST, pool=pool)
    job.wait(timeout=120)
    assert job.state == "failed" and "in-between gap" in job.message and snapshot() == before


def test_regenerated_parts_of_a_real_action_keep_the_sources_bones(config, pool):
    """Regression (issue 13 item 4, session 12): the kept parts of a real action were the VAE's reconstruction of
    it (2.7 cm off root-aligned on captured walks with the demo model; far more with this random one). Now the
    result's kept bones stand where the source action's keys put them, in world space; the arms move anew."""
    obj = keyed_body({"Walk": synthetic_walk(96)}, location=(1.0, -2.0, 0.0), angle=0.6)
    src = obj.animation_data.action
    kept = [n for n in smpl22.JOINT_NAMES if n.split("_")[-1] not in ("shoulder", "elbow", "wrist")]
    arms = ["left_elbow", "right_elbow", "left_wrist", "right_wrist"]
    frames = (1, 20, 48, 70, 96)
    was = {f: (world_heads(obj, kept, f), world_heads(obj, arms, f)) for f in frames}
    src_keys = key_values(src)
    new = done(shot_jobs.start_regenerate_parts(config, obj, "a person waves", ["arms"], sampling=FAST,
                                                pin_feet=False, pool=pool))
    assert obj.animation_data.action == new and key_values(src) == src_keys
    moved = 0.0
    for f, (heads, hands) in was.items():
        assert np.abs(world_heads(obj, kept, f) - heads).max() < 2e-3, f  # metres
        moved = max(moved, float(np.abs(world_heads(obj, arms, f) - hands).max()))
    assert moved > 0.05  # the regenerated arms are new motion
