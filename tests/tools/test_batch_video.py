"""``tools/batch.py --video`` as users run it (bpy module): the rendered test clip becomes a new Action on a
new body with its recipe in ``salad_video``; a file that is not a video is refused and nothing is written.
The video op needs no model (``--model demo`` is never loaded) but does need mediapipe.
"""

import subprocess
import sys
from pathlib import Path

from needs import require_module
from testdata import DATA

bpy = require_module("bpy")
require_module("mediapipe")

BATCH = Path(__file__).resolve().parents[2] / "tools" / "batch.py"
CLIP = DATA / "video" / "walk_turn_left_front.mp4"


def run(*args, timeout=300):
    return subprocess.run([sys.executable, str(BATCH), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_batch_video_writes_a_new_action_with_its_recipe(tmp_path):
    out = tmp_path / "o"
    # feet pinned (the default): the worker's contacts must line up with the video's frames
    p = run("--video", CLIP, "--out", out, "--model", "demo", "--threads", 1, "--fps", 20, "--bvh")
    assert p.returncode == 0, p.stderr
    assert "video motion written to" in p.stderr
    slug = "video_walk_turn_left_front"
    assert sorted(f.name for f in out.iterdir()) == [f"{slug}.blend", f"{slug}.bvh"]
    assert "Frames: 60" in (out / f"{slug}.bvh").read_text()  # 3 s at 20 fps
    bpy.ops.wm.open_mainfile(filepath=str(out / f"{slug}.blend"))
    try:
        from salad_blender import metadata

        arm = bpy.data.objects["SALAD Body"]
        action = arm.animation_data.action
        assert action.name == "SALAD: video walk_turn_left_front"
        meta = metadata.read_metadata(action)
        assert meta["salad_source"] == "video" and meta["salad_frames"] == 60
        recipe = meta["salad_video"]
        assert recipe["file"] == CLIP.name and recipe["found_frames"] >= 72 and recipe["video_frames"] == 75
        assert recipe["clean_up"]["strength"] == 0.6  # the motion-prior clean-up is on by default, as in the add-on
        assert len(bpy.data.actions) == 1  # nothing else was created or overwritten
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)


def test_batch_video_refuses_a_file_that_is_not_a_video(tmp_path):
    fake = tmp_path / "holiday.mp4"
    fake.write_text("not a film, just text with a video's name")
    out = tmp_path / "o"
    p = run("--video", fake, "--out", out, "--model", "demo", "--threads", 1)
    assert p.returncode == 1, p.stderr
    assert f"error: 'the video': {fake} is not a video (OpenCV cannot open it" in p.stderr
    assert "video motion failed (see the error above)" in p.stderr
    assert list(out.iterdir()) == []  # no .blend, no partial file
    assert fake.read_text().startswith("not a film")  # the input is left as it was
