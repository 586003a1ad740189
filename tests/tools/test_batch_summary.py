"""The last line of ``tools/batch.py``: worded for what the run made (prompts, a shot or a video)."""

from pathlib import Path

from batch_module import load_batch


def _batch():
    return load_batch("salad_batch_summary")


def test_summary_counts_prompts_only_for_prompt_runs():
    summary = _batch().summary
    out = Path("/tmp/o")
    assert summary("prompts", 3, 2, out, 1.24) == f"2/3 prompt(s) written to {out} in 1.2 s"
    assert summary("shot", 1, 1, out, 4.0) == f"shot written to {out} in 4.0 s"
    assert summary("shot", 1, 0, out, 4.0) == "shot failed (see the error above) after 4.0 s"
    assert summary("video", 1, 1, out, 9.5) == f"video motion written to {out} in 9.5 s"
    assert summary("video", 1, 0, out, 0.5) == "video motion failed (see the error above) after 0.5 s"
    for kind in ("shot", "video"):
        assert "prompt" not in summary(kind, 1, 1, out, 1.0) + summary(kind, 1, 0, out, 1.0)
