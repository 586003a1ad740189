"""The worker's last check on a result: NaN and inf are told apart, with how much of the motion they hold."""

import math

import numpy as np
import pytest

from salad_model.serving import protocol as P
from salad_model.serving.errors import RequestError, check_finite


def _message(data) -> str:
    with pytest.raises(RequestError) as e:
        check_finite(data)
    assert e.value.code == P.MODEL_ERROR
    return e.value.message


def test_nan_everywhere_reads_as_all_of_the_motion():
    joints = np.full((40, 22, 3), np.nan, np.float32)
    msg = _message({"joints": joints})
    assert "2640 NaN values of 2640" in msg and "infinite" not in msg
    assert "in 40 of 40 frames (first 0, last 39)" in msg and "22 of 22 joints" in msg
    assert "result.joints" in msg


def test_inf_in_a_few_frames_says_which_and_is_not_called_nan():
    joints = np.zeros((40, 22, 3), np.float32)
    joints[37, 0, 1] = np.inf
    joints[39, 5, 2] = -np.inf
    msg = _message({"joints": joints})
    assert "2 infinite values of 2640" in msg and "NaN" not in msg
    assert "in 2 of 40 frames (first 37, last 39), 2 of 22 joints" in msg


def test_both_kinds_are_counted_separately_in_a_feature_array():
    feats = np.zeros((8, 263))
    feats[2, 10] = np.nan
    feats[5, :3] = np.inf
    msg = _message({"features": feats})
    assert "1 NaN and 3 infinite values of 2104 in 2 of 8 frames (first 2, last 5)" in msg
    assert "joints" not in msg


def test_a_non_finite_number_says_which_kind():
    assert "produced NaN (result.meta.x)" in _message({"meta": {"x": math.nan}})
    assert "produced an infinite number (result[1])" in _message([0.0, -math.inf])


def test_finite_results_and_integer_arrays_pass():
    check_finite({"joints": np.zeros((4, 22, 3)), "n": np.arange(3), "meta": {"x": 1.5, "k": [1, 2]}})
