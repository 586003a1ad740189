"""Opt-in CPU bfloat16 autocast (SaladPipeline.use_cpu_bf16): plain generations only, close to fp32 but not
equal to it (it really runs in bf16), float32 results, and off by default (golden parity is fp32's)."""

import numpy as np
import pytest
import torch

from salad_model.runtime.checkpoints import random_bundle
from salad_model.runtime.pipeline import SaladPipeline

PROMPT = "a person walks forward"


@pytest.fixture
def pipe():
    return SaladPipeline(random_bundle("tiny"), device="cpu")


def test_bf16_generation_is_close_to_fp32_but_not_fp32(pipe):
    assert pipe.cpu_autocast is None  # default: fp32
    ref = pipe.generate(PROMPT, frames=40, seed=1, steps=10)
    pipe.use_cpu_bf16()
    bf = pipe.generate(PROMPT, frames=40, seed=1, steps=10)
    assert bf.joints.dtype == np.float32 and np.isfinite(bf.joints).all()
    assert bf.latent.dtype == torch.float32
    err = np.linalg.norm(bf.joints - ref.joints, axis=-1).mean()
    other = np.linalg.norm(pipe.generate(PROMPT, frames=40, seed=2, steps=10).joints - ref.joints, axis=-1).mean()
    assert 0 < err < 0.5 * other  # bf16 rounding moves the clip, far less than another seed does
    pipe.use_cpu_bf16(False)
    assert np.array_equal(pipe.generate(PROMPT, frames=40, seed=1, steps=10).joints, ref.joints)


def test_edits_stay_fp32_with_bf16_on(pipe):
    ref = pipe.edit(PROMPT, frames=40, seed=1, steps=6, word="walks", scale=2.0)
    pipe.clear_cache()
    pipe.use_cpu_bf16()
    again = pipe.edit(PROMPT, frames=40, seed=1, steps=6, word="walks", scale=2.0)
    assert np.abs(again.joints - ref.joints).max() <= 1e-5
