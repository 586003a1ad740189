"""The video evaluation keeps going past a refused video and reports it (issue 14's evaluation set)."""

import json

import numpy as np

from salad_model.evaluation import video_eval
from salad_model.video import VideoError


def test_a_refused_video_is_reported_and_the_others_still_evaluated(tmp_path, monkeypatch):
    ok, bad = tmp_path / "walk_front.mp4", tmp_path / "far_front.mp4"
    np.savez(ok.with_suffix(".npz"), clip="dataset-2_walk_normal_014.bvh")
    row = {"video": ok.name, "video_frames": 75, "found_share": 1.0, "fps_wall": 20.0, "fps_cpu": 30.0,
           "mpjpe_m": 0.05, "root_path_mean_m": 0.2, "root_path_end_m": 0.4, "truth_travel_m": 3.0}
    motion = np.zeros((60, 22, 3))

    def fake(path):
        if path == bad:
            raise VideoError("a person was found in only 25 of 75 frames (33%)")
        return dict(row), motion, motion

    monkeypatch.setattr(video_eval, "evaluate_video", fake)
    out, md = tmp_path / "v.json", tmp_path / "v.md"
    assert video_eval.main([str(bad), str(ok), "--out", str(out), "--markdown", str(md)]) == 0
    result = json.loads(out.read_text())
    assert [r["video"] for r in result["rows"]] == [ok.name] and result["rows"][0]["content"] == "walk"
    assert result["summary"]["refused"] == [{"video": bad.name, "error": "a person was found in only 25 of 75 "
                                                                         "frames (33%)"}]
    assert "far_front.mp4 | refused: a person was found in only 25" in md.read_text()
