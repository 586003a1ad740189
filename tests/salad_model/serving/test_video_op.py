"""The worker's ``video`` op as a real subprocess (issue 14): progress per frame read, cancel, result, errors.

No model is loaded (BlazePose comes from the ``video`` extra and torch is not needed) until the last test,
which loads the tiny model for the motion-prior clean-up (``clean_up``).
"""

import pytest
from needs import require_module
from test_worker import RawWorker, error_of
from testdata import DATA

from salad_model.serving import protocol as P

CLIP = DATA / "video" / "walk_turn_left_front.mp4"


@pytest.fixture(scope="module")
def worker():
    require_module("mediapipe")
    w = RawWorker()
    assert "video" in set(w.result("hello")["ops"])
    yield w
    assert w.close() == 0 and not w.bad_lines


def test_video_reports_frames_read_and_returns_motion(worker):
    rid = worker.next_id()
    worker.send({"id": rid, "op": "video", "path": str(CLIP)})
    final = worker.finish(rid)
    assert final["event"] == "result", final
    steps = [(ev["step"], ev["steps"], ev["stage"]) for _, ev in worker.by_id[rid] if ev["event"] == "progress"]
    assert steps == [(i, 75, "reading video") for i in range(1, 76)]  # one event per frame read
    d = P.from_wire(final["data"])
    assert d["joints"].shape == (60, 22, 3) and d["contacts"].shape == (60, 4)
    assert (d["contacts"][-1] == d["contacts"][-2]).all()  # one row per frame: the last repeats its predecessor
    assert d["meta"]["source"] == "video" and d["meta"]["found_frames"] >= 72 and d["meta"]["warnings"] == []


def test_video_cancel_stops_between_frames(worker):
    rid = worker.next_id()
    worker.send({"id": rid, "op": "video", "path": str(CLIP)})
    worker.until(rid, lambda ev: ev["event"] == "progress" and ev["step"] >= 3)
    worker.send({"id": worker.next_id(), "op": "cancel", "target": rid})
    final = worker.finish(rid)
    assert final["code"] == "cancelled" and final["step"] < 75, final


def test_video_errors_are_invalid_input(worker, tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_text("not a video")
    err = error_of(worker, "video", path=str(bad))
    assert err["code"] == "invalid_input" and "is not a video" in err["message"]
    assert error_of(worker, "video", path=str(tmp_path / "none.mp4"))["message"].endswith("none.mp4")
    err = error_of(worker, "video", path=str(CLIP), fov=500)
    assert err["code"] == "invalid_input" and "fov" in err["message"]
    assert error_of(worker, "video")["code"] == "invalid_input"


def test_clean_up_needs_a_model_then_records_its_recipe(worker, tiny_model_dir):
    err = error_of(worker, "video", path=str(CLIP), clean_up=0.6)
    assert err["code"] == "no_model"  # refused before the video is read
    err = error_of(worker, "video", path=str(CLIP), clean_up=1.5)
    assert err["code"] == "invalid_input" and "clean_up" in err["message"]
    worker.result("load", model=str(tiny_model_dir), device="cpu")
    d = P.from_wire(worker.result("video", path=str(CLIP), clean_up=0.6))
    assert d["joints"].shape == (60, 22, 3) and d["contacts"].shape == (60, 4)
    assert d["meta"]["clean_up"]["strength"] == 0.6 and d["meta"]["source"] == "video"


def test_the_clean_up_reports_its_steps_and_stops_on_cancel(tiny_model_dir):
    """The clean-up after the video is read is a denoising loop: it reports each step (stage "cleaning up") and
    a cancel stops it between steps (before: no word between the last frame read and the result, and a cancel
    was seen only once the clean-up had finished; a long video's clean-up held the worker that long). The
    worker's debug step delay (0.1 s) keeps the 12 steps (strength 0.6 of 20) from ending before the cancel."""
    require_module("mediapipe")
    w = RawWorker(**{"SALAD_WORKER_DEBUG_STEP_DELAY": "0.1"})
    try:
        w.result("load", model=str(tiny_model_dir), device="cpu")
        rid = w.next_id()
        w.send({"id": rid, "op": "video", "path": str(CLIP), "clean_up": 0.6})
        w.finish(rid)
        cleaning = [(ev["step"], ev["steps"]) for _, ev in w.by_id[rid]
                    if ev["event"] == "progress" and ev["stage"] == "cleaning up"]
        assert cleaning == [(i, 12) for i in range(1, 13)]  # one window of 60 frames, 12 of 20 steps
        rid = w.next_id()
        w.send({"id": rid, "op": "video", "path": str(CLIP), "clean_up": 0.6})
        w.until(rid, lambda ev: ev["event"] in ("result", "error") or ev.get("stage") == "cleaning up")
        w.send({"id": w.next_id(), "op": "cancel", "target": rid})
        final = w.finish(rid)
        assert final["code"] == "cancelled" and final["step"] < 12, final
    finally:
        assert w.close() == 0 and not w.bad_lines
