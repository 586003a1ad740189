"""The add-on's Fast toggle: the scene setting reaches the worker as ``"fast": true`` and the new Action
records what the worker ran (the preset's steps and sampler), so an edit regenerates with those."""

import sys

import pytest
from needs import require_module

bpy = require_module("bpy")

from salad_blender import actions, jobs, settings  # noqa: E402
from salad_model.runtime.requests import FAST_PRESET  # noqa: E402


@pytest.fixture
def config(scene, tiny_model_dir):
    """The checkout enabled as an add-on (the scene gets its settings), and a worker on the tiny model."""
    import addon_utils

    bpy.context.preferences.use_preferences_save = False
    addon_utils.enable("salad_blender", default_set=True)
    yield jobs.WorkerConfig(python=sys.executable, model=str(tiny_model_dir), device="cpu", threads=1)
    addon_utils.disable("salad_blender", default_set=True)


def test_fast_setting_reaches_the_worker_and_the_metadata(config):
    s = settings.settings(bpy.context)
    s.steps, s.sampler, s.fast, s.seconds = 30, "ddim", True, 2.0
    sampling = settings.sampling_from(s)
    assert sampling.fast and "fast" not in sampling.fields()  # other ops (edits, shots) never get it
    job = jobs.start_generate(config, "a person walks forward", sampling, jobs.Target(pin_feet=False))
    assert job.wait(120) and job.state == "done", job.message
    meta = actions.read_metadata(job.output)
    assert meta["salad_steps"] == FAST_PRESET["steps"]
    assert job.output["salad_scheduler"] == FAST_PRESET["scheduler"]
    s.fast = False
    slow = jobs.start_generate(config, "a person walks forward", settings.sampling_from(s),
                               jobs.Target(pin_feet=False))
    assert slow.wait(120) and slow.state == "done", slow.message
    assert actions.read_metadata(slow.output)["salad_steps"] == 30


def test_an_edit_of_a_fast_action_starts_from_the_fast_motion(config):
    """The action records guided_steps; its edits (and their edits) send them back, so the worker regenerates
    the source exactly as shown; a mirror of it (geometric: the source alone, mirrored) proves it."""
    import numpy as np

    s = settings.settings(bpy.context)
    s.fast, s.seconds, s.seed = True, 2.0, 3
    job = jobs.start_generate(config, "a person walks forward", settings.sampling_from(s), jobs.Target(pin_feet=False))
    assert job.wait(120) and job.state == "done", job.message
    meta = actions.read_metadata(job.output)
    assert meta["salad_guided_steps"] == FAST_PRESET["guided_steps"]
    assert jobs.regenerate_fields(meta)["guided_steps"] == FAST_PRESET["guided_steps"]
    arm = bpy.data.objects["SALAD Body"]
    edit = jobs.start_edit(config, arm, word="walks", scale=2.0)
    assert edit.wait(120) and edit.state == "done", edit.message
    assert actions.read_metadata(edit.output)["salad_guided_steps"] == FAST_PRESET["guided_steps"]
    # the worker's own check: the source it regenerates for the edit is the fast generation, joint for joint
    from salad_model.runtime.pipeline import SaladPipeline

    pipe = SaladPipeline.from_pretrained(config.model, device="cpu")
    fast = pipe.generate("a person walks forward", frames=meta["salad_frames"], seed=3, fast=True)
    _, src = pipe.edit("a person walks forward", return_source=True, word="walks", scale=2.0,
                       **jobs.regenerate_fields(meta))
    assert np.abs(src.joints - fast.joints).max() <= 1e-5
