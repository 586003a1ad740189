"""salad_blender.metadata, without Blender (a dict stands in for an Action's custom properties)."""

import json

import pytest

from salad_blender import metadata
from salad_blender.inputs import JobError


class FakeAction(dict):
    """What metadata reads of an Action: keys(), [key] and a name."""

    name = "SALAD: a person walks"


def test_one_writer_all_fields_and_round_trip():
    props = metadata.make_metadata(prompt="a person walks", seed=2**40, frames=80, model="demo", guidance=2.5,
                                   steps=10, edits=[{"word": "walks", "scale": 2.0}], scheduler="dpm++",
                                   model_name="tiny", rig={"pelvis": "Hips"}, pin_feet=False, parent="SALAD: x")
    assert props["salad_seed"] == str(2**40)  # beyond int32: a string (ID property ints are 32-bit)
    assert json.loads(props["salad_rig"]) == {"pelvis": "Hips"} and props["salad_pin_feet"] is False
    assert props["salad_scheduler"] == "dpm++" and props["salad_parent"] == "SALAD: x"
    assert "salad_source" not in props and "salad_to_metres" not in props  # left out when not given
    meta = metadata.action_meta(FakeAction(props))
    assert meta["salad_seed"] == 2**40 and meta["salad_edits"] == [{"word": "walks", "scale": 2.0}]
    assert metadata.meta_rig(meta) == {"pelvis": "Hips"}
    assert metadata.regenerate_fields(meta) == {"seed": 2**40, "frames": 80, "guidance": 2.5, "steps": 10,
                                                "scheduler": "dpm++"}


def test_current_prompt_is_the_last_edit_prompt():
    meta = {"salad_prompt": "a person walks", "salad_edits": [{"edit_prompt": "a person runs"},
                                                             {"word": "runs", "scale": 2.0, "why": "re-weight"}]}
    assert metadata.current_prompt(meta) == "a person runs" and metadata.last_why(meta) == "re-weight"
    assert metadata.current_prompt({"salad_prompt": "a person walks"}) == "a person walks"


def test_not_salad_and_inversion_actions_are_refused():
    with pytest.raises(JobError, match="not made by SALAD"):
        metadata.action_meta(FakeAction(other=1))
    assert not metadata.is_salad_action(None) and not metadata.is_salad_action(FakeAction())
    meta = metadata.make_metadata(prompt="p", seed=0, frames=40, source="inversion", to_metres=0.5)
    with pytest.raises(JobError, match="editing real animation"):
        metadata.refuse_inversion("x", meta)
    metadata.refuse_inversion("x", metadata.make_metadata(prompt="p", seed=0, frames=40))


def test_action_name_fits_blender_id_names():
    assert metadata.action_name("  a   person walks ") == "SALAD: a person walks"
    long = metadata.action_name("走" * 50)
    assert len(long.encode("utf-8")) <= 63 - 4 and long.endswith("...")  # room for ".001"
