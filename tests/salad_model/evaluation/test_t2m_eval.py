"""T2M evaluator: golden parity (networks, word vectors, dataset, metrics, protocol), safe vocabulary files,
official-layout loading, and an end-to-end train → evaluate run on a synthetic HumanML3D-layout dataset.

Golden files (tests/data/golden_evaluator, copied from shared/golden/evaluator) were produced by the reference
code; tolerances follow their README: 1e-5 absolute on embeddings, 1e-6 relative on metrics.
"""

import json
import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from testdata import DATA

from salad_model.evaluation.t2m_eval import metrics as M
from salad_model.evaluation.t2m_eval.dataset import EvalDataset, EvalLoader, collate
from salad_model.evaluation.t2m_eval.networks import (
    CheckpointError,
    EvaluatorConfig,
    T2MEvaluator,
    config_from_state,
    load_evaluator,
    save_evaluator,
)
from salad_model.evaluation.t2m_eval.protocol import SUMMARY_KEYS, run_protocol
from salad_model.evaluation.t2m_eval.wordvec import (
    POS_ENUMERATOR,
    PickleRefused,
    WordVectorizer,
    read_vocab,
    write_vocab,
)

GOLD = DATA / "golden_evaluator"
EMB_ATOL = 1e-5
REL = 1e-6


pytestmark = pytest.mark.usefixtures("one_thread")


def gold(name: str):
    return torch.load(GOLD / name, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def inputs():
    d = gold("eval_inputs.pt")
    d["word_embs"], d["motions"] = d["word_embs"].float(), d["motions"].float()  # exact float16 values
    return d


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# ------------------------------------------------------------------------------------------------
# Networks


def _check_forward(model: T2MEvaluator, inputs: dict, ref: dict, motions: torch.Tensor) -> dict[str, float]:
    args = (inputs["word_embs"], inputs["pos_ohot"], inputs["cap_lens"])
    text, mot = model.get_co_embeddings(*args, motions, inputs["m_lens"])
    align = model.align_index(inputs["m_lens"])
    assert align.tolist() == ref["align_idx"].tolist()
    errs = {"text_emb": (text - ref["text_emb"]).abs().max().item(),
            "motion_emb": (mot - ref["motion_emb"]).abs().max().item(),
            "motion_emb_only": (model.get_motion_embeddings(motions, inputs["m_lens"])
                                - ref["motion_emb_only"]).abs().max().item()}
    with torch.no_grad():
        tb = model.text_encoder(*args)
        errs["text_emb_batch_order"] = (tb - ref["text_emb_batch_order"]).abs().max().item()
        if "movements" in ref:
            mv = model.movement_encoder(motions[torch.from_numpy(align)][..., :-4])
            errs["movements"] = (mv - ref["movements"]).abs().max().item()
    if "motion_emb_onespad" in ref:
        ones = motions.clone()
        for i, n in enumerate(inputs["m_lens"].tolist()):
            ones[i, n:] = 1.0
        errs["motion_emb_onespad"] = (model.get_motion_embeddings(ones, inputs["m_lens"])
                                      - ref["motion_emb_onespad"]).abs().max().item()
    return errs


def test_small_evaluator_forward_matches_golden(inputs):
    ckpt = gold("small_finest.tar")
    ref = gold("small_forward.pt")
    cfg = config_from_state(ckpt)
    assert cfg.to_dict() == {**ref["config"], "dim_pose": 263, "max_text_len": 20}
    model = T2MEvaluator(cfg, reference_init=False)
    for name in ("movement_encoder", "text_encoder", "motion_encoder"):
        getattr(model, name).load_state_dict(ckpt[name], strict=True)
    errs = _check_forward(model, inputs, ref, inputs["motions"])
    assert max(errs.values()) < EMB_ATOL, errs


def _recipe_weights(model: T2MEvaluator, table: list[dict]) -> None:
    """The README's seed-0 recipe: randn per tensor in stored order, power-of-two scales."""
    torch.manual_seed(0)
    rows = iter(table)
    for module in ("movement_encoder", "text_encoder", "motion_encoder"):
        sd = getattr(model, module).state_dict()
        for key, old in sd.items():
            t = torch.randn(old.shape)
            if key == "hidden":
                t, scale, offset = t * 0.5, 0.5, 0.0
            elif key == "output_net.1.weight":
                t, scale, offset = t * 0.125 + 1.0, 0.125, 1.0
            elif key == "output_net.1.bias":
                t, scale, offset = t * 0.125, 0.125, 0.0
            elif "bias" in key:
                t, scale, offset = t * 0.0625, 0.0625, 0.0
            else:
                fan_in = math.prod(old.shape[1:])
                scale = 2.0 ** -math.ceil(math.log2(math.sqrt(fan_in)))
                t, offset = t * scale, 0.0
            row = next(rows)
            assert (row["module"], row["key"], tuple(row["shape"])) == (module, key, tuple(old.shape))
            assert (row["scale"], row["offset"]) == (scale, offset)
            assert t.flatten()[:4].tolist() == pytest.approx(row["first4"], abs=1e-7)
            assert t.double().sum().item() == pytest.approx(row["sum"], rel=1e-9, abs=1e-6)
            sd[key] = t
        getattr(model, module).load_state_dict(sd, strict=True)


@pytest.mark.parametrize("bench", ["t2m", "kit"])
def test_full_size_evaluator_matches_golden(inputs, bench, tmp_path):
    ref = gold(f"full_{bench}_forward.pt")
    dim = 263 if bench == "t2m" else 251
    model = T2MEvaluator(EvaluatorConfig(dim_pose=dim), reference_init=False)
    assert sum(p.numel() for p in model.parameters()) == (21_690_560 if bench == "t2m" else 21_665_984)
    _recipe_weights(model, ref["weight_table"])
    # through the official layout and the strict weights-only loader
    save_evaluator(model, tmp_path, bench)
    loaded = load_evaluator(tmp_path, bench)
    motions = inputs["motions"] if bench == "t2m" else inputs["motions"][..., 12:]
    errs = _check_forward(loaded, inputs, ref, motions)
    assert max(errs.values()) < EMB_ATOL, errs
    with pytest.raises(CheckpointError, match="expects"):
        _wrong_dataset(tmp_path, bench)


def _wrong_dataset(root: Path, bench: str) -> None:
    other = "kit" if bench == "t2m" else "t2m"
    (root / "checkpoints" / bench).rename(root / "checkpoints" / other)
    load_evaluator(root, other)


def test_missing_evaluator_names_the_paths(tmp_path):
    with pytest.raises(CheckpointError, match="text_mot_match/model/finest.tar"):
        load_evaluator(tmp_path, "t2m")


def test_full_unpickling_of_finest_tar_needs_opt_in(tmp_path):
    import argparse

    torch.manual_seed(0)
    small = EvaluatorConfig(dim_movement_enc_hidden=8, dim_movement_latent=8, dim_text_hidden=8,
                            dim_motion_hidden=8, dim_coemb_hidden=4)
    base = save_evaluator(T2MEvaluator(small), tmp_path, "t2m")
    tar = base / "text_mot_match" / "model" / "finest.tar"
    torch.save({**torch.load(tar, weights_only=True), "opt": argparse.Namespace(lr=1e-4)}, tar)  # a pickled class
    with pytest.raises(CheckpointError, match="weights-only"):
        load_evaluator(tmp_path, "t2m")
    with pytest.warns(UserWarning, match="unpickling"):
        assert load_evaluator(tmp_path, "t2m", allow_pickle=True).config == small
    opt = base / "Comp_v6_KLD005" / "opt.txt"
    opt.write_text(opt.read_text().replace("dim_movement_latent: 8", "dim_movement_latent: 512"))
    with pytest.raises(CheckpointError, match="different evaluators"), pytest.warns(UserWarning):
        load_evaluator(tmp_path, "t2m", allow_pickle=True)


# ------------------------------------------------------------------------------------------------
# Metrics and protocol


def test_metric_functions_match_golden():
    g = gold("metrics.pt")
    r = g["rprec"]
    t, m = r["text_emb"].numpy(), r["motion_emb"].numpy()
    dist = M.euclidean_distance_matrix(t, m)
    assert np.allclose(dist, r["dist"].numpy(), rtol=REL, atol=0)  # float32 BLAS: bit-exact with 2 threads
    assert np.array_equal(M.top_k_matches(dist), r["topk_mat"].numpy())
    counts, trace = M.r_precision_counts(t, m)
    assert counts.tolist() == r["topk_counts"].tolist()
    assert np.allclose(counts / 32, r["R_precision"].numpy(), rtol=0, atol=1e-12)
    assert rel(trace, r["matching_trace_sum"]) < REL
    assert rel(float(M.matching_pairs(t, m).sum()), r["matching_pairs_sum"]) < REL

    f = g["fid"]
    a, b = f["setA"].float().numpy(), f["setB"].float().numpy()
    mu, cov = M.activation_statistics(a)
    assert mu.dtype == np.float32 and cov.dtype == np.float64
    assert np.array_equal(mu, f["muA"].numpy()) and np.allclose(cov[:8, :8], f["covA_block8"].numpy(), atol=1e-12)
    assert rel(M.fid(a, b), f["fid_AB"]) < REL and rel(M.fid(b, a), f["fid_BA"]) < REL
    assert abs(M.fid(a, a)) < 1e-6

    d = g["diversity"]
    np.random.seed(d["seed"])
    assert rel(M.diversity(a, 300), d["div_A"]) < REL and rel(M.diversity(b, 300), d["div_B"]) < REL
    np.random.seed(d["seed_small"])
    assert M.diversity_times(200) == 100 and rel(M.diversity(a[:200], 100), d["div_A200"]) < REL
    with pytest.raises(ValueError):
        M.diversity(a[:100], 100)

    mm = g["multimodality"]
    np.random.seed(mm["seed"])
    assert rel(M.multimodality(mm["activation"].float().numpy(), 10), mm["value"]) < REL
    mp = g["mpjpe"]
    assert np.allclose(M.mpjpe(mp["gt"].numpy(), mp["pred"].numpy()), mp["per_pose"].numpy(), atol=1e-6)
    mean, conf = M.mean_conf([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and conf == pytest.approx(1.96 * np.std([1, 2, 3, 4]) / 2)


class _StubEvaluator:
    """The golden protocol's evaluator stub: text = first word vector, motion = frame sum of 64 channels."""

    def get_co_embeddings(self, w, pos, cap, mot, m):
        return w[:, 0, :], mot[..., :64].sum(dim=1)


@pytest.mark.parametrize("cal_mm", [False, True])
def test_protocol_matches_golden(cal_mm):
    p = gold("protocol.pt")
    batches = [(p["word_embs"][b], torch.zeros(32, 1, 15), ["c"] * 32, torch.ones(32), p["motions"][b],
                p["m_lens"][b], ["t"] * 32) for b in range(4)]
    g = torch.Generator().manual_seed(p["gen_seed"])

    def gen(batch):
        return batch[4] + 0.5 * torch.randn(batch[4].shape, generator=g)

    res = run_protocol(_StubEvaluator(), batches, gen, lambda x: x * p["std"] + p["mean"],
                       repeat_time=p["repeat_time"], cal_mm=cal_mm, numpy_seed=p["numpy_seed"], echo=None)
    ref = p[f"cal_mm_{cal_mm}"]
    worst = {}
    for mine, want in zip(res.per_repetition, ref["per_repetition"], strict=True):
        got = {"fid": mine["fid"], "div": mine["div"], "top1": mine["top"][0], "top2": mine["top"][1],
               "top3": mine["top"][2], "matching": mine["matching"], "mae": mine["mae"], "mm": mine["mm"]}
        for k, v in got.items():
            worst[k] = max(worst.get(k, 0.0), rel(v, want[k]) if want[k] else abs(v))
    assert max(worst.values()) < REL, worst
    assert res.log == ref["log"]  # per-repetition lines and the summary block, character for character
    assert set(SUMMARY_KEYS) <= set(res.summary)
    assert (res.summary["multimodality"]["mean"] is None) == (not cal_mm)


# ------------------------------------------------------------------------------------------------
# Word vectors, dataset, loader


@pytest.fixture(scope="module")
def golden_dataset(tmp_path_factory):
    d = gold("dataset_pipeline.pt")
    root = tmp_path_factory.mktemp("golden_ds") / "dataset" / "humanml3d"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    for k, v in d["sources"].items():
        np.save(root / "new_joint_vecs" / f"{k}.npy", v.numpy())
    for k, lines in d["texts"].items():
        (root / "texts" / f"{k}.txt").write_text("\n".join(lines) + "\n")
    (root / "test.txt").write_text("\n".join(d["split_ids"]) + "\n")
    glove = write_vocab(root.parent.parent / "glove", d["vocab_vectors"].numpy(), d["vocab_word2idx"],
                        d["vocab_words"])
    return d, root, glove


def test_dataset_and_word_vectors_match_golden(golden_dataset):
    d, root, glove = golden_dataset
    wv = WordVectorizer(glove)
    with pytest.warns(UserWarning, match="009999"):
        ds = EvalDataset(root, "test", 40, wv, d["mean"].numpy(), d["std"].numpy())
    got = [(c.source_id, c.start, c.length, c.captions, [" ".join(t) for t in c.tokens]) for c in ds.items]
    want = [(i["source_id"], i["start_frame"], i["length"], i["captions"], i["tokens"]) for i in d["items"]]
    assert got == want
    samples = []
    for g in d["getitem"]:
        item = ds.items[g["index"]]
        s = ds.sample(g["index"], item.captions.index(g["caption"]), g["m_length"], g["crop_start"])
        assert (s.sent_len, s.tokens, s.m_length) == (g["sent_len"], g["tokens_joined"], g["m_length"])
        assert np.array_equal(s.word_embs, g["word_embeddings"].numpy())
        assert np.array_equal(s.pos_ohot, g["pos_one_hots"].numpy())
        if "motion" in g:
            assert np.allclose(s.motion, g["motion"].numpy(), atol=1e-6, rtol=0)
        samples.append(s)
    batch = collate(samples)
    assert batch.sent_len.tolist() == d["collate_sent_len"].tolist()
    assert batch.m_lens.tolist() == d["collate_m_length"].tolist()
    assert batch.captions == [samples[i].caption for i in d["collate_order"]]
    for probe in d["probes"]:
        vec, onehot = wv[probe["token"]]
        assert int(onehot.argmax()) == probe["pos_index"], probe
        assert np.array_equal(vec, d["vocab_vectors"][probe["word_row"]].numpy()), probe
    # random draws follow the reference's distributions: 4-frame units, 1/3 one unit less, crop in range
    draws = [ds.draw(3) for _ in range(300)]
    assert {m for _, m, _ in draws} == {116, 120} and all(0 <= s <= 120 - m for _, m, s in draws)
    assert 0.25 < np.mean([m == 116 for _, m, _ in draws]) < 0.42
    assert len({c for c, _, _ in draws}) == 2  # both captions of the two-caption motion


def test_word_vectorizer_rules(tmp_path):
    words = ["sos", "eos", "unk", "walk", "left", "dumbbell"]
    glove = write_vocab(tmp_path, np.eye(6, 300, dtype=np.float32), {w: i for i, w in enumerate(words)}, words)
    wv = WordVectorizer(glove)
    assert wv["left/VERB"][1].argmax() == POS_ENUMERATOR["Loc_VIP"]
    assert wv["dumbbell/NOUN"][1].argmax() == POS_ENUMERATOR["Obj_VIP"]  # in vocabulary here → VIP
    assert wv["zigzag/VERB"][1].argmax() == POS_ENUMERATOR["OTHER"] and wv["zigzag/VERB"][0][2] == 1.0
    assert wv["walk/PROPN"][1].argmax() == POS_ENUMERATOR["Act_VIP"]
    with pytest.raises(ValueError):
        wv["a/b/c"]
    emb, oh, n, toks = wv.encode_tokens(["walk/VERB"] * 25)
    assert n == 22 and len(toks) == 22 and toks[-1] == "eos/OTHER" and emb.shape == (22, 300)
    emb, oh, n, toks = wv.encode_tokens(["walk/VERB"])
    assert n == 3 and toks[3:] == ["unk/OTHER"] * 19 and oh.shape == (22, 15)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_vocabulary_needs_opt_in_and_converts(tmp_path, capsys):
    from salad_model.evaluation.t2m_eval.__main__ import main

    words = ["unk", "walk"]
    np.save(tmp_path / "our_vab_data.npy", np.ones((2, 300), np.float32))
    (tmp_path / "our_vab_words.pkl").write_bytes(pickle.dumps(words))
    (tmp_path / "our_vab_idx.pkl").write_bytes(pickle.dumps({"unk": 0, "walk": 1}))
    with pytest.raises(PickleRefused, match="convert-glove"):
        WordVectorizer(tmp_path)
    with pytest.warns(UserWarning, match="pickled"):
        assert len(WordVectorizer(tmp_path, allow_pickle=True)) == 2
    out = tmp_path / "safe"
    assert main(["convert-glove", str(tmp_path), "--out", str(out)]) == 0
    _, w, idx = read_vocab(out)
    assert w == words and idx == {"unk": 0, "walk": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WordVectorizer(out)  # safe files: no warning, no pickle
    # a pickle that would call a function is refused even with the opt-in
    (tmp_path / "our_vab_words.pkl").write_bytes(pickle.dumps([_Evil()]))
    with pytest.raises(pickle.UnpicklingError, match="refusing"), pytest.warns(UserWarning):
        WordVectorizer(tmp_path, allow_pickle=True)
    assert "pwned" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# End to end: synthetic HumanML3D layout → train a few steps → benchmark with a reduced protocol


@pytest.fixture(scope="module")
def synthetic_repo(tmp_path_factory):
    """A reference-style repository root: dataset/humanml3d, checkpoints/t2m (evaluator + meta), glove."""
    from salad_model.training.data.humanml3d import write_synthetic

    root = tmp_path_factory.mktemp("repo")
    data = root / "dataset" / "humanml3d"
    mean, std = write_synthetic(data, n_motions=48, seed=0)
    torch.manual_seed(0)
    cfg = EvaluatorConfig(dim_movement_enc_hidden=16, dim_movement_latent=8, dim_text_hidden=8,
                          dim_motion_hidden=8, dim_coemb_hidden=6)
    save_evaluator(T2MEvaluator(cfg), root, "t2m", mean=mean, std=std)
    words = sorted({t.split("/")[0] for f in (data / "texts").glob("*.txt")
                    for line in f.read_text().splitlines() for t in line.split("#")[1].split(" ")})
    words = ["sos", "eos", "unk"] + [w for w in words if w not in ("sos", "eos", "unk")][:-2]  # leave 2 OOV
    vec = np.random.default_rng(0).normal(size=(len(words), 300)).astype(np.float32)
    write_vocab(root / "glove", vec, {w: i for i, w in enumerate(words)}, words)
    return root


def test_train_and_benchmark_end_to_end(synthetic_repo, tmp_path):
    from salad_model.evaluation.t2m_eval.__main__ import main as eval_main
    from salad_model.training import train

    data = synthetic_repo / "dataset" / "humanml3d"
    cfg = train.load_config("t2m_reference")
    assert cfg["data_format"] == "humanml3d" and cfg["text_encoder"]["type"] == "clip"
    cfg["text_encoder"] = {"type": "tiny", "seed": 0, "dim": 16}
    cfg["vae"].update(latent_dim=8)
    cfg["denoiser"].update(latent_dim=32, n_heads=2, n_layers=3, ff_dim=64, text_dim=16, vae_dim=8)
    cfg["vae_train"].update(batch=4, window=16, warmup=2)
    cfg["denoiser_train"].update(batch=4, warmup=2)
    cfg_file = tmp_path / "tiny.json"
    cfg_file.write_text(json.dumps(cfg))
    run, model = tmp_path / "run", tmp_path / "model"
    common = ["--config", str(cfg_file), "--data", str(data), "--out", str(run), "--iters", "2", "--threads", "1"]
    assert train.main(["vae", *common]) == 0
    assert train.main(["denoiser", *common]) == 0
    assert train.main(["export", *common, "--dest", str(model), "--fp32"]) == 0
    exported = json.loads((model / "config.json").read_text())
    assert exported["info"]["trained_iterations"] == {"vae": 2, "denoiser": 2}

    out = tmp_path / "eval"
    rc = eval_main(["--benchmark", "t2m", "--data", str(data), "--evaluator", str(synthetic_repo),
                    "--model", str(model), "--repeats", "2", "--batch-size", "4", "--steps", "2",
                    "--mm", "--mm-repeats", "3", "--mm-times", "2", "--diversity-times", "5",
                    "--device", "cpu", "--threads", "1", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["repetitions"] == 2 and len(report["per_repetition"]) == 2
    for key in SUMMARY_KEYS:
        entry = report["summary"][key]
        assert set(entry) == {"mean", "conf95"} and all(math.isfinite(v) for v in entry.values()), (key, entry)
    assert 0 <= report["summary"]["r_precision_top1"]["mean"] <= report["summary"]["r_precision_top3"]["mean"] <= 1
    log = (out / "eval_steps2_scale7.5.log").read_text()
    assert log.count("--> \t Eva. Repeat") == 2 and "\tFID: " in log and "Multimodality: " in log


def test_eval_loader_shapes(synthetic_repo):
    from salad_model.training.data.humanml3d import find_stats

    data = synthetic_repo / "dataset" / "humanml3d"
    mean, std = find_stats(data, "humanml3d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = EvalDataset(data, "test", 40, WordVectorizer(synthetic_repo / "glove"), mean, std, seed=3)
    loader = EvalLoader(ds, 4, seed=3)
    batches = list(loader)
    assert len(batches) == len(ds) // 4 and len(batches[0].captions) == 4
    b = batches[0]
    assert b.word_embs.shape == (4, 22, 300) and b.pos_ohot.shape == (4, 22, 15) and b.motions.shape == (4, 196, 263)
    assert (b.m_lens % 4 == 0).all() and b.sent_len.tolist() == sorted(b.sent_len.tolist(), reverse=True)
    for i, m in enumerate(b.m_lens.tolist()):
        assert b.motions[i, m:].abs().sum() == 0
