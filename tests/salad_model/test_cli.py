"""The command line as a user runs it (subprocess), on the tiny model."""

import json
import os
import subprocess
import sys

import numpy as np
from testdata import DATA


def run(args, cwd):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "salad_model", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_generate_writes_npz_bvh_preview(tiny_model_dir, tmp_path):
    r = run(["generate", "a person walks forward", "--model", str(tiny_model_dir), "--seconds", "2.4",
             "--seed", "3", "--out", "walk.npz", "--bvh", "--preview", "--steps", "10"], tmp_path)
    assert r.returncode == 0, r.stderr
    data = np.load(tmp_path / "walk.npz")
    assert data["joints"].shape == (48, 22, 3) and data["features"].shape == (48, 263)
    meta = json.loads(str(data["meta"]))
    assert meta["prompt"] == "a person walks forward" and meta["seed"] == 3 and meta["steps"] == 10
    from salad_model.motion.bvh import read_bvh

    bvh = read_bvh(tmp_path / "walk.bvh")
    assert len(bvh.names) == 22 and bvh.data.shape[0] == 48 and abs(bvh.frame_time - 0.05) < 1e-6
    assert (tmp_path / "walk.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")


def test_edit_and_attention(tiny_model_dir, tmp_path):
    r = run(["edit", "a person walks", "--to", "a person runs", "--model", str(tiny_model_dir), "--frames", "40",
             "--steps", "8", "--out", "e.npz", "--source-out", "s.npz"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "word swap" in r.stdout
    e, s = np.load(tmp_path / "e.npz"), np.load(tmp_path / "s.npz")
    assert json.loads(str(e["meta"]))["edits"][0]["mode"] == "word_swap"
    assert np.abs(e["joints"] - s["joints"]).max() > 0
    r = run(["attention", "a person waves", "--model", str(tiny_model_dir), "--frames", "40", "--steps", "5",
             "--out", "a.npz"], tmp_path)
    assert r.returncode == 0, r.stderr
    maps = np.load(tmp_path / "a.attention.npz")
    assert maps["maps"].shape[1:] == (7, 10) and list(maps["tokens"][1:-1]) == ["a", "person", "waves"]
    assert (tmp_path / "a.attention.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input_exit_code_and_message(tiny_model_dir, tmp_path):
    r = run(["generate", "  ", "--model", str(tiny_model_dir), "--out", "x.npz"], tmp_path)
    assert r.returncode == 2 and "empty" in r.stderr.lower()
    r = run(["generate", "walk", "--model", str(tmp_path / "missing"), "--out", "x.npz"], tmp_path)
    assert r.returncode == 2 and "model folder not found" in r.stderr
    r = run(["generate", "walk", "--model", str(tiny_model_dir), "--seconds", "60", "--out", "x.npz"], tmp_path)
    assert r.returncode == 2 and "out of range" in r.stderr
    assert not (tmp_path / "x.npz").exists()


def test_edit_real_from_bvh(tiny_model_dir, tmp_path):

    clip = DATA / "dataset-2_raise-up-left-hand_active_020.bvh"
    r = run(["edit-real", str(clip), "--prompt", "a person raises the left hand", "--mirror", "all",
             "--mirror-method", "attention", "--model", str(tiny_model_dir), "--steps", "5",
             "--null-text-iters", "2", "--out", "m.npz"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = np.load(tmp_path / "m.npz")
    meta = json.loads(str(out["meta"]))
    assert meta["edits"][0]["mode"] == "mirror" and meta["source"] == "inversion"
    from salad_model.motion.bandai_rig import bvh_to_smpl22

    assert out["joints"].shape == (len(bvh_to_smpl22(clip.read_text())), 22, 3)  # every pose (runtime.pose_count)
    bad = tmp_path / "bad.bvh"
    bad.write_text("HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 3 Xposition Yposition Zposition\n"
                   " End Site\n {\n  OFFSET 0 1 0\n }\n}\nMOTION\nFrames: 1\nFrame Time: 0.05\n0 0 0\n")
    r = run(["edit-real", str(bad), "--prompt", "walk", "--model", str(tiny_model_dir), "--out", "b.npz"], tmp_path)
    assert r.returncode == 2 and "neither SMPL-22 nor Bandai" in r.stderr
