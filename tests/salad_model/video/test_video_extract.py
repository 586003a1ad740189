"""Video → motion end to end with BlazePose (the ``video`` extra): the rendered clip against its ground truth,
and every kind of bad video through the CLI (clear message, exit code 2, nothing written).

The rendered clip (tests/data/video/walk_turn_left_front, 3 s): measured person found in 75/75 frames,
root-aligned MPJPE 6.4 cm, root path error 19 cm mean / 41 cm at the end (docs/video.md; 33 / 49 cm before the
crop-ray correction). Bounds: the issue's 95% / 8 cm; the root path at about twice the measured error.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from needs import require_module
from testdata import DATA

cv2 = require_module("cv2")
require_module("mediapipe")

from salad_model.evaluation.video_eval import accuracy, ground_truth  # noqa: E402
from salad_model.motion.motion_process import facing_angle  # noqa: E402
from salad_model.video import VideoError, extract_motion  # noqa: E402

VIDEO_DIR = DATA / "video"
CLIP = VIDEO_DIR / "walk_turn_left_front.mp4"


@pytest.fixture(scope="module")
def walk():
    seen = []
    m = extract_motion(CLIP, progress=lambda i, n: seen.append((i, n)))
    return m, seen


def test_rendered_walk_is_found_and_matches_its_ground_truth(walk):
    m, seen = walk
    assert m.meta["video_frames"] == 75 and m.meta["found_frames"] >= 0.95 * 75
    assert [i for i, _ in seen] == list(range(1, 76)) and seen[-1][1] == 75  # progress: every frame read
    truth = ground_truth(CLIP.with_suffix(".npz"), m.meta)
    acc = accuracy(m.joints, truth)
    assert acc["mpjpe_m"] <= 0.08, acc
    assert acc["root_path_mean_m"] < 0.4 and acc["root_path_end_m"] < 0.8, acc
    assert m.warnings == [] and m.meta["people"] <= 1


def test_recovered_walk_stands_on_the_floor_and_reads_as_its_truth(walk):
    """The cause of issue 14's content miss: the body hovered (lowest foot 4.5 cm up on average, truth 0.7 cm)
    and leant sideways, and the classifier read the walk as *dash*; now its feet rest on the floor (measured
    0.6 cm) and the classifier names the true content (walk-turn-left, probability 0.67; the truth 0.94).
    """
    m, _ = walk
    truth = ground_truth(CLIP.with_suffix(".npz"), m.meta)
    feet = [7, 8, 10, 11]
    assert m.joints[:, feet, 1].min(axis=1).mean() < 0.02  # metres; before the fix 0.045
    from salad_model.evaluation.classifier import load_classifier
    from salad_model.motion.motion_process import joints_to_features

    clf = load_classifier()
    probs = clf.predict([joints_to_features(x[:57]).astype(np.float32) for x in (m.joints, truth)])["content_prob"]
    names = [clf.config.contents[i] for i in probs.argmax(-1)]
    assert names == ["walk-turn-left", "walk-turn-left"], names


def test_recovered_motion_is_in_model_space(walk):
    m, _ = walk
    j = m.joints
    assert j.shape == (60, 22, 3) and m.meta["fps"] == 20.0  # 3 s at 25 fps → 20 fps
    assert abs(j[0, 0, 0]) < 1e-5 and abs(j[0, 0, 2]) < 1e-5 and abs(j[..., 1].min()) < 1e-5
    assert abs(np.degrees(facing_angle(j[0]))) < 1e-3  # facing +Z at frame 0
    assert 0.75 < j[:, 0, 1].mean() < 1.1  # the pelvis at hip height, metres, Y up
    assert j[-1, 0, 2] > 1.5  # walked forward (the truth: 3.9 m along a left turn)
    c = m.contacts
    assert c.shape == (59, 4) and 0.1 < c[:, [0, 2]].mean() < 0.9  # feet both rest and swing


def run_cli(args, cwd):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-m", "salad_model", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def write_video(path, frames, fps=25.0, fourcc="mp4v"):
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    for f in frames:
        out.write(f)
    out.release()
    return path


def clip_frames(n=None, rows=None):
    cap = cv2.VideoCapture(str(CLIP))
    out = []
    while n is None or len(out) < n:
        ok, f = cap.read()
        if not ok:
            break
        out.append(np.ascontiguousarray(f[:rows]) if rows else f)
    return out


def test_cli_writes_npz_and_bvh_like_generate(tmp_path):
    r = run_cli(["video", str(CLIP), "--out", "walk.npz", "--bvh"], tmp_path)
    assert r.returncode == 0, r.stderr
    d = np.load(tmp_path / "walk.npz")
    assert d["joints"].shape == (60, 22, 3) and float(d["fps"]) == 20.0 and d["features"].shape == (60, 263)
    meta = json.loads(str(d["meta"]))
    assert meta["source"] == "video" and meta["video"] == CLIP.name and meta["found_frames"] >= 72
    from salad_model.motion.bvh import read_bvh

    assert read_bvh(tmp_path / "walk.bvh").data.shape[0] == 60


def test_cli_clean_up_records_its_recipe_and_refuses_a_bad_strength(tiny_model_dir, tmp_path):
    r = run_cli(["video", str(CLIP), "--out", "clean.npz", "--clean-up", "--model", str(tiny_model_dir)], tmp_path)
    assert r.returncode == 0, r.stderr
    d = np.load(tmp_path / "clean.npz")
    meta = json.loads(str(d["meta"]))
    assert d["joints"].shape == (60, 22, 3) and d["features"].shape == (60, 263)
    assert meta["clean_up"]["strength"] == 0.6 and meta["clean_up"]["steps"] == 20 and meta["source"] == "video"
    r = run_cli(["video", str(CLIP), "--out", "bad.npz", "--clean-up", "2", "--model", str(tiny_model_dir)], tmp_path)
    assert r.returncode == 2 and "clean_up" in r.stderr and not (tmp_path / "bad.npz").exists()
    r = run_cli(["edit-real", str(DATA / "dataset-2_walk-turn-left_active_024.bvh"), "--prompt", "A person walks.",
                 "--clean-up", "--model", str(tiny_model_dir), "--out", "mocap.npz"], tmp_path)
    assert r.returncode == 2 and "from a video" in r.stderr and not (tmp_path / "mocap.npz").exists()


def _bad(tmp_path, video, message):
    r = run_cli(["video", str(video), "--out", "out.npz", "--bvh"], tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr, r.stderr
    assert not (tmp_path / "out.npz").exists() and not (tmp_path / "out.bvh").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temporaries left
    return r.stderr


def test_not_a_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is a shopping list, not a film\n" * 50)
    _bad(tmp_path, bad, "is not a video")


def test_unreadable_codec(tmp_path):
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(CLIP.read_bytes()[:4000])  # the header survives, the frames do not
    err = _bad(tmp_path, bad, "error: ")
    assert "no frame could be decoded" in err or "is not a video" in err


def test_no_person(tmp_path):
    rng = np.random.default_rng(0)
    frames = [np.full((480, 640, 3), 90 + 2 * k, np.uint8) + rng.integers(0, 20, (480, 640, 3), dtype=np.uint8)
              for k in range(60)]
    _bad(tmp_path, write_video(tmp_path / "empty.mp4", frames), "no person found")


def test_too_short(tmp_path):
    _bad(tmp_path, write_video(tmp_path / "short.mp4", clip_frames(30)), "too short: 1.2 s")


def test_person_partly_out_of_frame(tmp_path):
    err = _bad(tmp_path, write_video(tmp_path / "top.mp4", clip_frames(rows=300)), "error: ")
    assert "partly out of frame" in err and ("ankle" in err or "knee" in err), err


def test_several_small_people_in_real_footage_follow_the_largest(tmp_path):
    """OpenCV's vtest.avi (4 s excerpt): pedestrians about 100 px tall; the tallest one is followed."""
    r = run_cli(["video", str(VIDEO_DIR / "vtest_excerpt.avi"), "--out", "street.npz"], tmp_path)
    assert "several people" in r.stderr and "following the largest" in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    meta = json.loads(str(np.load(tmp_path / "street.npz")["meta"]))
    assert meta["people"] >= 2 and meta["found_frames"] >= 0.5 * meta["video_frames"]


def test_extract_refuses_a_missing_file(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        extract_motion(tmp_path / "nothing.mp4")


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf")])
def test_a_length_to_read_that_is_not_positive_is_refused(seconds):
    """--max-seconds 0 read the whole clip (0 is falsy) and -1 failed as 'the clip is too short: 0.0 s decoded'."""
    with pytest.raises(VideoError, match=r"max_seconds\) must be a positive number of seconds"):
        extract_motion(CLIP, max_seconds=seconds)


def test_edit_real_reads_a_video_and_refuses_a_bad_one_before_the_model(tiny_model_dir, tmp_path):
    r = run_cli(["edit-real", str(CLIP), "--prompt", "A person walks forward.", "--model", str(tiny_model_dir),
                 "--steps", "2", "--out", "edited.npz"], tmp_path)
    assert r.returncode == 0, r.stderr
    d = np.load(tmp_path / "edited.npz")
    meta = json.loads(str(d["meta"]))
    assert d["joints"].shape[1:] == (22, 3) and 56 <= len(d["joints"]) <= 60 and meta["source"] == "inversion"
    bad = tmp_path / "notes.mov"
    bad.write_text("not a film")
    r = run_cli(["edit-real", str(bad), "--prompt", "A person walks.", "--model", str(tmp_path / "no-model"),
                 "--out", "bad.npz"], tmp_path)
    assert r.returncode == 2 and "is not a video" in r.stderr  # the video is checked before the (missing) model
    assert not (tmp_path / "bad.npz").exists()


def test_a_small_person_is_read_again_from_an_enlarged_crop(tmp_path):
    """The committed walk shrunk to a third inside a frame of its own background (the walker 50–110 px tall):
    BlazePose on the whole frame misses them in most frames; the crop around HOG's box finds them."""
    small = []
    for f in clip_frames():
        canvas = np.empty_like(f)
        canvas[:] = f[5, 5]  # the background (sky) colour
        canvas[240:] = f[-5, 5]  # and the floor's
        s = cv2.resize(f, (f.shape[1] // 3, f.shape[0] // 3), interpolation=cv2.INTER_AREA)
        canvas[200:200 + s.shape[0], 240:240 + s.shape[1]] = s
        small.append(canvas)
    m = extract_motion(write_video(tmp_path / "far.mp4", small))
    assert any("small in the picture" in w for w in m.warnings), m.warnings
    assert m.meta["found_frames"] >= 0.9 * m.meta["video_frames"]
