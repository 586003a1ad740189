"""HumanML3D / KIT-ML readers: caption tags, item construction (spec §1.3), statistics lookup, the training
reader's item dicts (same keys as MotionData), and the training entry point's dataset selection."""

import json

import numpy as np
import pytest

from salad_model.training import train
from salad_model.training.data import humanml3d as H

pytestmark = pytest.mark.usefixtures("one_thread")


def _write(root, motions: dict[str, int], texts: dict[str, list[str]], split: list[str], dim: int = 263):
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    rng = np.random.default_rng(0)
    for mid, n in motions.items():
        np.save(root / "new_joint_vecs" / f"{mid}.npy", rng.normal(size=(n, dim)).astype(np.float32))
    for mid, lines in texts.items():
        (root / "texts" / f"{mid}.txt").write_text("\n".join(lines) + "\n")
    for s in H.SPLITS:
        (root / f"{s}.txt").write_text("\n".join(split) + "\n")


def test_caption_line_tags():
    c = H.parse_caption_line("a man walks.#a/DET man/NOUN walk/VERB#nan#nan\n")
    assert c.text == "a man walks." and c.tokens == ["a/DET", "man/NOUN", "walk/VERB"] and c.whole
    c = H.parse_caption_line("sits#sit/VERB#0.0#1.5")
    assert not c.whole and (c.start, c.end) == (0.0, 1.5)
    with pytest.raises(ValueError, match="4"):
        H.parse_caption_line("no tags here#no/DET")


def test_item_construction_rules(tmp_path):
    root = tmp_path / "humanml3d"
    _write(root, {"000000": 120, "000001": 30, "000002": 200, "000003": 150, "000004": 60},
           {"000000": ["walk#walk/VERB#0.0#0.0", "sit#sit/VERB#1.5#4.0", "tiny#tiny/ADJ#0.0#1.0"],
            "000001": ["short#short/ADJ#0.0#0.0"],
            "000002": ["long#long/ADJ#0.0#0.0", "sub#sub/NOUN#1.0#3.0"],
            "000003": ["only a part#part/NOUN#0.29#2.6", "tail#tail/NOUN#6.0#12.0"],
            "000004": ["broken line"]},
           ["000000", "000001", "000002", "000003", "000004", "missing"])
    with pytest.warns(UserWarning, match="skipped 2 of 6"):  # missing file, malformed caption line
        items, motions = H.build_items(root, "test", 40, seed=0)
    got = [(c.source_id, c.start, c.length, c.captions) for c in items]
    assert got == [
        ("000000", 30, 50, ["sit"]),  # sub-clip (1.5–4.0 s at 20 fps) first, then the whole motion
        ("000000", 0, 120, ["walk"]),  # the 20-frame sub-clip was dropped
        ("000003", 5, 47, ["only a part"]),  # int() truncation; the 30-frame tail is too short; no whole item
    ]
    assert set(motions) == {"000000", "000003"}  # 30 and 200 frames fail the whole-motion filter
    with pytest.warns(UserWarning):
        kit_items, _ = H.build_items(root, "test", 24, seed=0)
    assert ("000003", 120, 30) in [(c.source_id, c.start, c.length) for c in kit_items]  # 24 ≤ 30 for KIT


def test_stats_lookup_and_training_items(tmp_path):
    data = tmp_path / "repo" / "dataset" / "humanml3d"
    mean, std = H.write_synthetic(data, n_motions=12, seed=2)
    with pytest.raises(FileNotFoundError, match="Mean.npy/Std.npy differ"):
        H.find_stats(data, "humanml3d")
    meta = tmp_path / "repo" / "checkpoints" / "t2m" / "Comp_v6_KLD005" / "meta"
    meta.mkdir(parents=True)
    np.save(meta / "mean.npy", mean)
    np.save(meta / "std.npy", std)
    m, s = H.find_stats(data, "humanml3d")  # found next to the dataset, as in the reference repository
    assert np.array_equal(m, mean) and np.array_equal(s, std)
    with pytest.raises(ValueError, match="expected \\(251,\\)"):
        H.find_stats(data, "kit", meta)

    den = H.HumanML3DData(data, "train", "humanml3d", stage="denoiser")
    vae = H.HumanML3DData(data, "train", "humanml3d", stage="vae")
    keys = {"name", "content", "style", "mirrored", "features", "captions", "heldout"}
    assert den.items and all(keys <= set(it) for it in den.items)
    assert all(40 <= len(it["features"]) < 200 and it["captions"] for it in den.items)
    assert any(it["mirrored"] for it in vae.items)  # M ids are read as they are (already mirrored)
    ids = H.read_split(data, "train")
    assert len(vae.items) == len([i for i in ids if (data / "new_joint_vecs" / f"{i}.npy").is_file()])
    raw = np.load(data / "new_joint_vecs" / f"{vae.items[0]['name']}.npy")
    assert np.allclose(vae.items[0]["features"], (raw - mean) / std, atol=1e-6)
    assert vae.windows(64) and all(s + 64 <= len(vae.items[i]["features"]) for i, s in vae.windows(64))

    cfg = {**train.load_config("t2m_reference"), "stats_dir": str(meta)}
    assert isinstance(train.open_data(cfg, data, "train", "vae"), H.HumanML3DData)
    assert train.load_config("kit_reference")["vae"]["dataset"] == "kit"


def test_kit_layout_trains_a_step(tmp_path):
    """KIT-ML (251-dim, 21 joints, 24-frame minimum) through the same entry point and loop."""
    data = tmp_path / "dataset" / "kit-ml"
    mean, std = H.write_synthetic(data, n_motions=10, dataset="kit", seed=3)
    assert np.load(data / "new_joint_vecs" / "00000.npy").shape[1] == 251
    meta = tmp_path / "meta"
    meta.mkdir()
    np.save(meta / "mean.npy", mean)
    np.save(meta / "std.npy", std)
    cfg = train.load_config("kit_reference")
    cfg["vae"].update(latent_dim=8)
    cfg["vae_train"].update(batch=2, window=16, warmup=2)
    (tmp_path / "kit.json").write_text(json.dumps(cfg))
    out = tmp_path / "run"
    assert train.main(["vae", "--config", str(tmp_path / "kit.json"), "--dataset", "kit", "--stats", str(meta),
                       "--data", str(data), "--out", str(out), "--iters", "1", "--threads", "1"]) == 0
    row = (out / "vae" / "log.csv").read_text().splitlines()[-1].split(",")
    assert row[0] == "1" and np.isfinite(float(row[1]))
