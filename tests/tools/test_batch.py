"""tools/batch.py as users run it (`python tools/batch.py ...` with the bpy module), tiny model."""

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
from needs import require_module

bpy = require_module("bpy")

BATCH = Path(__file__).resolve().parents[2] / "tools" / "batch.py"
PROMPT = "a person walks forward and waves with the right hand"
SLUG = "a_person_walks_forward_and_waves_with_the_right_hand"


def run(*args, timeout=180):
    return subprocess.run([sys.executable, str(BATCH), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_batch_one_prompt_all_outputs(tmp_path, tiny_model_dir):
    out = tmp_path / "x"
    p = run("--prompt", PROMPT, "--seconds", 4, "--out", out, "--model", tiny_model_dir, "--steps", 10,
            "--threads", 1, "--bvh", "--fbx", "--render", "--resolution", "320x180")
    assert p.returncode == 0, p.stderr
    assert "1/1 prompt(s) written" in p.stderr
    # headless EGL's version probing is explained before it can print (issue #16)
    lines = p.stderr.splitlines()
    note = next(i for i, line in enumerate(lines) if "EGL_BAD_MATCH" in line and line.startswith("note:"))
    assert all(i > note for i, line in enumerate(lines) if line.startswith("EGL Error"))
    for ext in ("blend", "bvh", "fbx", "png"):
        f = out / f"{SLUG}.{ext}"
        assert f.is_file() and f.stat().st_size > 1000, ext
    assert png_size(out / f"{SLUG}.png") == (320, 180)
    bvh = (out / f"{SLUG}.bvh").read_text()
    assert bvh.startswith("HIERARCHY") and "ROOT pelvis" in bvh and "Frames: 95" in bvh  # 4 s at 24 fps

    bpy.ops.wm.open_mainfile(filepath=str(out / f"{SLUG}.blend"))
    try:
        arm = bpy.data.objects["SALAD Body"]
        act = arm.animation_data.action
        assert act["salad_prompt"] == PROMPT and act["salad_steps"] == 10 and act["salad_frames"] == 80
        assert [c.type for c in arm.children] == ["MESH"]
        scene = bpy.context.scene
        assert (scene.frame_start, scene.frame_end) == (1, 95)
        assert "SALAD Preview Camera" not in bpy.data.objects  # the .blend holds only the character
        bones = [b.name for b in arm.data.bones]
        frames = (1, 40, 95)
        blend_pose = {f: heads(arm, bones, f) for f in frames}
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)

    # the .fbx re-imports as the same animated skeleton: same bones, same frame range, same world pose
    # (1 mm: FBX stores float32 in centimetres)
    try:
        bpy.ops.import_scene.fbx(filepath=str(out / f"{SLUG}.fbx"), anim_offset=0.0)  # keys at their times
        arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
        assert len(arms) == 1
        fbx = arms[0]
        assert sorted(b.name for b in fbx.data.bones) == sorted(bones)
        start, end = fbx.animation_data.action.frame_range
        assert (round(start), round(end)) == (1, 95)
        for f in frames:
            err = np.abs(heads(fbx, bones, f) - blend_pose[f]).max()
            assert err < 1e-3, (f, err)
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)


def heads(obj, names, frame) -> np.ndarray:  # noqa: ANN001 - a bpy Object
    """Posed bone heads [n, 3] in world space at a scene frame (evaluated depsgraph)."""
    bpy.context.scene.frame_set(frame)
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mw = np.array(ev.matrix_world)
    pts = np.array([np.array(ev.pose.bones[n].head) for n in names])
    return pts @ mw[:3, :3].T + mw[:3, 3]


def test_batch_reports_failed_prompt_and_continues(tmp_path, tiny_model_dir):
    prompts = tmp_path / "prompts.txt"
    long_prompt = "a person " + " ".join(["walks"] * 100)
    prompts.write_text(f"# comment\na person jumps\n\n{long_prompt}\na person jumps\n", encoding="utf-8")
    p = run("--prompts", prompts, "--seconds", 2, "--out", tmp_path / "o", "--model", tiny_model_dir,
            "--steps", 2, "--threads", 1)
    assert p.returncode == 1
    assert "prompt is too long" in p.stderr and "2/3 prompt(s) written" in p.stderr
    written = sorted(f.name for f in (tmp_path / "o").iterdir())
    assert written == ["a_person_jumps.blend", "a_person_jumps_2.blend"]


def test_batch_usage_errors_exit_2(tmp_path, tiny_model_dir):
    p = run("--prompt", "a person jumps", "--out", tmp_path, "--python", "/nonexistent/python",
            "--model", tiny_model_dir)
    assert p.returncode == 2 and "does not exist" in p.stderr
    p = run("--prompt", "a person jumps", "--out", tmp_path, "--model", tmp_path / "missing")
    assert p.returncode == 2 and "model folder" in p.stderr
    p = run("--out", tmp_path)
    assert p.returncode == 2 and "--prompt" in p.stderr
    assert not list(tmp_path.glob("*.blend"))


def test_preview_frame_shows_the_raised_hand():
    """The still shows a raised hand when there is one (highest frame); otherwise the middle of the clip."""
    sys.path.insert(0, str(BATCH.parent))
    try:
        from batch import preview_frame
    finally:
        sys.path.remove(str(BATCH.parent))
    frames = 100
    root = np.zeros((frames, 3))
    root[:, 0] = np.linspace(0, 4, frames)  # travels forward
    root[:, 2] = 0.95 + 0.02 * np.sin(np.arange(frames) / 3)  # bobs while walking
    hands = np.repeat(root[:, None], 2, 1) + [0.0, 0.0, -0.25]  # hands hang at the hips
    hands[:, :, 2] += 0.15 * np.sin(np.arange(frames) / 3)[:, None]  # arm swing stays below the chest
    assert preview_frame(root, hands) == 49  # a walk: the middle
    wave = hands.copy()
    wave[70:80, 1, 2] += np.array([0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.7, 0.6, 0.4, 0.2])  # the right hand goes up
    assert preview_frame(root, wave) == 75
    assert preview_frame(root[:1], hands[:1]) == 0


def _batch_module():
    sys.path.insert(0, str(BATCH.parent))
    try:
        import batch
    finally:
        sys.path.remove(str(BATCH.parent))
    return batch


def test_segment_parsing_and_usage_errors(tmp_path, tiny_model_dir):
    batch = _batch_module()
    assert batch.parse_segment("a person walks forward:4") == ("a person walks forward", 4.0, None)
    assert batch.parse_segment("a person waves:2.5:7") == ("a person waves", 2.5, 7)
    assert batch.parse_segment("note: a person waves:3") == ("note: a person waves", 3.0, None)
    p = run("--segment", "a person waves", "--out", tmp_path, "--model", tiny_model_dir)
    assert p.returncode == 2 and "PROMPT:SECONDS" in p.stderr
    p = run("--segment", "a person waves:3", "--prompt", "a person jumps", "--out", tmp_path)
    assert p.returncode == 2 and "not allowed with" in p.stderr


def test_batch_shot_with_picture_strip(tmp_path, tiny_model_dir):
    """A 3-segment shot through the add-on's shot job: one .blend, its recipe, a strip of 4 stills."""
    out = tmp_path / "s"
    p = run("--segment", "a person walks forward:2", "--segment", "a person waves:2:5", "--segment", "a person bows:2",
            "--out", out, "--model", tiny_model_dir, "--steps", 2, "--threads", 1, "--strip", 4,
            "--resolution", "80x100")
    assert p.returncode == 0, p.stderr
    assert f"shot written to {out}" in p.stderr and "prompt(s)" not in p.stderr
    strip = out / "shot_a_person_walks_forward_strip.png"
    assert png_size(strip) == (4 * 80, 100)
    bpy.ops.wm.open_mainfile(filepath=str(out / "shot_a_person_walks_forward.blend"))
    try:
        act = bpy.data.objects["SALAD Body"].animation_data.action
        recipe = json.loads(act["salad_shot"])
        assert [s["prompt"] for s in recipe["segments"]] == ["a person walks forward", "a person waves",
                                                              "a person bows"]
        assert recipe["segments"][1]["seed"] == 5 and act["salad_frames"] == 120 and act["salad_source"] == "shot"
        assert recipe["trim_last"] is True  # End on Last Segment, on by default as in the add-on
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)


def test_batch_bad_segments_exit_2(tmp_path, tiny_model_dir):
    """The add-on's segment checks run before a worker starts; a bad segment is a usage error."""
    for bad, message in (("a person walks:0.5", "Segment 1's duration is 0.5 s"), (":3", "Segment 1 has no prompt")):
        p = run("--segment", bad, "--out", tmp_path, "--model", tiny_model_dir)
        assert p.returncode == 2 and message in p.stderr, p.stderr
    p = run("--segment", "a:200", "--segment", "b:200", "--out", tmp_path, "--model", tiny_model_dir)
    assert p.returncode == 2 and "the limit is 300 s" in p.stderr
    assert not list(tmp_path.glob("*.blend"))


def test_batch_shot_trim_last(tmp_path, tiny_model_dir):
    """``--no-trim-last`` reaches the shot job (the recipe records it, as the add-on's End on Last Segment does;
    on by default, ``--trim-last`` still says so); both are options of a shot only."""
    for flag in ("--trim-last", "--no-trim-last"):
        p = run("--prompt", "a person jumps", flag, "--out", tmp_path)
        assert p.returncode == 2 and f"{flag} is an option of a shot (--segment)" in p.stderr
    parse = _batch_module().parse_args
    assert parse(["--segment", "walk:2", "--trim-last", "--out", "x"]).trim_last is True
    out = tmp_path / "t"
    p = run("--segment", "a person walks forward:2", "--segment", "a person waves:2", "--no-trim-last", "--out", out,
            "--model", tiny_model_dir, "--steps", 2, "--threads", 1)
    assert p.returncode == 0, p.stderr
    bpy.ops.wm.open_mainfile(filepath=str(out / "shot_a_person_walks_forward.blend"))
    try:
        act = bpy.data.objects["SALAD Body"].animation_data.action
        assert json.loads(act["salad_shot"])["trim_last"] is False and act["salad_frames"] == 80
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)
