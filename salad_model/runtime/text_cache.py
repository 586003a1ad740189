"""Feature cache for training captions: every caption encoded once, stored compactly in one safetensors file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .text import Features, TextEncoder, as_text_list

if TYPE_CHECKING:
    import torch

__all__ = ["CachedTextFeatures", "cache_features", "load_cached_features"]

CACHE_FORMAT = "salad-text-features/1"


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
    unique = list(dict.fromkeys(as_text_list(captions)))
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
