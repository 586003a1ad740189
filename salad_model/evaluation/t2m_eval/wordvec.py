"""GloVe word vectors and POS one-hots for the evaluator's text encoder (T2M_EVALUATOR_SPEC §2).

The released vocabulary ships as ``our_vab_data.npy`` plus two *pickles* (``our_vab_words.pkl``,
``our_vab_idx.pkl``). Unpickling an untrusted file can run code, so by default only the safe converted form is
read (``our_vab_words.json``, ``our_vab_idx.json`` + the ``.npy`` loaded with ``allow_pickle=False``). The
pickles are read only with ``allow_pickle=True`` (CLI ``--allow-pickle``), and then through an unpickler that
refuses every global lookup: a list of str and a dict str→int need none, anything else is rejected.
``convert_glove`` writes the safe form once.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np

POS_ENUMERATOR = {name: i for i, name in enumerate(
    ["VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV",
     "Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP", "OTHER"])}

VIP_LISTS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Loc_VIP", frozenset("left right clockwise counterclockwise anticlockwise forward back backward up down "
                          "straight curve".split())),
    ("Body_VIP", frozenset("arm chin foot feet face hand mouth leg waist eye knee shoulder thigh".split())),
    ("Obj_VIP", frozenset("stair dumbbell chair window floor car ball handrail baseball basketball".split())),
    ("Act_VIP", frozenset("walk run swing pick bring kick put squat throw hop dance jump turn stumble stop sit "
                          "lift lower raise wash stand kneel stroll rub bend balance flap jog shuffle lean rotate "
                          "spin spread climb".split())),
    ("Desc_VIP", frozenset("slowly carefully fast careful slow quickly happy angry sad happily angrily "
                           "sadly".split())),
)
MAX_TEXT_LEN = 20
PREFIX = "our_vab"


class PickleRefused(Exception):
    """A vocabulary pickle was found but loading pickles was not allowed (or it holds more than plain data)."""


class _PlainDataUnpickler(pickle.Unpickler):
    """Rebuilds only built-in containers and scalars: every class/function lookup is refused."""

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle API
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a vocabulary file")


def load_plain_pickle(path: Path) -> object:
    """Unpickle a file that may hold only lists, dicts, str and numbers."""
    return _PlainDataUnpickler(io.BytesIO(Path(path).read_bytes())).load()


def _check_vocab(words: object, idx: object, n_rows: int, where: Path) -> tuple[list[str], dict[str, int]]:
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"{where}: the word list must be a list of strings")
    if not isinstance(idx, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in idx.items()):
        raise ValueError(f"{where}: the word index must map strings to integers")
    bad = [w for w in words if w not in idx or not 0 <= idx[w] < n_rows]
    if bad:
        raise ValueError(f"{where}: words without a valid row in the vector matrix: {bad[:5]}")
    if "unk" not in idx:
        raise ValueError(f"{where}: the vocabulary has no 'unk' entry (needed for unknown words)")
    return words, idx


def read_vocab(folder: Path, prefix: str = PREFIX, allow_pickle: bool = False
               ) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """(vectors [V, 300] float32, words, word → row) from the safe files, or the pickles if allowed."""
    folder = Path(folder)
    data = folder / f"{prefix}_data.npy"
    if not data.is_file():
        raise FileNotFoundError(f"word vectors not found: {data}")
    vectors = np.load(data, allow_pickle=False).astype(np.float32)
    jw, ji = folder / f"{prefix}_words.json", folder / f"{prefix}_idx.json"
    pw, pi = folder / f"{prefix}_words.pkl", folder / f"{prefix}_idx.pkl"
    if jw.is_file() and ji.is_file():
        words = json.loads(jw.read_text(encoding="utf-8"))
        idx = json.loads(ji.read_text(encoding="utf-8"))
    elif pw.is_file() and pi.is_file():
        if not allow_pickle:
            raise PickleRefused(
                f"{folder} holds the vocabulary only as pickles ({pw.name}, {pi.name}). Unpickling can run code; "
                f"convert them once with `python -m salad_model.evaluation.t2m_eval convert-glove {folder}` "
                "(writes JSON next to them, or use --out), or pass --allow-pickle to read them as they are.")
        warnings.warn(f"reading pickled vocabulary files in {folder} (opted in with allow_pickle); only plain "
                      "lists/dicts are accepted. Convert them once with `convert-glove` to avoid this.", stacklevel=2)
        words, idx = load_plain_pickle(pw), load_plain_pickle(pi)
    else:
        raise FileNotFoundError(f"no vocabulary files {jw.name}/{ji.name} (or {pw.name}/{pi.name}) in {folder}")
    words, idx = _check_vocab(words, idx, len(vectors), folder)
    return vectors, words, idx


def convert_glove(folder: Path, out: Path | None = None, prefix: str = PREFIX) -> Path:
    """One-time conversion of the pickled vocabulary to JSON (+ a copy of the .npy when ``out`` differs)."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder
    out.mkdir(parents=True, exist_ok=True)
    vectors = np.load(folder / f"{prefix}_data.npy", allow_pickle=False)
    words = load_plain_pickle(folder / f"{prefix}_words.pkl")
    idx = load_plain_pickle(folder / f"{prefix}_idx.pkl")
    _check_vocab(words, idx, len(vectors), folder)
    (out / f"{prefix}_words.json").write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
    (out / f"{prefix}_idx.json").write_text(json.dumps(idx, ensure_ascii=False), encoding="utf-8")
    if out.resolve() != folder.resolve():
        shutil.copyfile(folder / f"{prefix}_data.npy", out / f"{prefix}_data.npy")
    return out


def write_vocab(folder: Path, vectors: np.ndarray, word2idx: dict[str, int], words: list[str] | None = None,
                prefix: str = PREFIX) -> Path:
    """Write a vocabulary in the safe converted format (tests, custom vocabularies)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{prefix}_data.npy", np.asarray(vectors, dtype=np.float32))
    (folder / f"{prefix}_words.json").write_text(json.dumps(words or list(word2idx)), encoding="utf-8")
    (folder / f"{prefix}_idx.json").write_text(json.dumps(word2idx), encoding="utf-8")
    return folder


def pos_class(word: str, pos: str, in_vocab: bool) -> int:
    """POS class index: VIP lists override the tag for known words; unknown words are OTHER (spec §2.3)."""
    if not in_vocab:
        return POS_ENUMERATOR["OTHER"]
    for name, members in VIP_LISTS:
        if word in members:
            return POS_ENUMERATOR[name]
    return POS_ENUMERATOR.get(pos, POS_ENUMERATOR["OTHER"])


class WordVectorizer:
    """``token 'word/POS'`` → (GloVe vector [300], POS one-hot [15]); case-sensitive, unknown → ``unk``/OTHER."""

    def __init__(self, folder: Path, prefix: str = PREFIX, allow_pickle: bool = False):
        vectors, words, idx = read_vocab(folder, prefix, allow_pickle)
        self.vectors = vectors
        self.word2vec = {w: vectors[idx[w]] for w in words}
        self.dim = vectors.shape[1]

    def __len__(self) -> int:
        return len(self.word2vec)

    def __getitem__(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        word, pos = token.split("/")  # exactly two parts, as the reference (raises otherwise)
        known = word in self.word2vec
        vec = self.word2vec[word] if known else self.word2vec["unk"]
        onehot = np.zeros(len(POS_ENUMERATOR), dtype=np.float32)
        onehot[pos_class(word, pos, known)] = 1.0
        return vec, onehot

    def encode_tokens(self, tokens: list[str], max_text_len: int = MAX_TEXT_LEN
                      ) -> tuple[np.ndarray, np.ndarray, int, list[str]]:
        """Caption tokens → (word vectors [L+2, D], one-hots [L+2, 15], sent_len, the padded token list)."""
        if len(tokens) < max_text_len:
            toks = ["sos/OTHER", *tokens, "eos/OTHER"]
            sent_len = len(toks)
            toks = toks + ["unk/OTHER"] * (max_text_len + 2 - sent_len)
        else:
            toks = ["sos/OTHER", *tokens[:max_text_len], "eos/OTHER"]
            sent_len = len(toks)
        pairs = [self[t] for t in toks]
        return (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), sent_len, toks)
