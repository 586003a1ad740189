"""salad_blender.inputs, without Blender: the checks a job's inputs pass before anything starts."""

import os
import sys

import pytest

from salad_blender import inputs
from salad_blender.inputs import JobError, Sampling


def test_bone_map_json_both_directions_and_errors():
    assert inputs.parse_bone_map('{"pelvis": "Hips", "spine1": "Spine"}') == {"pelvis": "Hips", "spine1": "Spine"}
    assert inputs.parse_bone_map('{"Hips": "pelvis", "Spine": "spine1"}') == {"pelvis": "Hips", "spine1": "Spine"}
    with pytest.raises(JobError, match="not valid JSON"):
        inputs.parse_bone_map("{pelvis: Hips}")
    with pytest.raises(JobError, match="JSON object of names"):
        inputs.parse_bone_map('["pelvis"]')


def test_interpreter_and_model_folder_checks(tmp_path):
    assert os.path.basename(inputs.resolve_python(sys.executable)).startswith("python")
    with pytest.raises(JobError, match="No Python interpreter"):
        inputs.resolve_python("  ")
    with pytest.raises(JobError, match="does not exist"):
        inputs.resolve_python(tmp_path / "nope")
    script = tmp_path / "python"
    script.write_text("")
    script.chmod(0o644)
    with pytest.raises(JobError, match="not executable"):
        inputs.resolve_python(script)
    assert inputs.check_model("") == inputs.check_model(" demo ") == "demo"
    assert inputs.check_model(str(tmp_path)) == str(tmp_path)
    with pytest.raises(JobError, match="model folder .* does not exist"):
        inputs.check_model(str(tmp_path / "missing"))


def test_sampling_fields_and_checks():
    """What a generation request carries: exact frames win over seconds; guidance 0 means the model's own."""
    assert Sampling(seconds=3.0, seed=7, guidance=0.0, steps=20, sampler="dpm++").fields() == {
        "seed": 7, "steps": 20, "scheduler": "dpm++", "seconds": 3.0}
    assert Sampling(frames=60, guidance=5.0).fields() == {"seed": 0, "steps": 50, "scheduler": "ddim", "frames": 60,
                                                          "guidance": 5.0}
    for bad, msg in ((dict(sampler="euler"), "Unknown sampler"), (dict(seconds=0.0), "positive number"),
                     (dict(seed=-1), "integer within 0"), (dict(steps=0), "at least 1")):
        with pytest.raises(JobError, match=msg):
            Sampling(**bad).check()


def test_split_words_and_clean_prompt():
    assert inputs.split_words("A person walks, then a person jumps") == ["A", "person", "walks", "then", "jumps"]
    assert inputs.clean_prompt("  a  person\twalks \n") == "a person walks" and inputs.clean_prompt(None) == ""


def test_inversion_fields():
    assert inputs.inversion_fields() == {}
    assert inputs.inversion_fields(8, 0, 2.5) == {"steps": 8, "null_text_iters": 0, "guidance": 2.5}
    with pytest.raises(JobError, match="Steps must be at least 1"):
        inputs.inversion_fields(steps=0)
    with pytest.raises(JobError, match="Null text iters must be at least 0"):
        inputs.inversion_fields(null_text_iters=-1)


def test_edit_choice_takes_exactly_one_valid_edit():
    """One validator for edits of generated and of real motion: specific messages, the request it sends."""
    text = "a person walks forward"
    fields, name, what, recipe = inputs.edit_choice(text, "caption", None, "walks", 2.0, None)
    assert fields == {"mode": "reweight", "word": "walks", "scale": 2.0} and name == f"{text} [walks x2]"
    assert inputs.edit_choice(text, "caption", "  a person  runs ", None, None, None)[0] == {
        "edit_prompt": "a person runs", "mode": "auto"}
    assert inputs.edit_choice(text, "caption", None, None, None, "lower")[3] == {"mirror": "lower",
                                                                                "method": "geometric"}
    for args, msg in (((None, None, None, None), "Choose one edit"), (("x", "walks", 1.0, None), "Choose one edit"),
                      (("   ", None, None, None), "Type the new prompt"),
                      ((text, None, None, None), "same as the caption"),
                      ((None, "jumps", 1.0, None), "'jumps' is not a word of the caption"),
                      ((None, "walks", 4.0, None), "within -2"), ((None, None, None, "left"), "Mirror must be")):
        with pytest.raises(JobError, match=msg):
            inputs.edit_choice(text, "caption", *args)


