"""The worker's ``prompt_warning`` reaches the add-on: the finished job's message, its warning, the report
level, and tools/batch.py's stderr line (scripted answers, no worker)."""

import warnings

from test_motion_job import Answer, make

from salad_blender.inputs import ResultWarning

WARNING = {"prompt": "a person swims", "similarity": 0.05, "threshold": 0.18,
           "nearest": ["A person walks forward.", "A person runs."],
           "message": '"a person swims" is far from everything this model was trained on; Nearest it knows: …'}


def test_a_warned_result_is_applied_and_says_so():
    job, _ = make({"load": Answer({}), "generate": Answer({"value": 1, "prompt_warning": WARNING})})
    assert job.poll() and job.state == "done" and job.output == 2  # the motion still lands
    assert job.warning == WARNING["message"]
    assert job.message.startswith("Generate: done in") and job.message.endswith("Warning: " + WARNING["message"])


def test_a_known_prompt_has_no_warning():
    for answer in ({"value": 1, "prompt_warning": None}, {"value": 1}):  # null, or an older worker
        job, _ = make({"load": Answer({}), "generate": Answer(answer)})
        assert job.poll() and job.state == "done" and job.warning == "" and "Warning" not in job.message


def test_what_the_apply_step_warns_is_said_once_after_the_prompt_warning():
    def apply(result):
        for _ in range(2):  # All Selected: two rigs that played the same action
            warnings.warn("'Walk' also keys the rig object's location: they no longer play", ResultWarning, 1)
        return 1

    job, _ = make({"load": Answer({}), "generate": Answer({"value": 1, "prompt_warning": WARNING})}, apply)
    assert job.poll() and job.state == "done"
    assert job.warning == WARNING["message"] + " 'Walk' also keys the rig object's location: they no longer play"
    assert job.message.endswith("Warning: " + job.warning)
