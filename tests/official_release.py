"""The authors' release rebuilt with random weights, served by tests/fake_hubs.py (fixtures for download tests).

A Drive folder with the t2m tree (a denoiser of ~3 MB so a cut transfer has something to resume, its VAE,
statistics and an evaluator file nobody needs) and a hub repo with a tiny random CLIP 16 wide.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_hubs import FakeHubs
from safetensors.torch import load_file

from salad_model.fetch import official
from salad_model.runtime.checkpoints import random_bundle, write_opt
from salad_model.runtime.denoiser import Denoiser, DenoiserConfig

CLIP_REPO = "openai/clip-vit-base-patch32"
DEN = "t2m_denoiser_vpred_vaegelu"


def _bytes_to_unicode() -> dict[int, str]:
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    table = {b: chr(b) for b in keep}
    table.update({b: chr(256 + i) for i, b in enumerate(b for b in range(256) if b not in keep)})
    return table


def write_clip(folder: Path, width: int = 16) -> None:
    """A tiny random CLIP snapshot (text + vision, as on the hub) with a byte-level BPE vocabulary."""
    from transformers import CLIPConfig, CLIPModel

    chars = [_bytes_to_unicode()[b] for b in range(256)]
    vocab = {c: i for i, c in enumerate(chars)} | {c + "</w>": 256 + i for i, c in enumerate(chars)}
    bos, eos = len(vocab), len(vocab) + 1
    vocab |= {"<|startoftext|>": bos, "<|endoftext|>": eos}
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}))
    text = {"vocab_size": len(vocab), "hidden_size": width, "intermediate_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": bos, "eos_token_id": eos,
            "pad_token_id": eos}
    vision = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 16}
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).save_pretrained(folder)
    # The hub repo's weights are pytorch_model.bin (no model.safetensors at the pinned commit)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    (folder / "README.md").write_text("not requested")  # outside allow_patterns


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The authors' Drive folder (t2m tree) and the CLIP repo, with random weights."""
    root = tmp_path_factory.mktemp("release")
    t2m = root / "drive" / "t2m"
    b = random_bundle("tiny", seed=3)
    torch.manual_seed(3)  # a denoiser of ~3 MB: big enough for a transfer to be cut part-way
    den = Denoiser(DenoiserConfig(latent_dim=128, n_heads=2, n_layers=3, ff_dim=512, text_dim=16, vae_dim=8))
    vdir, ddir = t2m / "t2m_vae_gelu", t2m / DEN
    for d in (vdir, ddir, t2m / "text_mot_match" / "model"):
        (d / "model").mkdir(parents=True, exist_ok=True)
    torch.save({"vae": b.vae.state_dict(), "epoch": 1}, vdir / "model" / "net_best_fid.tar")
    torch.save({"denoiser": {k: v for k, v in den.state_dict().items() if not k.startswith("pos_emb.")},
                "epoch": 1}, ddir / "model" / "net_best_fid.tar")
    write_opt(vdir / "opt.txt", {"name": "t2m_vae_gelu", "activation": "gelu"})
    write_opt(ddir / "opt.txt", {"name": DEN, "vae_name": "t2m_vae_gelu", "n_heads": 2, "cond_scale": 7.5})
    meta = t2m / "Comp_v6_KLD005" / "meta"
    meta.mkdir(parents=True)
    np.save(meta / "mean.npy", b.mean.numpy())
    np.save(meta / "std.npy", b.std.numpy())
    (t2m / "text_mot_match" / "model" / "finest.tar").write_bytes(b"evaluator, not needed")
    write_clip(root / "hub" / CLIP_REPO)
    return {"drive": t2m, "hub": root / "hub" / CLIP_REPO}


def mirror_sources(path: Path, hub: Path) -> Path:
    """The shipped sources with the CLIP pin of this release's random weights (what a mirror would publish)."""
    src = official.sources()
    weights = hub / "pytorch_model.bin"
    pin = hashlib.sha256(weights.read_bytes()).hexdigest()
    src["clip"]["sha256"] = {f"{official.CLIP_FOLDER}/pytorch_model.bin": pin}
    path.write_text(json.dumps(src), encoding="utf-8")
    return path


@pytest.fixture()
def server(release: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private copy of the release (tests damage files) behind a loopback server; hub offline mode lifted."""
    import huggingface_hub.constants as hf_constants

    drive, hub = tmp_path / "srv" / "t2m", tmp_path / "srv" / "hub"
    shutil.copytree(release["drive"], drive)
    shutil.copytree(release["hub"], hub)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # only this loopback server is reachable
    monkeypatch.setenv("SALAD_OFFICIAL_SOURCES", str(mirror_sources(tmp_path / "sources.json", hub)))
    with FakeHubs(drive_root=drive, hub_repos={CLIP_REPO: hub}, lifetime=240) as hubs:
        hubs.drive, hubs.hub = drive, hub
        yield hubs


