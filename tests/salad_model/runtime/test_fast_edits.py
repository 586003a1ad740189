"""Edits of fast-mode generations (issue #18): the source an edit starts from is the fast motion the user saw
(guidance on the first steps only, as generated), never a regeneration with guidance on every step."""

import numpy as np
import pytest
import torch

from salad_model.runtime import requests as R
from salad_model.runtime.checkpoints import random_bundle
from salad_model.runtime.editing import Reweight, sample_edit
from salad_model.runtime.pipeline import SaladPipeline
from salad_model.serving.worker import RequestError, check_fields

PROMPT = "a person walks forward"
SAME = 1e-5  # the same sampling in a batch of a different size: float reassociation only (measured ≤ 1e-6 m)


@pytest.fixture(scope="module")
def pipe():
    return SaladPipeline(random_bundle("tiny"), device="cpu")


@pytest.fixture
def fast_motion(pipe):
    pipe.clear_cache()
    return pipe.generate(PROMPT, frames=40, seed=7, fast=True)


@pytest.mark.parametrize("edit", [dict(word="walks", scale=2.0),
                                  dict(edit_prompt="a person runs forward"),
                                  dict(mirror="all", mirror_method="attention")])
def test_the_source_of_a_fast_edit_is_the_fast_generation(pipe, fast_motion, edit):
    out, src = pipe.edit(PROMPT, frames=40, seed=7, fast=True, return_source=True, **edit)
    assert np.abs(src.joints - fast_motion.joints).max() <= SAME
    p = R.FAST_PRESET
    assert (out.meta["steps"], out.meta["scheduler"], out.meta["guided_steps"]) == (
        p["steps"], p["scheduler"], p["guided_steps"])
    assert src.meta["guided_steps"] == p["guided_steps"]
    # the old behaviour (guidance on every step of the same sampler) is a different motion
    full = pipe.generate(PROMPT, frames=40, seed=7, steps=p["steps"], scheduler=p["scheduler"])
    assert np.abs(full.joints - fast_motion.joints).max() > 100 * SAME


def test_guided_steps_spelled_out_equal_the_fast_preset(pipe, fast_motion):
    p = R.FAST_PRESET
    a = pipe.edit(PROMPT, frames=40, seed=7, fast=True, word="walks", scale=2.0)
    pipe.clear_cache()
    b = pipe.edit(PROMPT, frames=40, seed=7, steps=p["steps"], scheduler=p["scheduler"],
                  guided_steps=p["guided_steps"], word="walks", scale=2.0)
    assert np.abs(a.joints - b.joints).max() <= SAME


def test_geometric_mirror_of_a_fast_generation_mirrors_the_fast_motion(pipe, fast_motion):
    out, src = pipe.edit(PROMPT, frames=40, seed=7, fast=True, mirror="all", return_source=True)
    assert np.abs(src.joints - fast_motion.joints).max() <= SAME
    assert np.abs(out.joints - pipe.mirror_motion(fast_motion).joints).max() <= SAME


def test_a_fast_and_a_fully_guided_source_are_different_sources(pipe):
    a = pipe._source_key(PROMPT, 1, 40, 4.0, 6, "dpm++", 4)
    b = pipe._source_key(PROMPT, 1, 40, 4.0, 6, "dpm++")
    assert a != b
    assert pipe._source_key(PROMPT, 1, 40, 4.0, 6, "dpm++", 6) == b  # guidance on every step = plain CFG


def test_recorded_source_maps_are_reused_by_the_next_fast_edit(pipe, fast_motion):
    first = pipe.edit(PROMPT, frames=40, seed=7, fast=True, word="walks", scale=2.0)
    assert pipe._maps_cache is not None and pipe._maps_cache.key[-1] == R.FAST_PRESET["guided_steps"]
    again = pipe.edit(PROMPT, frames=40, seed=7, fast=True, word="walks", scale=2.0)  # source rows skipped
    assert np.abs(again.joints - first.joints).max() <= SAME


@pytest.mark.parametrize(("edit_guided_steps", "expected"), [
    (None, [4, 4, 4, 4, 3, 3]),  # [src_u, src_c, edit_u, edit_c], then [src_c, edit_u, edit_c] (the default)
    (4, [4, 4, 4, 4, 2, 2]),  # then [src_c, edit_c]
])
def test_sample_edit_drops_the_source_unconditional_row_after_the_guided_steps(pipe, edit_guided_steps, expected):
    den = pipe.denoiser
    ctx = pipe.text_context([PROMPT])
    batches = []
    hook = den.register_forward_pre_hook(lambda m, args: batches.append(args[0].shape[0]))
    try:
        with torch.inference_mode():
            sample_edit(den, torch.randn(1, 10, 7, den.config.vae_dim), ctx, ctx, pipe._null(1),
                        Reweight([2], 2.0), 4.0, steps=6, scheduler="dpm++", guided_steps=4,
                        edit_guided_steps=edit_guided_steps)
    finally:
        hook.remove()
    assert batches == expected


def test_worker_edit_takes_fast_and_guided_steps():
    req = {"op": "edit", "source_prompt": PROMPT, "guided_steps": 4, "steps": 6, "scheduler": "dpm++"}
    assert check_fields(req)["guided_steps"] == 4
    assert check_fields({"op": "edit", "source_prompt": PROMPT, "fast": True})["fast"] is True
    with pytest.raises(RequestError, match="guided_steps"):
        check_fields({**req, "guided_steps": -1})
