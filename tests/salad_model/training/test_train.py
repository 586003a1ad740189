"""Training entry points on a mini dataset in the real layout: a few steps, resume, export, generate."""

import json

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
    first = torch.load(out / "vae" / "latest.pt", weights_only=False)
    assert first["iter"] == 2
    train.train_vae(tiny_config, mini_dataset, out, iters=4)  # resumes at 2, stops at 4
    state = torch.load(out / "vae" / "latest.pt", weights_only=False)
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
    assert torch.load(tmp_path / "warm" / "denoiser" / "latest.pt", weights_only=False)["iter"] == 4

    pipe = SaladPipeline.from_pretrained(dest, device="cpu")
    m = pipe.generate("a person walks", frames=40, seed=0, steps=5)
    assert m.joints.shape == (40, 22, 3) and np.isfinite(m.joints).all()


def test_lr_schedule():
    assert train.lr_at(0, 1.0, 9, [20], 0.1) == pytest.approx(0.1)
    assert train.lr_at(15, 1.0, 9, [20], 0.1) == 1.0
    assert train.lr_at(25, 1.0, 9, [20], 0.1) == pytest.approx(0.1)
