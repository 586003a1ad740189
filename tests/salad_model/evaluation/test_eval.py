"""Evaluation: classifier shapes and invariances, metric functions with known answers, CLI end to end."""

import argparse
import json
import math

import numpy as np
import pytest
import torch

from salad_model.evaluation import edit_stats as edits
from salad_model.evaluation import eval as ev
from salad_model.evaluation import generated as gen
from salad_model.evaluation import metrics as met
from salad_model.evaluation import report_plots as plots
from salad_model.evaluation import shots as shots_eval
from salad_model.evaluation.classifier import (
    ClassifierConfig,
    MotionClassifier,
    accuracy,
    canonical_style,
    generation_frames,
    load_classifier,
    save_classifier,
    train_classifier,
)


@pytest.fixture(scope="module")
def mini_classifier(mini_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("clf")
    _, summary = train_classifier(mini_dataset, out, max_steps=4, batch=8, eval_every=2, hidden=16, log=lambda s: None)
    return out, summary


def _config() -> ClassifierConfig:
    return ClassifierConfig(contents=["walk", "wave-left-hand", "wave-right-hand"], styles=["normal", "old"],
                            dataset_styles={"2": ["normal", "old"]}, hidden=16, embed_dim=8)


# --- classifier ---------------------------------------------------------------------------------


def test_classifier_shapes_and_padding_is_ignored():
    torch.manual_seed(0)
    clf = MotionClassifier(_config()).eval()
    x = torch.randn(3, 50, 263)
    c, s, e = clf(x)
    assert c.shape == (3, 3) and s.shape == (3, 2) and e.shape == (3, 8)
    # A clip padded with garbage beyond its mask gives the same output as the clip alone (1e-5).
    padded = torch.cat([x[:1], torch.randn(1, 30, 263) * 100], dim=1)
    mask = torch.zeros(1, 80, dtype=torch.bool)
    mask[:, :50] = True
    _, _, e_pad = clf(padded, mask)
    assert torch.allclose(e_pad, e[:1], atol=1e-5)


def test_classifier_save_load_roundtrip(tmp_path):
    torch.manual_seed(1)
    clf = MotionClassifier(_config(), mean=np.full(263, 0.5), std=np.full(263, 2.0)).eval()
    save_classifier(clf, tmp_path)
    back = load_classifier(tmp_path)
    assert back.config.contents == clf.config.contents and back.config.dilations == (1, 2, 4, 8)
    x = torch.randn(2, 40, 263)
    # Weights are stored as float16: outputs agree to float16 precision.
    assert torch.allclose(back(x)[0], clf(x)[0], atol=2e-2)
    assert torch.equal(back.mean, clf.mean)
    kb = (tmp_path / "classifier.safetensors").stat().st_size / 1024
    assert kb < 100  # the tiny test config; the shipped one is a few hundred KB


def test_side_scores_and_within_dataset_style():
    clf = MotionClassifier(_config())
    prob = np.array([[0.1, 0.8, 0.1], [0.2, 0.1, 0.7], [1.0, 0.0, 0.0]])
    assert np.allclose(clf.side_scores(prob), [0.7, -0.6, 0.0])
    clf.config.styles = ["normal", "old", "happy"]
    clf.config.dataset_styles = {"2": ["normal", "old"]}
    sp = np.array([[0.1, 0.3, 0.6]])
    assert clf.style_within(sp, [2])[0] == 1  # "happy" is not a dataset-2 style: next best in the set
    assert clf.style_within(sp, [1])[0] == 2  # no set known for dataset 1: plain argmax
    assert canonical_style("elderly") == "old" and canonical_style("happy") == "happy"


def test_generation_frames_rule():
    assert generation_frames(13) == 40 and generation_frames(81) == 80 and generation_frames(83) == 84
    assert generation_frames(1267) == 196


# --- metric functions with known answers --------------------------------------------------------


def test_frechet_identical_is_zero_and_shift_is_squared_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 6))
    assert abs(met.frechet_distance(a, a)) < 1e-8
    # Same covariance, mean shifted by d: FD = |d|^2 (= 5.0 here); sampling error at n=20000 is ~2%.
    d = np.array([1.0, 2.0, 0, 0, 0, 0])
    x, y = rng.normal(size=(20000, 6)), rng.normal(size=(20000, 6)) + d
    assert met.frechet_distance(x, y) == pytest.approx(5.0, rel=0.05)
    # Isotropic covariances σ1² I vs σ2² I: FD = D (σ1 − σ2)² = 6 · 1 = 6.
    x2, y2 = rng.normal(size=(20000, 6)), 2 * rng.normal(size=(20000, 6))
    assert met.frechet_distance(x2, y2) == pytest.approx(6.0, rel=0.05)


def test_frechet_rank_deficient_is_finite_and_nonnegative():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(20, 64)), rng.normal(size=(30, 64))  # fewer samples than dimensions
    v = met.frechet_distance(a, b)
    assert math.isfinite(v) and v > 0


def test_diversity_matches_expected_pair_distance():
    # For x, y ~ N(0, σ² I_d): E|x − y| = 2σ Γ((d+1)/2) / Γ(d/2)  (σ=1.5, d=8 → ≈ 5.86).
    rng = np.random.default_rng(0)
    sigma, d = 1.5, 8
    f = rng.normal(scale=sigma, size=(5000, d))
    expected = 2 * sigma * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))
    assert met.diversity(f, n_pairs=20000) == pytest.approx(expected, rel=0.03)
    assert met.diversity(np.ones((10, 3))) == 0.0  # identical samples: no diversity
    two = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert met.diversity(two, n_pairs=50) == pytest.approx(5.0)  # pairs are always distinct samples


def test_accuracy_spearman_mpjpe_speed():
    assert accuracy(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    assert math.isnan(accuracy(np.array([]), np.array([])))
    assert met.spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert met.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(met.spearman([1, 2, 3], [5, 5, 5]))
    rng = np.random.default_rng(0)
    j = rng.normal(size=(10, 22, 3))
    moved = j + np.array([3.0, 0.0, -2.0])  # a global translation is invisible after root alignment
    assert np.allclose(met.root_aligned_mpjpe(moved, j), 0)
    k = j.copy()
    k[:, 5] += np.array([0.0, 0.22, 0.0])  # one joint off by 22 cm → mean over 22 joints = 1 cm
    assert np.allclose(met.root_aligned_mpjpe(k, j), 0.01)
    walk = np.zeros((21, 22, 3))
    walk[:, :, 2] = np.arange(21)[:, None] * 0.05  # 5 cm per frame at 20 fps = 1 m/s
    assert met.root_speed(walk, 20.0) == pytest.approx(1.0)


def test_geometric_side_sign():
    j = np.zeros((40, 22, 3))
    j[:, 20, 1] = np.linspace(1.0, 1.9, 40)  # left wrist goes up, right stays at 1 m
    j[:, 21, 1] = 1.0
    assert met.geometric_side(j) > 0.5
    from salad_model.motion.motion_process import mirror_joints

    assert met.geometric_side(mirror_joints(j)) < -0.5


def test_read_log_with_late_column(tmp_path):
    """The VAE log's header lacks val_mpjpe_m, which only appears on every 10th row."""
    p = tmp_path / "log.csv"
    p.write_text("iter,loss\n50,1.0\n100,0.5,0.03\n150,0.4\n")
    cols = plots.read_log(p)
    assert cols["iter"].tolist() == [50, 100, 150]
    assert np.isnan(cols["val_mpjpe_m"][0]) and cols["val_mpjpe_m"][1] == pytest.approx(0.03)


# --- end to end ----------------------------------------------------------------------------------


def test_classifier_training_on_mini_dataset(mini_classifier):
    folder, summary = mini_classifier
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format"] == "salad-motion-classifier-v1"
    assert set(cfg["contents"]) >= {"raise-up-left-hand", "raise-up-right-hand", "walk-turn-left"}
    for k in ("content_acc", "style_acc", "lr_acc"):
        assert 0.0 <= summary["test"][k] <= 1.0
    assert summary["trained_steps"] == 4


def test_eval_cli_end_to_end(tiny_model_dir, mini_dataset, mini_classifier, tmp_path, capsys):
    """--limit 4 --steps 2 on the tiny random model: the report has every metric, plots are written."""
    folder, _ = mini_classifier
    out = tmp_path / "report.json"
    rc = ev.main(["--model", str(tiny_model_dir), "--data", str(mini_dataset), "--classifier", str(folder),
                  "--limit", "4", "--steps", "2", "--batch", "2", "--edits", "--edit-seeds", "2",
                  "--edit-frames", "40", "--threads", "1", "--out", str(out), "--markdown", str(tmp_path / "t.md")])
    assert rc == 0
    rep = json.loads(out.read_text())
    g = rep["generation"]
    test_clips = [c for c in json.loads((mini_dataset / "clips.json").read_text()) if c["split"] == "test"]
    assert g["n"] == min(4, len(test_clips)) and len(g["samples"]) == g["n"]
    for s in g["samples"]:
        assert s["frames"] % 4 == 0 and 40 <= s["frames"] <= 196
        assert s["caption"] in json.loads((mini_dataset / "captions.json").read_text())[s["name"]]["heldout"]
    for key in ("content_acc", "style_acc", "lr_acc"):
        assert 0.0 <= g["generated"][key] <= 1.0
    assert g["fid"] is None or g["fid"] >= 0  # None (JSON null) when fewer than 2 samples
    assert rep["vae"]["mpjpe_cm"] > 0 and rep["vae"]["clips"] == len(test_clips)
    assert 0.0 <= g["vae_roundtrip_same_clips"]["content_acc"] <= 1.0
    e = rep["edits"]
    assert e["mirror"]["method"] == "geometric" and e["mirror_attention"]["method"] == "attention"
    # the geometric mirror IS the exact feature mirror, so the classifier sees the same flips
    assert e["mirror"]["flip_rate"] == e["mirror"]["exact_feature_mirror_flip_rate"]
    assert e["mirror"]["n"] == 2 and len(e["reweight"]) == len(edits.REWEIGHTS) and len(e["style_swap"]) == 3
    assert all(len(r["mean_by_scale"]) == len(edits.REWEIGHT_SCALES) for r in e["reweight"])
    assert "content accuracy" in capsys.readouterr().out
    md = (tmp_path / "t.md").read_text()
    assert "| content accuracy / ceiling |" in md and "| left/right classification flipped" in md
    img = tmp_path / "img"
    assert ev.main(["plots", "--run", str(tmp_path / "norun"), "--report", str(out), "--classifier", str(folder),
                    "--img", str(img)]) == 0
    names = {p.name for p in img.glob("*.png")}
    assert {"accuracy_content.png", "accuracy_style.png", "confusion_content.png", "editing.png"} <= names


def test_plots_loss_curves(tmp_path):
    run = tmp_path / "run"
    (run / "vae").mkdir(parents=True)
    (run / "vae" / "log.csv").write_text("iter,loss,recon,pos,vel,kl,lr,sec\n"
                                         "50,1.0,0.5,0.5,0.4,0.04,1e-4,30\n100,0.8,0.4,0.4,0.3,0.05,2e-4,60,0.05\n")
    (run / "denoiser").mkdir()
    (run / "denoiser" / "log.csv").write_text("")  # just started: no rows yet, no plot, no error
    paths = plots.plot_losses(run, tmp_path)
    assert [p.name for p in paths] == ["loss_vae.png"] and paths[0].stat().st_size > 1000
    cost = plots.training_cost(plots.read_log(run / "vae" / "log.csv"))
    assert cost == {"iterations": 100, "seconds": 60.0, "segments": 1, "seconds_per_iteration": 0.6}


def test_training_cost_sums_resumed_segments():
    cols = {"iter": np.array([50, 100, 150, 200]), "sec": np.array([40.0, 80.0, 30.0, 70.0])}  # resumed at 100
    assert plots.training_cost(cols)["seconds"] == 150.0 and plots.training_cost(cols)["segments"] == 2


def test_vae_subcommand_reads_a_training_checkpoint(mini_dataset, mini_classifier, tmp_path):
    """`eval vae` needs only runs/<name>/vae/latest.pt (interim numbers while the denoiser trains)."""
    from salad_model.training import train

    cfg = train.load_config("demo")
    cfg["vae"].update(latent_dim=8)
    cfg["vae_train"].update(batch=4, window=16, warmup=2)
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    train.train_vae(cfg, mini_dataset, tmp_path / "run", iters=1)
    out = tmp_path / "vae.json"
    assert ev.main(["vae", "--run", str(tmp_path / "run"), "--config", str(cfg_path), "--data", str(mini_dataset),
                    "--classifier", str(mini_classifier[0]), "--threads", "1", "--out", str(out),
                    "--extra-data", str(mini_dataset)]) == 0
    rep = json.loads(out.read_text())
    assert rep["vae"]["iteration"] == 1 and rep["vae"]["mpjpe_cm"] > 0
    # --extra-data: every clip of another built dataset, per clip (the DeepMimic clips of issue 19)
    extra = rep["vae_extra"][str(mini_dataset)]
    names = [c["name"] for c in json.loads((mini_dataset / "clips.json").read_text())]
    assert sorted(extra["per_clip_cm"]) == sorted(names) and extra["clips"] == len(names)
    test_names = [c["name"] for c in json.loads((mini_dataset / "clips.json").read_text()) if c["split"] == "test"]
    assert np.mean([extra["per_clip_cm"][n] for n in test_names]) == pytest.approx(rep["vae"]["mpjpe_clip_mean_cm"],
                                                                                  rel=1e-4)
    assert set(rep["vae_roundtrip_classification"]["real"]) == {"content_acc", "style_acc",
                                                                "style_acc_within_dataset", "lr_acc"}


# --- real motion (issue #7) ----------------------------------------------------------------------


def _real_row(content: str, style: str, **pred) -> dict:
    keys = ("real", "vae", "ddim_rec", "ddim_swap", "ddim_mirror_attention", "null_text_rec", "null_text_swap",
            "null_text_mirror_attention", "mirror_geometric")
    pc = {k: pred.get(f"c_{k}", content) for k in keys}
    ps = {k: pred.get(f"s_{k}", style) for k in keys}
    side = {k: pred.get(f"side_{k}", 0.5) for k in keys}
    row = {"content": content, "style": style, "target_style": "active", "mpjpe_vae_m": 0.02, "mpjpe_ddim_m": 0.025,
           "mpjpe_null_text_m": 0.03, "pred_content": pc, "pred_style": ps, "side": side}
    if pred.get("null_text") is False:  # null-text inversion not run on this clip
        del row["mpjpe_null_text_m"]
        for d in (pc, ps, side):
            for k in [k for k in d if k.startswith("null_text")]:
                del d[k]
    return row


def test_wilson_interval_known_values():
    from salad_model.evaluation.eval_real import wilson_interval

    lo, hi = wilson_interval(16, 24)  # 66.7%: the 24-clip run of session 2; by hand (z = 1.96): 0.4671, 0.8203
    assert lo == pytest.approx(0.4671, abs=2e-4) and hi == pytest.approx(0.8203, abs=2e-4)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_real_summary_counts_intended_edits():
    """Known answers: a swap succeeds only with the target style AND the content label; a mirror when the
    edit is classified as the mirrored label (and, for one-handed clips, the side score changes sign)."""
    from salad_model.evaluation.eval_real import format_real_markdown, summarize_real

    rows = [
        _real_row("raise-up-left-hand", "old", s_ddim_swap="active", c_mirror_geometric="raise-up-right-hand",
                  side_mirror_geometric=-0.4, c_ddim_mirror_attention="raise-up-right-hand",
                  side_ddim_mirror_attention=-0.1),
        _real_row("raise-up-left-hand", "old", s_ddim_swap="active", c_ddim_swap="wave-left-hand",
                  c_mirror_geometric="raise-up-right-hand", side_mirror_geometric=-0.9),
        _real_row("walk", "tired", s_ddim_swap="normal", c_mirror_geometric="walk"),
        _real_row("run", "normal", c_ddim_rec="walk", s_ddim_swap="active", c_mirror_geometric="walk"),
    ]
    r = summarize_real(rows, 50, 10, 1.0)
    d = r["ddim"]
    assert r["n"] == 4 and r["hand_clips"] == 2
    assert r["mpjpe_vae_cm"] == pytest.approx(2.0) and d["mpjpe_adds_cm"] == pytest.approx(0.5)
    assert r["null_text"]["mpjpe_adds_cm"] == pytest.approx(1.0)
    assert d["swap_target_style"] == 0.75 and d["swap_content_kept"] == 0.75 and d["swap_success"] == 0.5
    assert d["swap_style_changed"] == 1.0 and d["content_kept"] == 0.75
    assert r["mirror_geometric_success"] == 0.75  # the run mirrored into a walk is a failure
    assert r["mirror_geometric_side_flipped_hand"] == 1.0
    assert d["mirror_attention_success"] == 0.75  # hand clip 1 flipped; walk and run are their own mirrors
    assert d["mirror_attention_side_flipped_hand"] == 0.5
    assert d["n"] == 4 and d["swap_success_ci95"][0] < 0.5 < d["swap_success_ci95"][1]
    assert d["swap_by_pair"]["old → active"] == {"n": 2, "success": 0.5, "target_style": 1.0, "content_kept": 0.5}
    assert d["swap_by_pair"]["tired → active"]["success"] == 0.0
    md = format_real_markdown(r)
    assert "| **inversion adds on top of the VAE (goal < 2 cm)** | **+0.50 cm** | **+1.00 cm** |" in md
    assert "**style swap: target style and content kept (goal ≥ 70%)** | **50.0%** (95% CI 15–85%) |" in md
    assert "| old → active | 2 | 50.0% | 100.0% | 50.0% |" in md


def test_real_summary_null_text_on_a_subset():
    """Null-text inversion may cover only some clips: its columns use those rows, VAE reference included."""
    from salad_model.evaluation.eval_real import format_real_markdown, summarize_real

    rows = [_real_row("walk", "old", s_ddim_swap="active", s_null_text_swap="active"),
            _real_row("run", "old", s_ddim_swap="active", null_text=False),
            _real_row("walk", "tired", null_text=False)]
    rows[1]["mpjpe_vae_m"] = 0.05
    r = summarize_real(rows, 50, 10, 1.0)
    assert r["ddim"]["n"] == 3 and r["null_text"]["n"] == 1
    assert r["null_text"]["swap_success"] == 1.0 and r["ddim"]["swap_success"] == pytest.approx(2 / 3)
    assert r["null_text"]["mpjpe_vae_cm"] == pytest.approx(2.0)
    assert r["null_text"]["mpjpe_adds_cm"] == pytest.approx(1.0)
    assert r["ddim"]["mpjpe_vae_cm"] == pytest.approx(3.0)
    assert "null-text inversion with 10 iterations per step on 1 of them" in format_real_markdown(r)


def test_eval_real_cli_end_to_end(tiny_model_dir, mini_dataset, mini_classifier, tmp_path):
    folder, _ = mini_classifier
    out, md = tmp_path / "real.json", tmp_path / "real.md"
    assert ev.main(["real", "--model", str(tiny_model_dir), "--data", str(mini_dataset), "--classifier", str(folder),
                    "--limit", "2", "--steps", "3", "--null-text-iters", "1", "--null-text-limit", "1", "--threads",
                    "1", "--out", str(out),
                    "--markdown", str(md)]) == 0
    r = json.loads(out.read_text())["real"]
    assert r["n"] == 2 and len(r["rows"]) == 2 and r["null_text"]["n"] == 1
    nt = [row for row in r["rows"] if "mpjpe_null_text_m" in row]
    assert len(nt) == 1 and nt[0]["mpjpe_null_text_m"] > 0
    for row in r["rows"]:
        assert row["frames"] % 4 == 0 and row["caption"] != row["edit_caption"]
        assert row["mpjpe_vae_m"] > 0 and row["mpjpe_ddim_m"] > 0
        keys = {"real", "vae", "ddim_rec", "ddim_swap", "ddim_mirror_attention", "mirror_geometric"}
        if row is nt[0]:
            keys |= {"null_text_rec", "null_text_swap", "null_text_mirror_attention"}
        assert set(row["pred_content"]) == keys
    assert "inversion adds on top of the VAE" in md.read_text()


def test_eval_shots_cli_end_to_end(tiny_model_dir, mini_dataset, mini_classifier, tmp_path):
    """`eval shots` through eval's model runner: a timeline's seams and segments, joins, the report files."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(mini_dataset, data)
    clips = json.loads((data / "clips.json").read_text())
    for c in clips:  # the shot evaluation draws three test clips of at least 44 frames: the six walk takes
        if "walk" in c["name"]:
            c["split"] = "test"
    (data / "clips.json").write_text(json.dumps(clips))
    folder, _ = mini_classifier
    out, md = tmp_path / "shots.json", tmp_path / "shots.md"
    assert ev.main(["shots", "--model", str(tiny_model_dir), "--data", str(data), "--classifier", str(folder),
                    "--timelines", "1", "--joins", "1", "--parts", "0", "--no-cost", "--steps", "2", "--threads", "1",
                    "--seed", "3", "--out", str(out), "--markdown", str(md),
                    "--singles-cache", str(tmp_path / "singles.json")]) == 0
    rep = json.loads(out.read_text())
    assert rep["model"]["name"] == "random-tiny" and rep["command"].startswith("python -m salad_model.evaluation.eval")
    s = rep["shots"]
    assert s["settings"]["timelines"] == 1 and s["settings"]["seed"] == 3
    assert s["settings"]["trim_last"] is True  # the director's default, as it ran; --no-trim-last: the old rows
    parser = argparse.ArgumentParser()
    shots_eval.add_arguments(parser)
    assert parser.parse_args([]).trim_last is None and parser.parse_args(["--no-trim-last"]).trim_last is False
    assert s["timelines"]["segments"] == 3 and s["timelines"]["seams"] == 2  # three segments, two hand-overs
    assert s["continuation"]["seams"] == 1 and s["inbetween"]["seams"] == 2  # in-between: both ends
    t = s["timelines"]  # the content measure's spread: by position (mean = the whole rate), another seed's singles
    assert len(t["content_acc_by_position"]) == 3
    assert np.mean(t["content_acc_by_position"]) == pytest.approx(t["content_acc_segments"])
    # the denominator pools both single-clip seeds; the interval brackets the ratio
    assert t["content_acc_single_clips"] == pytest.approx(np.mean(t["content_acc_single_clips_by_seed"]))
    assert np.array(t["single_hits"]).shape == (1, 1, 3, 2) and np.array(t["segment_hits"]).shape == (1, 1, 3)
    lo, hi = t["content_ratio_interval90"]
    assert lo <= hi
    # like for like: each single clip as long as the frames classified for its segment (the first segment's
    # span runs past its nominal end, the last one's stops at the shot's end), two seeds each, all cached
    lengths = [b - a for a, b in t["segment_spans"]]
    assert t["single_clip_frames"] == lengths and t["segment_spans"][0][1] == t["segment_spans"][1][0]
    cached = json.loads((tmp_path / "singles.json").read_text())
    assert len(cached) == 6 and sorted(int(k.split("|")[2]) for k in cached) == sorted(lengths * 2)
    from salad_model.runtime.integrity import weights_digest  # keyed by the model's weights (the folder's sha256)

    assert {k.split("|")[0].split("+")[0] for k in cached} == {weights_digest(tiny_model_dir)}
    assert "parts" not in s and "cost" not in s
    assert "By position in the timeline" in md.read_text()
    assert md.read_text().startswith("Shots (`python -m salad_model.evaluation.eval shots`): 1 three-segment")


def test_generated_metrics_on_validation_clips(tiny_pipeline, mini_dataset, mini_classifier):
    """--split val generates for validation clips only (where the guidance scale is chosen)."""
    folder, _ = mini_classifier
    clf = load_classifier(folder)
    g = gen.generated_metrics(tiny_pipeline, clf, mini_dataset, limit=2, steps=2, batch=2, split="val",
                              log=lambda s: None)
    val = {c["name"] for c in json.loads((mini_dataset / "clips.json").read_text()) if c["split"] == "val"}
    assert g["split"] == "val" and g["n"] == min(2, len(val)) and {s["name"] for s in g["samples"]} <= val
    assert g["guider"] is None  # plain CFG: the tiny model's config names no guider
    r = gen.generated_metrics(tiny_pipeline, clf, mini_dataset, limit=2, steps=2, batch=2, split="val",
                              log=lambda s: None, guider="rescale:phi=0.7")  # what eval --guider passes
    assert r["guider"] == {"kind": "rescale", "phi": 0.7}
    job = ("name", "caption", "seed", "frames")  # same clips, captions and seeds: only the guidance differs
    assert [[s[k] for k in job] for s in r["samples"]] == [[s[k] for k in job] for s in g["samples"]]
