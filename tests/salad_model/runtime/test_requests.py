"""The one request definition (salad_model/runtime/requests.py) and the add-on's copy of it."""

from __future__ import annotations

import numpy as np
import pytest

from salad_model.runtime import requests as R
from salad_model.runtime.requests import EditSpec, InputError, check_value
from salad_model.serving import protocol as worker_protocol

COPIED = ("MAX_LINE_BYTES", "MAX_PROMPT_BYTES", "SEED_MIN", "SEED_MAX", "STEPS_MIN", "STEPS_MAX", "GUIDANCE_MIN",
          "GUIDANCE_MAX", "REWEIGHT_MIN", "REWEIGHT_MAX", "PROPORTION_MIN", "PROPORTION_MAX", "SCHEDULERS",
          "EDIT_MODES", "MIRROR_SIDES", "MIRROR_METHODS", "FOV_MIN", "FOV_MAX", "VIDEO_SUFFIXES")


def test_addon_copy_of_the_request_constants_agrees():
    from salad_blender import protocol as addon

    for name in COPIED:
        assert getattr(addon, name) == getattr(R, name), name
    assert addon.WORKER_CODES == worker_protocol.ERROR_CODES


def test_one_name_per_concept():
    from salad_model.runtime import pipeline, sampling

    assert sampling.SCHEDULER_KINDS is R.SCHEDULERS
    assert pipeline.MIRROR_METHODS is R.MIRROR_METHODS and pipeline.EDIT_MODES is R.EDIT_MODES
    assert pipeline.InputError is R.InputError
    from salad_model.motion.motion_process import MIRROR_REGIONS

    assert set(MIRROR_REGIONS) == set(R.MIRROR_SIDES)


@pytest.mark.parametrize("name,value", [
    ("seed", True), ("seed", "7"), ("seed", 1.7), ("seed", -1), ("seed", 2**32), ("seed", 10**400),
    ("steps", True), ("steps", 0), ("steps", 1001), ("guidance", float("nan")), ("guidance", float("inf")),
    ("guidance", 10**400), ("guidance", -1e-9), ("seconds", 0), ("seconds", -0.0), ("frames", 4.0),
    ("scale", R.REWEIGHT_MAX + 1e-6), ("mirror", "left"), ("scheduler", "DDIM"), ("inject_temporal", 1),
    ("prompt", "x" * (R.MAX_PROMPT_BYTES + 1)), ("prompt", "é" * (R.MAX_PROMPT_BYTES // 2 + 1)),
    ("target", []), ("target", {}), ("target", True), ("target", ""), ("joints", [[0.0]]),
])
def test_refused_values(name, value):
    with pytest.raises(InputError, match=repr(name)):
        check_value(name, value)


@pytest.mark.parametrize("name,value,expected", [
    ("seed", 0, 0), ("seed", 2**32 - 1, 2**32 - 1), ("seed", np.int64(5), 5), ("guidance", 0, 0.0),
    ("guidance", 30, 30.0), ("seconds", 4, 4.0), ("scale", -2, -2.0), ("steps", 1000, 1000),
    ("prompt", "é" * (R.MAX_PROMPT_BYTES // 2), "é" * (R.MAX_PROMPT_BYTES // 2)), ("target", 0, 0),
])
def test_accepted_values(name, value, expected):
    got = check_value(name, value)
    assert got == expected and type(got) is type(expected)


def test_frames_and_seconds_and_unknown_fields():
    with pytest.raises(InputError, match="not both"):
        R.check_fields({"frames": 40, "seconds": 2}, R.SAMPLING_KEYS)
    with pytest.raises(InputError, match="unknown field"):
        R.check_fields({"sed": 1}, R.SAMPLING_KEYS)
    assert R.check_fields({"frames": 40, "seconds": None}, R.SAMPLING_KEYS) == {"frames": 40}


@pytest.mark.parametrize("text", ["", "   ", "\u200b", "\u200b\u200c\u200d\u2060\ufeff", "\x00\x07", "\n\t",
                                  "\u3000\u00a0"])
def test_invisible_prompts(text):
    with pytest.raises(InputError, match="empty"):
        R.check_prompt_text(text)


def test_visible_prompts_are_stripped_only_at_the_ends():
    assert R.check_prompt_text("  a person\u200b walks \n") == "a person\u200b walks"
    assert R.check_prompt_text("走る人") == "走る人"


def test_edit_spec_kinds_and_checks():
    assert EditSpec.create(mirror="upper").kind == "mirror"
    assert EditSpec.create(mirror="upper").geometric_mirror == "upper"
    assert EditSpec.create(mirror="upper", mirror_method="attention").geometric_mirror is None
    assert EditSpec.create(word="walks", scale=2).kind == "reweight"
    assert EditSpec.create(edit_prompt="a person runs").kind == "prompt"
    assert EditSpec.create(mode="refine", edit_prompt="x").kind == "refine"
    with pytest.raises(InputError, match="scale"):
        EditSpec.create(word="walks")
    with pytest.raises(InputError, match="word"):
        EditSpec.create(mode="reweight", scale=2.0)
    with pytest.raises(InputError, match="'scale'"):
        EditSpec.create(word="walks", scale=5.0)
    with pytest.raises(InputError, match="unknown edit field"):
        EditSpec.create(scael=1.0)


def test_joint_checks():
    from salad_model.motion.motion_io import load_motion

    good = load_motion("tests/data/dataset-2_raise-up-left-hand_active_020.bvh")
    assert R.check_joints(good).shape == good.shape
    bad = {"zeros": np.zeros((40, 22, 3)), "huge": np.full((40, 22, 3), 1e30), "nan": good.copy(),
           "shape": good[:, :21], "object": np.array([[["x"] * 3] * 22] * 4, dtype=object),
           "collapsed frame": good.copy()}
    bad["nan"][3, 5, 1] = np.nan
    bad["collapsed frame"][7] = bad["collapsed frame"][7, :1]
    for name, j in bad.items():
        with pytest.raises(InputError):
            R.check_joints(j)
        assert name
