"""Training entry points on a mini dataset in the real layout: a few steps, resume, export, generate.

Checkpoints are read back with plain `torch.load(weights_only=True)`: a run never needs a full unpickle.
"""

import json
import shutil

import numpy as np
import pytest
import torch

from salad_model.training import train


@pytest.fixture()
def tiny_config():
    cfg = train.load_config("demo")
    cfg["text_encoder"] = {"type": "tiny", "seed": 0, "dim": 16}
    cfg["vae"].update(latent_dim=8)
    cfg["denoiser"].update(latent_dim=32, n_heads=2, n_layers=3, ff_dim=64, text_dim=16, vae_dim=8)
    cfg["vae_train"].update(batch=4, window=16, warmup=2)
    cfg["denoiser_train"].update(batch=4, warmup=2, max_frames=64, min_frames=16)
    return cfg


def test_vae_trains_resumes_and_denoiser_exports(mini_dataset, tiny_config, tmp_path):
    out = tmp_path / "run"
    train.train_vae(tiny_config, mini_dataset, out, iters=2)
    first = torch.load(out / "vae" / "latest.pt", weights_only=True)
    assert first["iter"] == 2
    train.train_vae(tiny_config, mini_dataset, out, iters=4)  # resumes at 2, stops at 4
    state = torch.load(out / "vae" / "latest.pt", weights_only=True)
    assert state["iter"] == 4
    changed = [k for k in first["model"] if not torch.equal(first["model"][k], state["model"][k])]
    assert changed, "resumed training did not update any weight"

    train.train_denoiser(tiny_config, mini_dataset, out, iters=3)
    log = (out / "denoiser" / "log.csv").read_text().splitlines()
    assert log[0].startswith("iter,loss") and log[-1].startswith("3,")
    assert np.isfinite(float(log[-1].split(",")[1]))
    assert (out / "text_cache.safetensors").is_file()  # captions encoded once, reused next run

    dest = train.export(tiny_config, mini_dataset, out, tmp_path / "model", fp16=True)
    cfg = json.loads((dest / "config.json").read_text())
    assert cfg["weights_dtype"] == "float16" and cfg["info"]["trained_iterations"] == {"vae": 4, "denoiser": 3}
    from salad_model.runtime.pipeline import SaladPipeline

    # A machine without the run folder warm-starts from the exported weights and keeps training.
    warm = train.init_from(tiny_config, dest, tmp_path / "warm")
    assert warm == {"vae": 4, "denoiser": 3}
    train.train_denoiser(tiny_config, mini_dataset, tmp_path / "warm", iters=4)
    assert torch.load(tmp_path / "warm" / "denoiser" / "latest.pt", weights_only=True)["iter"] == 4

    pipe = SaladPipeline.from_pretrained(dest, device="cpu")
    m = pipe.generate("a person walks", frames=40, seed=0, steps=5)
    assert m.joints.shape == (40, 22, 3) and np.isfinite(m.joints).all()


def test_lr_schedule():
    assert train.lr_at(0, 1.0, 9, [20], 0.1) == pytest.approx(0.1)
    assert train.lr_at(15, 1.0, 9, [20], 0.1) == 1.0
    assert train.lr_at(25, 1.0, 9, [20], 0.1) == pytest.approx(0.1)


def _extra_dataset(mini_dataset, path):
    """One clip of the mini dataset relabelled as a DeepMimic 'jump' (one take: the rare group)."""
    path.mkdir()
    clips = json.loads((mini_dataset / "clips.json").read_text())
    first = next(c for c in clips if c["split"] == "train")
    for f in ("joints.npy", "features.npy"):
        shutil.copy(mini_dataset / f, path / f)
    rec = {**first, "name": "deepmimic_jump", "dataset": "deepmimic", "content": "jump"}
    (path / "clips.json").write_text(json.dumps([rec]))
    (path / "captions.json").write_text(json.dumps({"deepmimic_jump": {
        "train": ["A person jumps."], "heldout": [], "mirror_train": ["A person jumps."], "mirror_heldout": []}}))


@pytest.mark.parametrize("power", [0.0, 1.0])
def test_denoiser_draws_rare_groups_by_weight_with_extra_data(mini_dataset, tiny_config, tmp_path, monkeypatch,
                                                               power):
    from salad_model.training import balance

    _extra_dataset(mini_dataset, tmp_path / "dm")
    cfg = {**tiny_config, "extra_data": [str(tmp_path / "dm")]}
    cfg["denoiser_train"] = {**cfg["denoiser_train"], "balance_power": power, "batch": 32}
    drawn = []
    real_draw = balance.LengthBatches.draw

    def spy(self, batch, rng):
        idx = real_draw(self, batch, rng)
        drawn.append(idx)
        return idx

    seen_items = []
    real_open = train.open_data

    def open_spy(*a, **k):
        d = real_open(*a, **k)
        seen_items.append(d)
        return d

    monkeypatch.setattr(balance.LengthBatches, "draw", spy)
    monkeypatch.setattr(train, "open_data", open_spy)
    out = tmp_path / "run"
    train.train_vae(cfg, mini_dataset, out, iters=1)
    train.train_denoiser(cfg, mini_dataset, out, iters=6)
    items = seen_items[-1].items
    assert sum(it["dataset"] == "deepmimic" for it in items) == 2  # the extra clip and its mirror image
    if power == 0.0:
        assert not drawn  # unweighted: the original length-bucketed draw
        return
    groups = [(items[k]["dataset"], items[k]["content"]) for b in drawn for k in b]
    n_groups = len(set(balance.group_key(it) for it in items))
    share = groups.count(("deepmimic", "jump")) / len(groups)
    # every group gets the same share at power 1 (uniform draws would give it 2 of ~22 items)
    assert share == pytest.approx(1 / n_groups, abs=0.12)


def test_trainer_step_clips_counts_keeps_the_running_mean_and_logs_the_row(tmp_path):
    """Trainer.step (shared by the VAE, denoiser and distillation loops): one optimiser step on the loss with the
    gradient norm clipped when asked, the iteration counted, the loss's running mean 0.98/0.02 (the first loss
    as it is); Trainer.report writes the row to log.csv and shows it. Tolerance 1e-6 (float32 parameters)."""
    w = torch.nn.Parameter(torch.zeros(2))
    model = torch.nn.Module()
    model.w = w
    opt = torch.optim.SGD([w], lr=1.0)
    tr = train.Trainer(tmp_path, "stage", model, opt)
    tr.step((w * torch.tensor([30.0, 40.0])).sum(), clip=1.0)  # gradient [30, 40], norm 50 → clipped to 1
    np.testing.assert_allclose(w.detach().numpy(), [-0.6, -0.8], atol=1e-6)
    assert tr.it == 1 and tr.ema == 0.0  # the first loss is its own mean (w was 0)
    tr.step(torch.tensor(10.0, requires_grad=True) + 0 * w.sum())
    assert tr.it == 2 and tr.ema == pytest.approx(0.2)
    shown = []
    tr.report(tr.loss_row(torch.tensor(10.0), t0=0.0), shown.append)
    row = shown[0].split()
    assert row[:4] == ["iter=2", "loss=10", "loss_ema=0.2", "lr=1"] and row[4].startswith("sec=")
    log = (tmp_path / "stage" / "log.csv").read_text().splitlines()
    assert log[0] == "iter,loss,loss_ema,lr,sec" and log[1].startswith("2,10,0.2,1,")


def _ema_trainer(path, decay=0.5):
    """A Trainer on one parameter whose gradient is known: loss k·w at step k moves w by −k (SGD, lr 1)."""
    model = torch.nn.Module()
    model.w = torch.nn.Parameter(torch.zeros(1))
    return train.Trainer(path, "stage", model, torch.optim.SGD([model.w], lr=1.0), ema_decay=decay)


def _ema_steps(tr, ks):
    for k in ks:
        tr.step(k * tr.model.w.sum())


def test_weight_average_follows_the_steps_and_survives_a_stop_and_resume(tmp_path):
    """The EMA of the weights (torch's AveragedModel + get_ema_multi_avg_fn, decay 0.5 here) is seeded from the
    weights it starts with, updated after every step, saved in the checkpoint and resumed: four steps with a
    stop after two give the same average as four unbroken. Exact to 1e-6 (float32, a handful of halvings)."""
    whole = _ema_trainer(tmp_path / "whole")
    _ema_steps(whole, [1, 2, 3, 4])
    # w: 0 → −1 → −3 → −6 → −10; average: seed 0, then 0.5·prev + 0.5·w per step
    expected = 0.0
    for w in (-1, -3, -6, -10):
        expected = 0.5 * expected + 0.5 * w
    assert whole.model.w.item() == -10
    np.testing.assert_allclose(whole.averaged.module.w.detach().numpy(), [expected], atol=1e-6)

    first = _ema_trainer(tmp_path / "broken")
    _ema_steps(first, [1, 2])
    first.save()
    state = torch.load(tmp_path / "broken" / "stage" / "latest.pt", weights_only=True)
    assert state["ema_n"] == 3 and set(state["ema"]) == {"w"}  # the seed and two steps; a plain state dict
    resumed = _ema_trainer(tmp_path / "broken")
    assert resumed.it == 2 and resumed.model.w.item() == -3
    _ema_steps(resumed, [3, 4])
    np.testing.assert_allclose(resumed.averaged.module.w.detach().numpy(),
                               whole.averaged.module.w.detach().numpy(), atol=1e-6)
    assert int(resumed.averaged.n_averaged) == int(whole.averaged.n_averaged) == 5


def test_weight_average_is_seeded_from_a_checkpoint_without_one(tmp_path):
    """A run checkpointed before the average existed (or a warm start) resumes with the average equal to the
    weights it resumes, not to the freshly built model's."""
    plain = _ema_trainer(tmp_path, decay=None)
    _ema_steps(plain, [1, 2])
    assert plain.averaged is None
    plain.save()
    assert "ema" not in torch.load(tmp_path / "stage" / "latest.pt", weights_only=True)
    resumed = _ema_trainer(tmp_path, decay=0.9)
    assert resumed.averaged.module.w.item() == resumed.model.w.item() == -3
    _ema_steps(resumed, [3])  # w −6: 0.9·(−3) + 0.1·(−6)
    assert resumed.averaged.module.w.item() == pytest.approx(-3.3, abs=1e-6)


def test_denoiser_weight_average_is_off_without_the_key_and_exported_when_present(mini_dataset, tiny_config,
                                                                                   tmp_path):
    """No ``ema_decay`` (every config before session 12): the checkpoint holds no average and the weights are those
    of the same run with one (the average does not change the training); with it, ``export`` writes the average
    (``ema=False``: the raw weights). fp32 export so the comparison is exact."""
    from salad_model.runtime.checkpoints import load_model

    train.train_vae(tiny_config, mini_dataset, tmp_path / "plain", iters=1)
    shutil.copytree(tmp_path / "plain", tmp_path / "avg")
    train.train_denoiser(tiny_config, mini_dataset, tmp_path / "plain", iters=3)
    cfg = {**tiny_config, "denoiser_train": {**tiny_config["denoiser_train"], "ema_decay": 0.9}}
    train.train_denoiser(cfg, mini_dataset, tmp_path / "avg", iters=3)
    plain = torch.load(tmp_path / "plain" / "denoiser" / "latest.pt", weights_only=True)
    avg = torch.load(tmp_path / "avg" / "denoiser" / "latest.pt", weights_only=True)
    assert "ema" not in plain and avg["ema_n"] == 4
    for k, v in plain["model"].items():
        assert torch.equal(v, avg["model"][k]), k
    moved = [k for k in avg["model"] if not torch.equal(avg["model"][k], avg["ema"][k])]
    assert moved, "the average equals the raw weights after three steps"

    for ema, want in ((True, avg["ema"]), (False, avg["model"])):
        dest = train.export(cfg, mini_dataset, tmp_path / "avg", tmp_path / f"model_{ema}", fp16=False, ema=ema)
        got = load_model(dest).denoiser.state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want)
        assert ("denoiser_weights" in json.loads((dest / "config.json").read_text())["info"]) == ema
