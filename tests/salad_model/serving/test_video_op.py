"""The worker's ``video`` op as a real subprocess (issue 14): progress per frame read, cancel, result, errors.

No model is loaded (BlazePose comes from the ``video`` extra and torch is not needed) until the last test,
which loads the tiny model for the motion-prior clean-up (``clean_up``).
"""

import pytest
from needs import require_module
from test_worker import STEP_DELAY, RawWorker, error_of
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


def test_clean_up_reports_every_denoising_step_and_can_be_cancelled(tiny_model_dir):
    """Audit 5: the clean-up ran as one silent block (a frozen bar on a long video, cancel unseen until it ended).

    Now it counts every denoising step of every window (stage ``clean-up``) and a cancel stops it between steps,
    judged by the worker's own step count (``cancel_seen_step``), not by clocks.
    """
    require_module("mediapipe")
    w = RawWorker(**{"SALAD_WORKER_DEBUG_STEP_DELAY": str(STEP_DELAY)})
    try:
        w.result("load", model=str(tiny_model_dir), device="cpu")
        rid = w.next_id()
        w.send({"id": rid, "op": "video", "path": str(CLIP), "clean_up": 0.6})
        assert w.finish(rid)["event"] == "result"
        steps = [(ev["step"], ev["steps"]) for _, ev in w.by_id[rid]
                 if ev["event"] == "progress" and ev["stage"] == "clean-up"]
        n = steps[-1][1] if steps else 0
        assert n > 0 and n % 12 == 0  # 12 of the 20 DDIM steps (strength 0.6) per window
        assert steps == [(i, n) for i in range(1, n + 1)]  # one event per step, one running count

        rid = w.next_id()
        w.send({"id": rid, "op": "video", "path": str(CLIP), "clean_up": 0.6})
        w.until(rid, lambda ev: ev["event"] == "progress" and ev["stage"] == "clean-up" and ev["step"] >= 2)
        w.send({"id": w.next_id(), "op": "cancel", "target": rid})
        final = w.finish(rid)
        assert final["code"] == "cancelled", final
        assert final["step"] <= final["cancel_seen_step"] + 1 < n  # stopped within a step of reading the cancel
        assert w.result("hello")["protocol"] == P.PROTOCOL_VERSION  # and the worker still answers
    finally:
        assert w.close() == 0 and not w.bad_lines
