"""Hostile input to the CLI, the Python API, model folders, motion files, outputs and batch.py (issue #15).

Every refusal is one ``error:`` line and exit code 2 (never a traceback); outputs are checked before
any model work and written atomically; two writers of one path leave complete files from one run.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from salad_model.runtime.checkpoints import CheckpointError, load_model
from salad_model.runtime.outputs import OutputError
from salad_model.runtime.requests import InputError

REPO = Path(__file__).resolve().parents[2]


def run(args, cwd, module=("-m", "salad_model")):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
    env.pop("SALAD_DEBUG", None)
    return subprocess.run([sys.executable, *module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def refused(r, pattern: str) -> None:
    """Exit code 2, one error line naming the problem, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and pattern.lower() in errors[0].lower(), r.stderr


# -- model folders ---------------------------------------------------------------------------------


def broken_model(src: Path, dst: Path, edit) -> Path:
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    edit(cfg)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


CONFIG_BREAKS = {
    "missing key": (lambda c: c["vae"].pop("latent_dim"), "vae.latent_dim"),
    "unknown key": (lambda c: c["denoiser"].update(n_layer=3), "denoiser.n_layer"),
    "unknown top key": (lambda c: c.update(extra=1), "'extra'"),
    "wrong type": (lambda c: c["denoiser"].update(n_heads="2"), "denoiser.n_heads"),
    "bool as int": (lambda c: c["vae"].update(n_layers=True), "vae.n_layers"),
    "fps 0": (lambda c: c["info"].update(fps=0), "info.fps"),
    "negative dim": (lambda c: c["denoiser"].update(latent_dim=-32), "denoiser.latent_dim"),
    "text encoder path": (lambda c: c.update(text_encoder={"type": "precomputed", "path": "/nonexistent/x.pt"}),
                          "text_encoder.path"),
    "no text encoder": (lambda c: c.pop("text_encoder"), "'text_encoder'"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_BREAKS))
def test_malformed_config_is_one_error_naming_file_and_key(tiny_model_dir, tmp_path, case):
    edit, key = CONFIG_BREAKS[case]
    folder = broken_model(tiny_model_dir, tmp_path / "m", edit)
    with pytest.raises(CheckpointError) as err:
        load_model(folder)
    assert "config.json" in str(err.value) and key in str(err.value), str(err.value)


def test_stats_of_the_wrong_shape_fail_at_load(tiny_model_dir, tmp_path):
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    save_file({"mean": torch.zeros(10), "std": torch.ones(10)}, str(folder / "stats.safetensors"))
    with pytest.raises(CheckpointError, match=r"stats.safetensors.*'mean' has shape \(10,\)"):
        load_model(folder)


def test_cli_with_a_broken_model_prints_one_line(tiny_model_dir, tmp_path):
    folder = broken_model(tiny_model_dir, tmp_path / "m", CONFIG_BREAKS["fps 0"][0])
    refused(run(["generate", "walk", "--model", str(folder), "--out", "x"], tmp_path), "info.fps")
    assert not (tmp_path / "x.npz").exists()


# -- motion files ----------------------------------------------------------------------------------


def test_zero_frame_time_and_zero_fps_are_clear_errors(tiny_model_dir, tmp_path):
    clip = (REPO / "tests" / "data" / "dataset-2_raise-up-left-hand_active_020.bvh").read_text()
    lines = clip.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("Frame Time"))
    lines[i] = "Frame Time: 0"
    (tmp_path / "zero.bvh").write_text("\n".join(lines))
    np.savez(tmp_path / "zero.npz", joints=np.zeros((40, 22, 3), np.float32), fps=np.float32(0))
    for name, pattern in (("zero.bvh", "frame time"), ("zero.npz", "fps")):
        r = run(["edit-real", name, "--prompt", "walk", "--model", str(tiny_model_dir), "--out", "o"], tmp_path)
        refused(r, pattern)


def _not_motion(folder: Path) -> dict[str, str]:
    """Files that are not what their suffix says, and the words of the error each must give."""
    (folder / "empty.npz").write_bytes(b"")
    np.save(folder / "one.npy", np.zeros((40, 22, 3)))
    (folder / "one.npy").rename(folder / "array.npz")  # one .npy array, not named arrays
    (folder / "cut.npz").write_bytes(b"PK\x03\x04" + bytes(50))  # a zip cut short
    (folder / "binary.bvh").write_bytes(bytes(range(256)) * 4)  # not UTF-8 text
    (folder / "text.bvh").write_text("HIERARCHY\nROOT Hips\n")  # no MOTION section
    return {"empty.npz": "not a readable .npz", "array.npz": "not a readable .npz", "cut.npz": "not a readable .npz",
            "binary.bvh": "binary.bvh", "text.bvh": "no MOTION section"}


def test_motion_files_that_are_not_name_the_file(tmp_path):
    """An empty .npz said only 'No data left in file' and a binary .bvh numpy's/UTF-8's words: which file?"""
    from salad_model.motion.motion_io import MotionFileError, load_motion

    for name, words in _not_motion(tmp_path).items():
        with pytest.raises(MotionFileError) as err:
            load_motion(tmp_path / name)
        assert str(tmp_path / name) in str(err.value) and words in str(err.value), (name, str(err.value))


def test_cli_refuses_a_bad_motion_file_before_loading_the_model(tmp_path):
    """edit-real reads its input before the model (the model here does not exist: it is never reached)."""
    _not_motion(tmp_path)
    r = run(["edit-real", "empty.npz", "--prompt", "walk", "--model", str(tmp_path / "no-model"), "--out", "o"],
            tmp_path)
    refused(r, "empty.npz is not a readable .npz")
    assert "loading model" not in r.stderr


@pytest.mark.parametrize("args,words", [
    (["continue", "empty.npz", "--prompt", "wave", "--seconds", "2"], "empty.npz is not a readable .npz"),
    (["inbetween", "array.npz", "text.bvh", "--prompt", "turn", "--seconds", "2"], "array.npz is not a readable"),
])
def test_shot_commands_refuse_a_bad_motion_file_before_loading_the_model(tmp_path, args, words):
    """continue / inbetween read their files after the model (~10 s), and an empty .npz said 'No data left in
    file' (shots_cli.load_source's own np.load)."""
    _not_motion(tmp_path)
    r = run([*args, "--model", str(tmp_path / "no-model"), "--out", "o"], tmp_path)
    refused(r, words)
    assert "loading model" not in r.stderr


def test_an_unknown_device_is_one_clear_error():
    from salad_model.runtime.pipeline import pick_device

    with pytest.raises(InputError, match="unknown device 'bogus': use auto, cpu, cuda"):
        pick_device("bogus")
    assert str(pick_device("cpu")) == "cpu"


# -- requests through the CLI and the Python API -------------------------------------------------------


@pytest.mark.parametrize("args,pattern", [
    (["--seed", "-1"], "seed"), (["--seed", str(2**70)], "seed"), (["--frames", "40", "--seconds", "2"], "not both"),
    (["--steps", "0"], "steps"), (["--guidance", "nan"], "guidance"), (["--guidance", "1e400"], "guidance"),
])
def test_cli_refuses_bad_numbers_like_the_worker(tiny_model_dir, tmp_path, args, pattern):
    refused(run(["generate", "walk", "--model", str(tiny_model_dir), "--out", "x", *args], tmp_path), pattern)


def test_cli_refuses_invisible_prompts(tiny_model_dir, tmp_path):
    refused(run(["generate", "\u200b\u200b", "--model", str(tiny_model_dir), "--out", "x"], tmp_path), "empty")


@pytest.mark.parametrize("kw,pattern", [
    (dict(seed=1.7), "seed"), (dict(seed="7"), "seed"), (dict(seed=-1), "seed"), (dict(seed=2**70), "seed"),
    (dict(seed=True), "seed"), (dict(steps=True), "steps"), (dict(guidance=float("inf")), "guidance"),
    (dict(guidance=10**400), "guidance"), (dict(frames=40, seconds=2.0), "not both"),
    (dict(frames=True), "frames"), (dict(frames=40.0), "frames"),
])
def test_api_refuses_what_the_worker_refuses(tiny_pipeline, kw, pattern):
    kw = {"frames": 40, **kw} if "seconds" not in kw and "frames" not in kw else kw
    with pytest.raises(InputError, match=pattern):
        tiny_pipeline.generate("a person walks", steps=kw.pop("steps", 2), **kw)


def test_api_refuses_invisible_and_oversized_prompts(tiny_pipeline):
    for prompt in ("\u200b\u200b", "\u2060\ufeff", "walk " * 1000):
        with pytest.raises(InputError):
            tiny_pipeline.generate(prompt, frames=40, steps=2)


@pytest.mark.parametrize("joints", [np.zeros((40, 22, 3)), np.full((40, 22, 3), 1e30)])
def test_edit_real_degenerate_joints_are_refused_not_nan(tiny_pipeline, joints):
    with pytest.raises(InputError):
        tiny_pipeline.edit_real("a person walks", joints=joints, steps=2)


def test_one_reweight_range_everywhere(tiny_pipeline):
    from salad_model.runtime import requests as R

    with pytest.raises(InputError, match="scale"):
        tiny_pipeline.edit("a person walks", frames=40, word="walks", scale=R.REWEIGHT_MAX + 0.5, steps=2)
    with pytest.raises(InputError, match="scale"):
        tiny_pipeline.edit("a person walks", frames=40, word="walks", scale=R.REWEIGHT_MIN - 0.5, steps=2)


# -- outputs ---------------------------------------------------------------------------------------


def gen(tiny_model_dir, cwd, *args):
    return run(["generate", "walk", "--model", str(tiny_model_dir), "--frames", "40", "--steps", "2", *args], cwd)


def test_out_names_and_printed_paths(tiny_model_dir, tmp_path):
    r = gen(tiny_model_dir, tmp_path, "--out", "noext")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["noext.npz"] and (tmp_path / "noext.npz").is_file()
    assert not (tmp_path / "noext").exists()
    r = gen(tiny_model_dir, tmp_path, "--out", "x.bvh", "--bvh")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["x.npz", "x.bvh"]
    assert np.load(tmp_path / "x.npz")["joints"].shape == (40, 22, 3)
    assert (tmp_path / "x.bvh").read_text().startswith("HIERARCHY")
    assert not list(tmp_path.glob(".*")), "temporary files left behind"


def test_out_refusals_happen_before_model_work(tiny_model_dir, tmp_path):
    (tmp_path / "dir").mkdir()
    missing_model = str(tmp_path / "no-model")  # would fail if loading came first
    refused(run(["generate", "walk", "--model", missing_model, "--out", "dir/"], tmp_path), "folder")
    (tmp_path / "dir.npz").mkdir()
    refused(run(["generate", "walk", "--model", missing_model, "--out", "dir"], tmp_path), "folder")
    (tmp_path / "taken.npz").write_bytes(b"keep")
    refused(run(["generate", "walk", "--model", missing_model, "--out", "taken"], tmp_path), "--force")
    assert (tmp_path / "taken.npz").read_bytes() == b"keep"
    (tmp_path / "file").write_text("x")
    refused(run(["generate", "walk", "--model", missing_model, "--out", "file/sub/x"], tmp_path), "not a folder")
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            refused(run(["generate", "walk", "--model", missing_model, "--out", "ro/x"], tmp_path), "cannot write")
        finally:
            ro.chmod(0o700)
    r = gen(tiny_model_dir, tmp_path, "--out", "taken", "--force")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "taken.npz")["joints"].shape == (40, 22, 3)


def test_concurrent_writers_leave_complete_outputs_from_one_run(tmp_path):
    """Two processes writing one --out, released together, 10 times: npz and BVH complete and same run."""
    from salad_model.motion.bvh import read_bvh
    from salad_model.motion.motion_io import load_motion

    joints = load_motion(REPO / "tests" / "data" / "dataset-2_raise-up-left-hand_active_020.bvh")[:40]
    from concurrent_writer import write_one  # torch-free module: spawned children start in ~1 s

    ctx = mp.get_context("spawn")
    out = tmp_path / "same"
    for trial in range(10):
        barrier = ctx.Barrier(2)
        ids = (100 * trial + 1, 100 * trial + 2)
        procs = [ctx.Process(target=write_one, args=((out, joints, k, barrier),)) for k in ids]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
            assert p.exitcode == 0
        data = np.load(tmp_path / "same.npz")  # a torn file raises BadZipFile here
        run_id = json.loads(str(data["meta"]))["run"]
        assert run_id in ids
        assert (data["features"] == run_id).all()
        np.testing.assert_allclose(data["joints"][:, 0, 0], joints[:, 0, 0] + run_id, atol=1e-3)
        bvh_root_x = read_bvh(tmp_path / "same.bvh").positions(scale=1.0)[:, 0, 0]
        np.testing.assert_allclose(bvh_root_x, joints[:, 0, 0] + run_id, atol=1e-3)  # BVH of the same run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.bvh", "same.npz"]


def test_write_outputs_refuses_a_file_created_meanwhile(tmp_path):
    from salad_model.runtime.outputs import write_outputs

    target = tmp_path / "a.npz"

    def write(p: Path) -> None:
        target.write_bytes(b"other process")  # appears while we write
        p.write_bytes(b"ours")

    with pytest.raises(OutputError, match="meanwhile"):
        write_outputs({target: write}, force=False)
    assert target.read_bytes() == b"other process"
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_get_the_users_permissions(tmp_path, umask, mode):
    """Written through mkstemp, every result was 0600 whatever the umask: unreadable from another account."""
    from salad_model.runtime.outputs import write_outputs

    old = os.umask(umask)
    try:
        written = write_outputs({tmp_path / "a.npz": lambda p: p.write_bytes(b"x"),
                                 tmp_path / "a.bvh": lambda p: p.write_bytes(b"y")})
    finally:
        os.umask(old)
    assert [p.stat().st_mode & 0o777 for p in written] == [mode, mode]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bvh", "a.npz"]  # no temporary left


# -- batch.py ------------------------------------------------------------------------------------------


def test_batch_out_on_a_file_is_a_clear_error_before_work(tmp_path):
    (tmp_path / "f").write_text("x")
    r = run(["--prompt", "a person jumps", "--out", str(tmp_path / "f")], tmp_path,
            module=(str(REPO / "tools" / "batch.py"),))
    refused(r, "is a file")
    r = run(["--prompt", "a person jumps", "--out", str(tmp_path / "f" / "sub")], tmp_path,
            module=(str(REPO / "tools" / "batch.py"),))
    refused(r, "cannot write")
