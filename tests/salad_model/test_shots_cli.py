"""Shot commands as a user runs them (subprocess, tiny model): the contract of issue #13."""

import json
import os
import subprocess
import sys

import numpy as np


def run(args, cwd):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "salad_model", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_compose_continue_inbetween_and_part_edit(tiny_model_dir, tmp_path):
    m = ["--model", str(tiny_model_dir), "--steps", "3"]
    r = run(["compose", "--segment", "a person walks forward:3", "--segment", "a person waves:2.4:5",
             "--seed", "2", "--out", "shot.npz", *m], tmp_path)
    assert r.returncode == 0, r.stderr
    shot = np.load(tmp_path / "shot.npz")
    assert shot["joints"].shape == (108, 22, 3) and float(shot["fps"]) == 20.0
    meta = json.loads(str(shot["meta"]))
    assert [s["prompt"] for s in meta["shot"]["segments"]] == ["a person walks forward", "a person waves"]
    assert meta["shot"]["segments"][1]["seed"] == 5
    r = run(["continue", "shot.npz", "--prompt", "a person runs", "--seconds", "2", "--out", "more.npz", *m], tmp_path)
    assert r.returncode == 0, r.stderr
    more = np.load(tmp_path / "more.npz")
    assert more["joints"].shape == (148, 22, 3)
    # the saved latent made the continuation exact: frames before the held context are the shot's own
    assert np.array_equal(more["features"][:68], shot["features"][:68])
    r = run(["inbetween", "shot.npz", "more.npz", "--prompt", "a person turns", "--seconds", "2", "--out", "ab.npz",
             *m], tmp_path)
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "ab.npz")["joints"].shape == (108 + 40 + 148, 22, 3)
    r = run(["edit", "a person walks forward", "--seconds", "3", "--seed", "1", "--parts", "arms", "--to",
             "a person waves", "--out", "x.npz", "--source-out", "src.npz", *m], tmp_path)
    assert r.returncode == 0, r.stderr
    x, src = np.load(tmp_path / "x.npz"), np.load(tmp_path / "src.npz")
    assert x["joints"].shape == src["joints"].shape == (60, 22, 3)
    assert np.array_equal(x["latent"][:, :, [0, 1, 2, 3, 6]], src["latent"][:, :, [0, 1, 2, 3, 6]])
    assert json.loads(str(x["meta"]))["shot"]["parts"] == ["left_arm", "right_arm"]
    for flags, parts in (([], ["root", "left_leg", "right_leg"]), (["--keep-path"], ["left_leg", "right_leg"])):
        out = f"legs{len(flags)}.npz"
        r = run(["edit", "a person walks forward", "--seconds", "3", "--parts", "legs", "--to", "a person kicks",
                 "--out", out, *flags, *m], tmp_path)
        assert r.returncode == 0, r.stderr
        assert json.loads(str(np.load(tmp_path / out)["meta"]))["shot"]["parts"] == parts


def test_compose_trim_last(tiny_model_dir, tmp_path):
    """``compose`` trims the last segment's window by default (``--trim-last`` says so explicitly, recorded in the
    saved recipe); ``--no-trim-last`` makes the old untrimmed shot: the frames before the last segment the same,
    the last segment's not; the help says what the default costs."""
    args = ["compose", "--segment", "a person walks forward:3", "--segment", "a person waves:2.4", "--seed", "2",
            "--model", str(tiny_model_dir), "--steps", "3"]
    for out, extra in (("default.npz", []), ("trim.npz", ["--trim-last"]), ("plain.npz", ["--no-trim-last"])):
        r = run([*args, "--out", out, *extra], tmp_path)
        assert r.returncode == 0, r.stderr
    default, trim, plain = (np.load(tmp_path / f) for f in ("default.npz", "trim.npz", "plain.npz"))
    meta = json.loads(str(trim["meta"]))
    assert meta["shot"]["options"]["trim_last"] is True
    assert json.loads(str(default["meta"]))["shot"]["options"]["trim_last"] is True
    assert np.array_equal(default["features"], trim["features"])
    assert json.loads(str(plain["meta"]))["shot"]["options"]["trim_last"] is False
    assert trim["joints"].shape == plain["joints"].shape and meta["shot"]["segments"][1]["start"] == 60
    assert np.abs(trim["features"][:60] - plain["features"][:60]).max() <= 1e-5
    assert np.abs(trim["features"][60:] - plain["features"][60:]).max() > 1e-3
    help_text = " ".join(run(["compose", "--help"], tmp_path).stdout.split())
    assert "--trim-last, --no-trim-last" in help_text and "appended later changes" in help_text


def test_shot_commands_refuse_bad_input(tiny_model_dir, tmp_path):
    m = ["--model", str(tiny_model_dir), "--steps", "2"]
    cases = [
        (["compose", "--segment", ":3", "--out", "x.npz"], "segment 1 has an empty prompt"),
        (["compose", "--segment", "walk:1", "--out", "x.npz"], "duration is 1 s; it must be within 2–300 s"),
        (["compose", "--segment", "walk:200", "--segment", "run:150", "--out", "x.npz"], "the limit is 300 s"),
        (["compose", "--segment", "walk", "--out", "x.npz"], "PROMPT:SECONDS"),
        (["edit", "walk", "--seconds", "3", "--parts", "", "--to", "wave", "--out", "x.npz"], "no body part selected"),
        (["continue", "--source-prompt", "walk", "--source-seconds", "2", "--context", "3", "--prompt", "run",
          "--seconds", "2", "--out", "x.npz"], "at least the 3.0 s conditioning window"),
    ]
    for args, msg in cases:
        r = run([*args, *m], tmp_path)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
    assert not (tmp_path / "x.npz").exists()
