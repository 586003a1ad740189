"""Loading the official folder layout and our format, and the errors users see for bad files."""

import json

import numpy as np
import pytest
import torch

from salad_model.runtime.checkpoints import (
    CheckpointError,
    ModelBundle,
    load_any,
    load_model,
    parse_opt,
    random_bundle,
    save_model,
    write_opt,
)
from salad_model.runtime.denoiser import Denoiser
from salad_model.runtime.sampling import DiffusionConfig
from salad_model.runtime.vae import VAE


@pytest.fixture(scope="module")
def official_dir(golden, tmp_path_factory):
    """The golden weights laid out exactly as the released checkpoints (opt.txt + model/*.tar)."""
    root = tmp_path_factory.mktemp("checkpoints")
    t2m = root / "t2m"
    vdir, ddir = t2m / "t2m_vae_gelu", t2m / "t2m_denoiser_vpred_vaegelu"
    (vdir / "model").mkdir(parents=True)
    (ddir / "model").mkdir(parents=True)
    torch.save({"vae": golden("vae_net.tar")["vae"], "epoch": 50}, vdir / "model" / "net_best_fid.tar")
    torch.save({"denoiser": golden("denoiser_net.tar")["denoiser"], "epoch": 500},
               ddir / "model" / "net_best_fid.tar")
    write_opt(vdir / "opt.txt", {"name": "t2m_vae_gelu", "latent_dim": 32, "activation": "gelu",
                                 "milestones": [150000, 250000], "weight_decay": "0.0", "is_continue": False})
    write_opt(ddir / "opt.txt", {"name": "t2m_denoiser_vpred_vaegelu", "vae_name": "t2m_vae_gelu",
                                 "n_heads": 8, "latent_dim": 256, "cond_scale": 7.5, "weight_decay": "1e-06",
                                 "prediction_type": "v_prediction", "beta_start": 0.00085})
    stats = golden("recover_from_ric.pt")
    meta = t2m / "Comp_v6_KLD005" / "meta"
    meta.mkdir(parents=True)
    np.save(meta / "mean.npy", stats["mean"].numpy())
    np.save(meta / "std.npy", stats["std"].numpy())
    return ddir


@pytest.fixture()
def copy_root(official_dir, tmp_path):
    """A private copy of the official checkpoints tree, for tests that damage files."""
    import shutil

    root = tmp_path / "checkpoints"
    shutil.copytree(official_dir.parent.parent, root)
    return root


DENOISER = "t2m/t2m_denoiser_vpred_vaegelu"


def test_parse_opt_types(tmp_path):
    write_opt(tmp_path / "opt.txt", {"a": True, "b": 0.5, "c": 12, "d": [1, 2], "e": "1e-06", "f": "t2m"})
    assert parse_opt(tmp_path / "opt.txt") == {"a": True, "b": 0.5, "c": 12, "d": [1, 2], "e": "1e-06",
                                              "f": "t2m"}


@torch.no_grad()
def test_official_layout_loads_like_a_user_would(official_dir, golden):
    bundle = load_any(official_dir)
    assert bundle.info["dataset"] == "t2m" and bundle.text_encoder["type"] == "clip"
    assert bundle.text_encoder["path"].endswith("clip-vit-base-patch32")
    assert bundle.denoiser.config.n_layers == 5 and bundle.denoiser.config.text_dim == 512
    g = golden("denoiser_forward.pt")
    ctx = bundle.denoiser.encode_text(g["word_emb_cond"], g["word_mask_cond"])
    out = bundle.denoiser(g["x_t"], g["timesteps"], ctx, g["len_mask"])
    assert (out - g["out_cond"]).abs().max() <= 1e-5
    vio = golden("vae_io.pt")
    assert (bundle.vae.decode(vio["mu"]) - vio["recon"]).abs().max() <= 1e-5
    assert torch.equal(bundle.mean, golden("recover_from_ric.pt")["mean"])


def test_official_missing_file_names_it(copy_root):
    copy = copy_root
    (copy / "t2m" / "t2m_vae_gelu" / "model" / "net_best_fid.tar").unlink()
    with pytest.raises(CheckpointError, match=r"not found: .*t2m_vae_gelu.*net_best_fid\.tar"):
        load_any(copy / DENOISER)


def test_official_corrupt_file(copy_root):
    copy = copy_root
    f = copy / "t2m" / "t2m_denoiser_vpred_vaegelu" / "model" / "net_best_fid.tar"
    f.write_bytes(f.read_bytes()[: 10000])  # truncated download
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*net_best_fid\.tar.*corrupt"):
        load_any(copy / DENOISER)


def test_official_rejects_pickled_code(official_dir, tmp_path):
    """weights_only=True: a checkpoint carrying arbitrary objects is refused, not executed."""
    import shutil

    copy = tmp_path / "checkpoints"
    shutil.copytree(official_dir.parent.parent, copy)
    f = copy / "t2m" / "t2m_denoiser_vpred_vaegelu" / "model" / "net_best_fid.tar"
    torch.save({"denoiser": {}, "payload": DiffusionConfig()}, f)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_any(copy / DENOISER)


def test_mismatched_keys_and_shapes_are_named(copy_root, golden):
    copy = copy_root
    f = copy / "t2m" / "t2m_vae_gelu" / "model" / "net_best_fid.tar"
    state = dict(golden("vae_net.tar")["vae"])
    state["dist.bias"] = torch.zeros(7, 60)
    state["extra.weight"] = torch.zeros(1)
    del state["motion_dec.layers.3.2.bias"]
    torch.save({"vae": state}, f)
    with pytest.raises(CheckpointError) as err:
        load_any(copy / DENOISER)
    msg = str(err.value)
    assert "missing keys: motion_dec.layers.3.2.bias" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "dist.bias is (7, 60) in the file, expected (7, 64)" in msg


def test_stats_shape_checked(copy_root):
    copy = copy_root
    np.save(copy / "t2m" / "Comp_v6_KLD005" / "meta" / "std.npy", np.ones(251, np.float32))
    with pytest.raises(CheckpointError, match=r"std\.npy has shape \(251,\), expected \(263,\)"):
        load_any(copy / DENOISER)


def test_our_format_round_trip_fp32_and_fp16(tmp_path):
    b = random_bundle("tiny", seed=3)
    save_model(b, tmp_path / "m32")
    back = load_model(tmp_path / "m32")
    for a, c in ((b.vae, back.vae), (b.denoiser, back.denoiser)):
        for (k, v), (_, w) in zip(a.state_dict().items(), c.state_dict().items(), strict=True):
            assert torch.equal(v, w), k
    save_model(b, tmp_path / "m16", dtype=torch.float16)
    half = load_model(tmp_path / "m16")
    w = b.denoiser.state_dict()["transformer.middle_block.ffn_linear1.weight"]
    h = half.denoiser.state_dict()["transformer.middle_block.ffn_linear1.weight"]
    assert h.dtype == torch.float32 and torch.equal(h, w.half().float())
    # fixed graph matrices are stored exactly
    assert torch.equal(half.vae.state_dict()["conv_enc.layers.0.2.skeleton_pool"],
                       b.vae.state_dict()["conv_enc.layers.0.2.skeleton_pool"])


def test_our_format_errors(tmp_path):
    save_model(random_bundle("tiny"), tmp_path / "m")
    with pytest.raises(CheckpointError, match="model folder not found"):
        load_any(tmp_path / "nope")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text("{broken")
    with pytest.raises(CheckpointError, match=r"config\.json is not valid JSON"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    data = (tmp_path / "m" / "denoiser.safetensors").read_bytes()
    (tmp_path / "m" / "denoiser.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cannot read .*denoiser\.safetensors"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "denoiser.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"weights file not found: .*denoiser\.safetensors"):
        load_model(tmp_path / "m")
    (tmp_path / "x").mkdir()
    with pytest.raises(CheckpointError, match="neither our model format"):
        load_any(tmp_path / "x")


def test_bundle_type():
    b = random_bundle("tiny")
    assert isinstance(b, ModelBundle) and isinstance(b.vae, VAE) and isinstance(b.denoiser, Denoiser)


def test_loaded_weights_do_not_change_with_their_files(tmp_path):
    """Audit 5: safetensors' tensors are views of a memory map of the file, so the float32 stats of a loaded model
    changed when the folder's files were overwritten in place (a re-export or re-download into the same folder):
    the worker's generations changed under a model it said it reused. The loader now copies."""
    import shutil

    a, b = tmp_path / "a", tmp_path / "b"
    save_model(random_bundle("tiny", seed=0), a)
    save_model(random_bundle("tiny", seed=1), b)
    bundle = load_model(a)
    mean, std = bundle.mean.clone(), bundle.std.clone()
    weights = {k: v.clone() for k, v in bundle.denoiser.state_dict().items()}
    for f in ("stats.safetensors", "denoiser.safetensors"):
        shutil.copy(b / f, a / f)  # in place: the same inode, new bytes
    assert not torch.equal(load_model(a).mean, mean)  # the files did change
    assert torch.equal(bundle.mean, mean) and torch.equal(bundle.std, std)  # exactly: nothing aliases the file
    assert all(torch.equal(v, weights[k]) for k, v in bundle.denoiser.state_dict().items())


@pytest.mark.parametrize(("change", "message"), [
    ({"diffusion": {"timestep_spacing": "trailng"}}, r"diffusion\.timestep_spacing must be one of .*'trailng'"),
    ({"diffusion": {"timestep_spacing": "linspace"}}, r"diffusion\.timestep_spacing must be one of "),  # not DDIM's
    ({"diffusion": {"timestep_spacing": 4}}, r"diffusion\.timestep_spacing must be str, got 4"),
    ({"info": {"distilled": "yes"}}, r"info\.distilled must be an object"),
    ({"info": {"distilled": {"steps": 4}}}, r"missing key info\.distilled\.scheduler"),
    ({"info": {"distilled": {"scheduler": "ddim"}}}, r"missing key info\.distilled\.steps"),
    ({"info": {"distilled": {"scheduler": "euler", "steps": 4}}}, r"info\.distilled\.scheduler must be one of"),
    ({"info": {"distilled": {"scheduler": "ddim", "steps": "4"}}}, r"info\.distilled\.steps must be an integer"),
    ({"info": {"distilled": {"scheduler": "ddim", "steps": True}}}, r"info\.distilled\.steps must be an integer"),
    ({"info": {"distilled": {"scheduler": "ddim", "steps": 0}}}, r"info\.distilled\.steps must be an integer"),
])
def test_a_distilled_students_sampler_keys_are_checked_at_load(tmp_path, change, message):
    """A student's spacing and Fast-mode sampler (training.distill export) are read when it generates: a wrong
    value or type is refused at load, naming config.json and the key (not a KeyError or a diffusers error later)."""
    save_model(random_bundle("tiny"), tmp_path / "m")
    cfile = tmp_path / "m" / "config.json"
    cfg = json.loads(cfile.read_text())
    good = {**cfg, "diffusion": {**cfg.get("diffusion", {}), "timestep_spacing": "trailing"},
            "info": {**cfg["info"], "distilled": {"teacher": "t", "steps": 4, "scheduler": "ddim", "iterations": 9}}}
    cfile.write_text(json.dumps(good))
    assert load_model(tmp_path / "m").diffusion.timestep_spacing == "trailing"  # what export writes loads
    bad = {**good, **{k: {**good[k], **v} for k, v in change.items()}}
    cfile.write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match=r"config\.json: .*" + message):
        load_model(tmp_path / "m")
