"""Step distillation (training/distill.py): the targets, the loss on a tiny random model, the CLI stages."""

import json

import numpy as np
import pytest
import torch

from salad_model.runtime import requests as R
from salad_model.runtime.checkpoints import random_bundle
from salad_model.runtime.sampling import DiffusionConfig, initial_noise, make_scheduler, sample
from salad_model.training import distill


def test_velocity_target_makes_a_ddim_step_land_on_the_next_state():
    """The v solved for by velocity_target, fed to diffusers' own DDIM step (trailing, 4 steps), reaches z_s."""
    d = distill.student_diffusion(DiffusionConfig())
    sched = make_scheduler("ddim", d)
    sched.set_timesteps(4)
    grid = [int(t) for t in sched.timesteps] + [-1]
    assert grid == [999, 749, 499, 249, -1]
    g = torch.Generator().manual_seed(0)
    for t, s in zip(grid[:-1], grid[1:], strict=True):
        z_t, z_s = torch.randn(3, 5, 7, 8, generator=g), torch.randn(3, 5, 7, 8, generator=g)
        v = distill.velocity_target(z_t, z_s, torch.full((3,), t), torch.full((3,), s), sched.alphas_cumprod)
        landed = sched.step(v, t, z_t).prev_sample
        assert torch.allclose(landed, z_s, atol=1e-4), (t, (landed - z_s).abs().max())  # float32 step


def test_student_grid_must_lie_on_the_teachers():
    d = DiffusionConfig()
    assert distill.grid_positions(d, distill.Teacher("dpm++", 8, 5, 4.0)) == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="not on the teacher's grid"):
        distill.grid_positions(d, distill.Teacher("dpm++", 6, 4, 4.0))


def test_scheduler_spacing_is_the_models_and_defaults_stay():
    ddim = make_scheduler("ddim", DiffusionConfig())
    ddim.set_timesteps(4)
    assert [int(t) for t in ddim.timesteps] == [750, 500, 250, 0]  # leading: the teachers' DDIM unchanged
    assert "timestep_spacing" not in DiffusionConfig().to_dict()  # old configs are written as before
    assert distill.student_diffusion(DiffusionConfig()).to_dict()["timestep_spacing"] == "trailing"


def _tiny_case(seed=0):
    bundle = random_bundle("tiny", seed=seed)
    net = bundle.denoiser.float().eval()
    g = torch.Generator().manual_seed(seed)
    feats, mask = torch.randn(2, 4, 16, generator=g), torch.ones(2, 4, dtype=torch.bool)
    frames = torch.tensor([40, 24])
    len_mask = torch.arange(10)[None] < (frames // 4)[:, None]
    z_T = torch.randn(2, 10, 7, 8, generator=g)
    null = net.encode_text(torch.zeros(2, 1, 16), torch.ones(2, 1, dtype=torch.bool))
    return bundle, net, net.encode_text(feats, mask), null, z_T, len_mask


def test_loss_is_zero_when_the_student_already_is_its_teacher_sampler():
    """Teacher = the student's own sampler (4-step trailing DDIM, no guidance) and student = teacher: every
    recorded transition is reproduced exactly, so the loss vanishes; a guided 8-step teacher gives a real loss."""
    bundle, net, cond, null, z_T, len_mask = _tiny_case()
    d = bundle.diffusion
    own = distill.Teacher("ddim", 4, None, 1.0)
    states = distill.teacher_states(net, z_T, cond, None, len_mask, distill.student_diffusion(d), own)
    assert states.shape == (2, 5, 10, 7, 8)
    assert torch.equal(states[:, 0], z_T * len_mask[:, :, None, None])
    ts = distill.student_timesteps(d)
    alphas = make_scheduler("ddim", d).alphas_cumprod
    for k in range(4):
        step = torch.full((2,), k)
        loss = distill.distill_loss(net, states, step, cond, len_mask, ts, alphas)
        assert loss.item() < 1e-9, (k, loss.item())
        assert loss.requires_grad  # it trains the student

    guided = distill.teacher_states(net, z_T, cond, null, len_mask, d, distill.Teacher("dpm++", 8, 5, 4.0))
    losses = [distill.distill_loss(net, guided, torch.full((2,), k), cond, len_mask, ts, alphas).item()
              for k in range(4)]
    assert min(losses) > 1e-4, losses


def test_stages_write_resume_and_export_a_student_that_samples(mini_dataset, tmp_path):
    from salad_model.runtime.checkpoints import save_model
    from salad_model.runtime.pipeline import SaladPipeline

    teacher_dir = save_model(random_bundle("tiny", seed=1), tmp_path / "teacher")
    from salad_model.runtime.checkpoints import load_any

    bundle = load_any(teacher_dir)
    bundle.denoiser.float()
    teacher = distill.Teacher(guidance=4.0)
    jobs = distill.trajectory_jobs(mini_dataset, 5, min_frames=16, max_frames=64)
    assert [j["frames"] for j in jobs] == sorted(j["frames"] for j in jobs)
    out = tmp_path / "run"
    table = distill.text_table(out, [j["caption"] for j in jobs], bundle.text_encoder, None)
    paths = distill.write_trajectories(bundle, jobs, table, out, teacher, batch=2, log=lambda *_: None)
    assert len(paths) == 3
    stamp = paths[0].stat().st_mtime_ns
    distill.write_trajectories(bundle, jobs, table, out, teacher, batch=2, log=lambda *_: None)
    assert paths[0].stat().st_mtime_ns == stamp  # resume: written parts are kept

    distill.train_student(bundle, out, iters=2, batch=2, table=table, log=lambda *_: None)
    first = torch.load(out / "student" / "latest.pt", weights_only=True)
    distill.train_student(bundle, out, iters=3, batch=2, table=table, log=lambda *_: None)
    state = torch.load(out / "student" / "latest.pt", weights_only=True)
    assert (first["iter"], state["iter"]) == (2, 3)
    assert any(not torch.equal(first["model"][k], state["model"][k]) for k in state["model"])

    dest = distill.export_student(bundle, out, tmp_path / "student", teacher)
    cfg = json.loads((dest / "config.json").read_text())
    assert cfg["diffusion"]["timestep_spacing"] == "trailing"
    assert cfg["info"]["guidance"] == 1.0 and cfg["info"]["distilled"]["steps"] == 4
    assert "source" not in cfg["info"]  # no machine path in a model folder that may be committed
    pipe = SaladPipeline.from_pretrained(dest, device="cpu")
    m = pipe.generate("a person walks", frames=40, seed=0, fast=True)
    assert m.joints.shape == (40, 22, 3) and np.isfinite(m.joints).all()
    # fast mode on a student is its own sampler: 4 DDIM steps on its trailing grid, unguided
    assert (m.meta["steps"], m.meta["scheduler"], m.meta["guidance"]) == (4, "ddim", 1.0)
    assert "guided_steps" not in m.meta
    z = sample(pipe.denoiser, initial_noise(0, 40)[..., :8], pipe.text_context(["a person walks"]),
                       None, 1.0, 4, "ddim", diffusion=distill.student_diffusion(bundle.diffusion))
    assert torch.allclose(m.latent, z, atol=1e-5)
    teacher_pipe = SaladPipeline.from_pretrained(teacher_dir, device="cpu")
    assert teacher_pipe.fast_preset == R.FAST_PRESET


def _seed_cache(folder, index: bool = True):
    from safetensors.torch import save_file

    folder.mkdir()
    save_file({"0": torch.zeros(2, 4, dtype=torch.float16)}, str(folder / "text_cache.safetensors"))
    if index:
        (folder / "text_cache.json").write_text(json.dumps(["a person walks"]))
    return folder / "text_cache.safetensors"


def test_a_text_cache_without_its_index_is_a_clear_error_and_copies_nothing(tmp_path):
    seed = _seed_cache(tmp_path / "old", index=False)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"caption index .*old/text_cache\.json is missing"):
        distill.text_table(out, ["a person walks"], {"type": "tiny", "seed": 0, "dim": 16}, seed)
    assert not (out / "text_cache.safetensors").exists()
    with pytest.raises(ValueError, match=r"an existing \.safetensors file"):
        distill.text_table(out, ["a person walks"], {"type": "tiny", "seed": 0, "dim": 16}, tmp_path / "nope")
    with pytest.raises(ValueError, match=r"an existing \.safetensors file"):
        distill.text_table(out, ["a person walks"], {"type": "tiny", "seed": 0, "dim": 16}, seed.with_suffix(""))


def test_a_seeded_text_cache_is_used(tmp_path):
    seed = _seed_cache(tmp_path / "old")
    table = distill.text_table(tmp_path / "run", ["a person walks"], {"type": "tiny", "seed": 0, "dim": 16}, seed)
    assert torch.equal(table["a person walks"], torch.zeros(2, 4))  # the seeded features, not re-encoded ones
    assert (tmp_path / "run" / "text_cache.json").is_file()


def test_the_cli_refuses_a_text_cache_without_its_index_before_loading_anything(tmp_path, capsys):
    seed = _seed_cache(tmp_path / "old", index=False)
    with pytest.raises(SystemExit) as e:
        distill.main(["trajectories", "--teacher", str(tmp_path / "no-teacher"), "--out", str(tmp_path / "run"),
                      "--text-cache", str(seed)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "caption index" in err and "Traceback" not in err


def test_progress_lines_are_flushed_as_they_are_printed(monkeypatch):
    """Runs are watched through a log file (stdout redirected: block-buffered), so every progress line flushes."""
    import inspect
    import io
    import sys

    from salad_model.training import train

    class Stdout(io.StringIO):
        flushed = ""

        def flush(self):
            self.flushed = self.getvalue()

    monkeypatch.setattr(sys, "stdout", Stdout())
    for fn, name in ((distill.write_trajectories, "log"), (distill.train_student, "log"),
                     (train.Trainer.report, "log")):
        inspect.signature(fn).parameters[name].default("iteration 7")
    assert sys.stdout.flushed.count("iteration 7") == 3
