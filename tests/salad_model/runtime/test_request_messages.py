"""What the user reads when a request is refused (runtime/requests.py), word for word.

Every entry point (CLI, Python API, worker, add-on) shows these messages as they are, so they are part of
the contract: the field, what it must be, and the offending value (bounded: a 10 MB string or a 400-digit
integer must not become a 10 MB error). Also the helpers no other test reaches: ``check_sampling``,
``check_length_args``, ``check_seed`` and the "any" fields (segments, parts) that are checked elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from salad_model.runtime import requests as R
from salad_model.runtime.requests import EditSpec, Field, InputError, check_value


@pytest.mark.parametrize("name,value,message", [
    ("target", [], "'target' must be a request id (string or integer), got []"),
    ("prompt", 5, "'prompt' must be a string, got 5"),
    ("prompt", "x" * 2049, "'prompt' is too long: at most 2048 bytes (UTF-8)"),
    ("scheduler", "DDIM", "'scheduler' must be one of ddim, dpm++, got 'DDIM'"),
    ("inject_temporal", 1, "'inject_temporal' must be true or false, got 1"),
    ("joints", [1.0], "'joints' must be an encoded array {dtype, shape, data}"),
    ("seed", "7", "'seed' must be an integer, got '7'"),
    ("guidance", "7", "'guidance' must be a number, got '7'"),
    ("guidance", float("nan"), "'guidance' must be a finite number, got nan"),
    ("seed", -1, "'seed' must be within 0 … 4294967295, got -1"),
    ("guidance", 31.0, "'guidance' must be within 0 … 30, got 31.0"),
    ("scale", -2.5, "'scale' must be within -2 … 3, got -2.5"),
    ("seconds", 0, "'seconds' must be a positive number, at most 3600, got 0"),
    ("seconds", 3600.5, "'seconds' must be a positive number, at most 3600, got 3600.5"),
    ("seed", 10**400, "'seed' must be within 0 … 4294967295, got an integer of 401 digits"),
    ("prompt", ["x"] * 20, "'prompt' must be a string, got a list of 20 items"),
])
def test_refusals_say_which_field_what_it_must_be_and_what_it_got(name, value, message):
    with pytest.raises(InputError) as err:
        check_value(name, value)
    assert str(err.value) == message


def test_ranges_print_float_bounds_compactly_and_integers_exactly():
    with pytest.raises(InputError, match=r"^'x' must be within 0 … 30, got 31$"):
        check_value("x", 31, Field("num", 0, 30.0))  # one float bound is enough for the compact form
    with pytest.raises(InputError, match=r"^'x' must be within 1 … 12345678901, got 0$"):
        check_value("x", 0, Field("int", 1, 12345678901))
    assert check_value("x", 30, Field("num", 0, 30.0)) == 30.0


def test_any_fields_pass_through_unchecked():
    segments = [{"prompt": "a person walks", "seconds": 2}]
    assert check_value("segments", segments) is segments
    assert check_value("parts", None) is None


def test_unknown_fields_are_named_and_the_allowed_ones_listed():
    with pytest.raises(InputError) as err:
        R.check_fields({"sed": 1, "stpes": 2, "seed": 3}, R.SAMPLING_KEYS)
    assert str(err.value) == ("unknown field(s): 'sed', 'stpes' "
                              "(allowed: frames, guidance, scheduler, seconds, seed, steps)")
    with pytest.raises(InputError) as err:
        R.check_fields({"k" * 50: 1}, ())
    assert str(err.value) == f"unknown field(s): '{'k' * 38}… (allowed: none)"  # a key is cut at 40 characters
    with pytest.raises(InputError) as err:
        R.check_fields({"frames": 40, "seconds": 2.0}, R.SAMPLING_KEYS)
    assert str(err.value) == "give the length as frames or as seconds, not both"


def test_short_repr_bounds_what_it_prints():
    assert R.short_repr(10**400) == "an integer of 401 digits"
    assert R.short_repr(-(10**30)) == "an integer of 31 digits"
    assert R.short_repr(10**30 - 1) == "9" * 30  # below the cut: printed
    assert R.short_repr(True) == "True"
    assert R.short_repr(list(range(9))) == "a list of 9 items"
    assert R.short_repr(dict.fromkeys(range(9))) == "a dict of 9 items"
    assert R.short_repr(list(range(8))) == "[0, 1, 2, 3, 4, 5, 6, 7]"
    assert R.short_repr("x" * 58) == repr("x" * 58)  # 60 characters: kept whole
    assert R.short_repr("x" * 59) == "'" + "x" * 58 + "…"  # 61: cut to 60 with an ellipsis
    assert R.short_repr("abcdef", limit=5) == "'abc…"
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    assert R.short_repr(nested) == "a deeply nested list"


def test_numbers_are_real_numbers_not_bools_or_strings():
    assert R.is_int(np.int32(3)) and R.is_int(10**400) and not R.is_int(np.True_) and not R.is_int(True)
    assert not R.is_int("3") and not R.is_int(3.0)
    assert R.is_number(np.float32(0.5)) and R.is_number(2) and not R.is_number(np.False_)
    assert not R.is_number("7") and not R.is_number(None) and not R.is_number(False)


def test_prompt_messages():
    with pytest.raises(InputError) as err:
        R.check_prompt_text(5)
    assert str(err.value) == "The prompt must be a string, got int."
    with pytest.raises(InputError) as err:
        R.check_prompt_text(None, "edit prompt")
    assert str(err.value) == "The edit prompt must be a string, got NoneType."
    assert R.check_prompt_text("x" * R.MAX_PROMPT_BYTES) == "x" * R.MAX_PROMPT_BYTES  # the limit itself is fine
    with pytest.raises(InputError) as err:
        R.check_prompt_text("é" * 1025)
    assert str(err.value) == "The prompt is too long: 2050 bytes, at most 2048 (UTF-8)."
    with pytest.raises(InputError) as err:
        R.check_prompt_text(" \u200b ", "source prompt")
    assert str(err.value) == "The source prompt is empty: describe the motion, e.g. 'a person walks forward'."


def test_sampling_length_and_seed_checks():
    assert R.check_sampling(0, 1, "dpm++") == (0.0, 1, "dpm++")
    g, s, k = R.check_sampling(np.float64(7.5), np.int64(50), "ddim")
    assert (g, s, k) == (7.5, 50, "ddim") and type(g) is float and type(s) is int
    with pytest.raises(InputError) as err:
        R.check_sampling(7.5, 0, "euler")  # the sampler is named first, whatever else is wrong
    assert str(err.value) == "unknown sampler 'euler'; choose one of ddim, dpm++"
    with pytest.raises(InputError, match=r"^'steps' must be within 1 … 1000, got 0$"):
        R.check_sampling(7.5, 0, "ddim")
    with pytest.raises(InputError, match=r"^'guidance' must be within 0 … 30, got 31$"):
        R.check_sampling(31, 10, "ddim")

    R.check_length_args(40, None)
    R.check_length_args(None, 2)
    R.check_length_args(np.int64(40), None)
    for frames, seconds, message in [
        (40, 2.0, "give the length as frames or as seconds, not both"),
        (None, None, "give the length in frames or seconds"),
        (40.0, None, "length must be a whole number of frames, got 40.0"),
        (True, None, "length must be a whole number of frames, got True"),
        (None, 0, "duration must be a positive number of seconds, got 0"),
        (None, -1.5, "duration must be a positive number of seconds, got -1.5"),
        (None, float("inf"), "duration must be a positive number of seconds, got inf"),
        (None, "2", "duration must be a positive number of seconds, got '2'"),
        (None, False, "duration must be a positive number of seconds, got False"),
    ]:
        with pytest.raises(InputError) as err:
            R.check_length_args(frames, seconds)
        assert str(err.value) == message, (frames, seconds)

    assert R.check_seed(np.uint32(7)) == 7 and type(R.check_seed(np.uint32(7))) is int
    with pytest.raises(InputError, match=r"^'seed' must be within 0 … 4294967295, got 4294967296$"):
        R.check_seed(2**32)


def test_edit_spec_messages_and_defaults():
    with pytest.raises(InputError) as err:
        EditSpec.create(scael=1.0, wrod="x")
    assert str(err.value) == "unknown edit field(s): scael, wrod"
    for word in (None, "   "):
        with pytest.raises(InputError) as err:
            EditSpec.create(mode="reweight", word=word, scale=2.0)
        assert str(err.value) == "re-weighting needs a word or phrase of the prompt"
    with pytest.raises(InputError) as err:
        EditSpec.create(word="walks")
    assert str(err.value) == "re-weighting needs a scale within -2 … 3"
    spec = EditSpec.create(edit_prompt="a person runs", src_proportion=None)
    assert (spec.mode, spec.mirror_method, spec.src_proportion, spec.swap_src_proportion) == (
        "auto", "geometric", 0.2, 0.2)
    assert EditSpec.create(mode="mirror").geometric_mirror == "all"  # no side given: the whole body
    assert EditSpec.create(mode="word_swap", edit_prompt="x").kind == "word_swap"
    assert EditSpec.create(edit_prompt="x").geometric_mirror is None


def _body(frames: int = 4, hips=((0.1, 0.9, 0.0), (-0.1, 0.9, 0.0)), shoulders=((0.1, 1.4, 0.0), (-0.1, 1.4, 0.0))):
    """A stick body [T, 22, 3] (Y up) whose only non-zero joints are the hips (1, 2) and shoulders (16, 17)."""
    a = np.zeros((frames, 22, 3))
    a[:, 1], a[:, 2] = hips
    a[:, 16], a[:, 17] = shoulders
    return a


def _refusal(joints) -> str:
    with pytest.raises(InputError) as err:
        R.check_joints(joints)
    return str(err.value)


def test_encoded_arrays_are_accepted_as_they_are():
    enc = {"dtype": "float32", "shape": [1, 22, 3], "data": "AAAA"}
    assert check_value("joints", enc) is enc
    for bad in ({"dtype": "float32", "shape": [1]}, {**enc, "extra": 1}, ["dtype", "shape", "data"]):
        with pytest.raises(InputError, match=r"^'joints' must be an encoded array \{dtype, shape, data\}$"):
            check_value("joints", bad)


def test_joint_refusals_name_the_problem():
    assert _refusal([[1.0, 2.0], [3.0]]).startswith("motion must be a numeric array [T, 22, 3]: ")
    assert _refusal(np.full((2, 22, 3), "x")) == "motion must be a numeric array [T, 22, 3], got dtype <U1"
    assert _refusal(np.zeros((40, 21, 3))) == "motion must be joints [T, 22, 3], got (40, 21, 3)"
    assert _refusal(np.zeros((0, 22, 3))) == "motion must have 1 … 100000 frames, got 0"
    assert _refusal(np.repeat(_body(1), 100_001, axis=0)) == "motion must have 1 … 100000 frames, got 100001"
    nan = _body()
    nan[2, 5, 0] = np.inf
    assert _refusal(nan) == "motion contains NaN or infinite values"
    far = _body()
    far[1, 7, 2] = -1000.001
    assert _refusal(far) == ("motion has coordinates beyond 1000 m; joints must be in metres "
                             "(is it in centimetres, or corrupt?)")
    collapsed = _body(5)
    collapsed[2:] = _body(3, hips=((0, 0.9, 0),) * 2, shoulders=((0, 1.4, 0),) * 2)
    assert _refusal(collapsed) == ("motion frame 2 is degenerate: hips and shoulders have no left-right extent, "
                                   "so the body has no facing direction")


def test_joint_limits_themselves_are_accepted():
    one = R.check_joints(_body(1).astype(np.float32))
    assert one.shape == (1, 22, 3) and one.dtype == np.float64
    assert R.check_joints(np.repeat(_body(1), 100_000, axis=0)).shape[0] == 100_000
    edge = _body()
    edge[:, 7, 0] = 1000.0  # exactly 1 km from the origin
    assert R.check_joints(edge)[0, 7, 0] == 1000.0
    assert R.check_joints(_body(hips=((1e-4, 0.9, 0), (0, 0.9, 0)), shoulders=((0, 1.4, 0),) * 2)).shape == (4, 22, 3)


@pytest.mark.parametrize("hips,shoulders,facing", [
    (((0.1, 0.9, 0), (-0.1, 0.9, 0)), ((0.1, 1.4, 0), (-0.1, 1.4, 0)), True),  # hips as wide as the shoulders
    (((0.1, 0.9, 0), (0.1, 0.9, 0)), ((0.2, 1.4, 0.1), (0, 1.4, 0.1)), True),  # only the shoulders have width
    (((0.1, 0.9, 0), (-0.1, 0.9, 0)), ((0.1, 1.4, 0), (0.1, 1.4, 0)), True),  # only the hips have width
    (((0, 0.9, 0), (0, 0.9, 0)), ((0, 1.4, 0), (0, 1.4, 0)), False),  # both collapsed
    (((0.1, 0.9, 0), (-0.1, 0.9, 0)), ((-0.1, 1.4, 0), (0.1, 1.4, 0)), False),  # twisted half a turn: cancel
    (((0, 0.8, 0), (0, 1.0, 0)), ((0, 1.3, 0), (0, 1.5, 0)), False),  # widths only along the up axis
])
def test_a_body_has_a_facing_when_hips_plus_shoulders_point_across(hips, shoulders, facing):
    joints = _body(hips=hips, shoulders=shoulders)
    joints[:, 3] = (0.05, 1.0, 0.0)  # other joints anywhere: only 1, 2, 16, 17 decide
    joints[:, 18] = (0.3, 1.2, 0.0)
    if facing:
        assert R.check_joints(joints).shape == (4, 22, 3)
    else:
        assert "is degenerate" in _refusal(joints)
    assert R.check_joints(joints[:, :21], num_joints=21).shape == (4, 21, 3)  # other skeletons: no such check


def test_fractional_and_short_durations_are_lengths_too():
    R.check_length_args(None, 2.5)
    R.check_length_args(None, 0.5)  # below one second: the pipeline decides whether the model can make it
    R.check_length_args(None, np.float32(3.25))


def test_the_first_degenerate_frame_is_named_even_after_a_frame_at_the_limit():
    joints = _body(3)
    joints[0] = _body(1, hips=((1e-4, 0.9, 0), (0, 0.9, 0)), shoulders=((0, 1.4, 0),) * 2)[0]  # exactly 1e-4
    joints[2] = _body(1, hips=((0, 0.9, 0),) * 2, shoulders=((0, 1.4, 0),) * 2)[0]
    assert _refusal(joints).startswith("motion frame 2 is degenerate")


def test_a_field_table_typo_is_a_programming_error_that_names_the_kind():
    with pytest.raises(AssertionError, match="unknown field kind 'integer'"):
        check_value("x", 1, Field("integer"))
