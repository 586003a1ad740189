"""The worker's request field checks (``check_fields``), in process.

test_worker.py drives the same checks through a real worker process; these run in microseconds, so the
mutation run (tools/mutation.py) can afford them for every mutant of the validation code.
"""

import pytest

from salad_model.serving import protocol as P
from salad_model.serving.worker import FIELDS, RequestError, check_fields

ARRAY = {"dtype": "float32", "shape": [1], "data": "AAAAAA=="}
GOOD = {"str": "x", "int": 3, "num": 2.5, "bool": False, "array": ARRAY}
# per kind: wrong values that a sloppy check (bool as int, str as number, dict as array) would let through
BAD = {
    "str": [3, b"x", ["x"]],
    "int": [True, 2.0, "3"],
    "num": [False, "2", [1.0]],
    "bool": [0, 1, "true"],
    "array": [{"dtype": "float32", "shape": [1]}, [1.0], "AAAA"],
}


def rejected(msg: dict) -> str:
    with pytest.raises(RequestError) as info:
        check_fields(msg)
    assert info.value.code == P.INVALID_INPUT
    return str(info.value)


@pytest.mark.parametrize("op", sorted(FIELDS))
def test_every_declared_field_accepts_its_kind_and_rejects_others(op):
    spec = FIELDS[op]
    good = {k: GOOD.get(kind, "anything") for k, kind in spec.items()}
    if "frames" in good and "seconds" in good:
        del good["seconds"]
    assert check_fields({"id": 1, "op": op, **good}) == good  # id and op are not parameters
    for k, kind in spec.items():
        for bad in BAD.get(kind, []):
            text = rejected({"op": op, **good, k: bad})
            assert repr(k) in text and repr(bad) in text


def test_integers_accept_ints_and_numbers_accept_both():
    assert check_fields({"op": "generate", "frames": 40, "guidance": 3})["guidance"] == 3
    assert check_fields({"op": "generate", "seconds": 2, "steps": 10}) == {"seconds": 2, "steps": 10}
    assert "an integer" in rejected({"op": "generate", "steps": 10.0})
    assert "a number" in rejected({"op": "generate", "guidance": True})
    assert "true or false" in rejected({"op": "generate", "record_maps": 1})
    assert "a string" in rejected({"op": "generate", "prompt": 1})
    assert "encoded array" in rejected({"op": "edit_real", "joints": [[0.0]]})


def test_unknown_fields_are_named_with_the_allowed_ones():
    text = rejected({"op": "load", "model": "demo", "modle": "x", "devise": "cpu"})
    assert "unknown field(s) for 'load': devise, modle" in text
    assert "(allowed: device, model, reload, threads)" in text
    assert "(allowed: none)" in rejected({"op": "shutdown", "now": True})


def test_none_means_absent_and_any_accepts_everything():
    assert check_fields({"op": "generate", "prompt": None, "frames": 40}) == {"frames": 40}
    assert check_fields({"op": "cancel", "target": [1, "x"]}) == {"target": [1, "x"]}
    assert check_fields({"op": "shutdown"}) == {}
    # an absent (None) field does not end the checks of the fields after it
    assert "'frames' must be an integer" in rejected({"op": "generate", "prompt": None, "frames": "40"})


@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1])
def test_seed_range_inclusive_bounds(seed):
    assert check_fields({"op": "generate", "seed": seed}) == {"seed": seed}


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64])
def test_seed_out_of_range(seed):
    assert f"seed must be within 0 … 2^63−1, got {seed}" in rejected({"op": "generate", "seed": seed})


def test_length_as_frames_or_seconds_not_both():
    assert "not both" in rejected({"op": "attention", "frames": 40, "seconds": 2.0})
    assert check_fields({"op": "attention", "frames": 40, "seconds": None}) == {"frames": 40}
    assert check_fields({"op": "attention", "seconds": 2.0}) == {"seconds": 2.0}
