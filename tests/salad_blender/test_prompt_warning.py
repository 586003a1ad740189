"""The worker's ``prompt_warning`` reaches the add-on: the finished job's message, its warning, the report
level, and tools/batch.py's stderr line (scripted answers, no worker)."""

from test_motion_job import Answer, make

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
