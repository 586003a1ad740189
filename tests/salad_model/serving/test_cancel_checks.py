"""Where the worker and the CLI look in on long work that is not a sampling step (no subprocess: fast)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from testdata import DATA

from salad_model.serving import protocol as P
from salad_model.serving.worker import Worker


class _Pipe:
    """Stands in for the loaded pipeline: records how edit_real was called and calls the cancel check."""

    def __init__(self) -> None:
        self.kwargs: dict = {}

    def edit_real(self, prompt, joints, callback=None, check=None, **kw):  # noqa: ANN001, ANN201
        self.kwargs = {"callback": callback, "check": check, **kw}
        check()  # as null-text optimisation does before each iteration
        raise AssertionError("the check did not stop a cancelled request")


def test_the_worker_gives_edit_real_a_cancel_check():
    """Before: ``op_edit_real`` passed only the per-step callback, so null-text iterations never saw a cancel."""
    w = Worker(io.BytesIO(), io.BytesIO(), device="cpu", threads=1)
    w.pipe = _Pipe()
    w._cancelled.add("r1")
    params = {"prompt": "a person walks", "joints": P.encode_array(np.ones((40, 22, 3), np.float32)),
              "null_text_iters": 100}
    with pytest.raises(Exception) as info:
        w.op_edit_real("r1", params)
    assert w._classify(info.value, "edit_real")[0] == P.CANCELLED
    assert w.pipe.kwargs["null_text_iters"] == 100


def test_the_cli_clean_up_prints_progress(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """``python -m salad_model edit-real clip.mp4 --clean-up 0.6``: the clean-up (minutes on a long clip) printed
    nothing between "loading model" and the edit."""
    import salad_model.video as video
    from salad_model.__main__ import main
    from salad_model.motion.bandai_rig import bvh_to_smpl22
    from salad_model.video.extract import VideoMotion

    joints = bvh_to_smpl22((DATA / "dataset-2_walk-turn-left_active_024.bvh").read_text()).astype(np.float32)
    read = VideoMotion(joints, np.zeros((len(joints) - 1, 4), bool), {"source": "video"})
    monkeypatch.setattr(video, "extract_motion", lambda *a, **k: read)  # no video decoding, no BlazePose
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    code = main(["edit-real", str(clip), "--prompt", "a person walks", "--mirror", "all", "--clean-up", "0.6",
                 "--model", str(tiny_model_dir), "--out", str(tmp_path / "m.npz"), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    steps = [line.split(" (")[0].removeprefix("clean-up: step ").split("/") for line in err.splitlines()
             if line.startswith("clean-up: step ")]
    assert len(steps) >= 2 and steps[-1][0] == steps[-1][1], err  # a line per quarter, the last one complete
