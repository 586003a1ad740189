"""Cross attention with the text folded into its projections (CPU inference only).

Cross attention reads few keys (the prompt's ~12 tokens) from many queries (T'·7 tokens), and its keys and
values are constant across the denoising steps. So per head h the query projection and the keys can be
multiplied once per prompt: ``scores_h = (x·Wq_hᵀ + bq_h)·K_hᵀ/√d_h = x·A_h + c_h`` with
``A_h = Wq_hᵀ·K_hᵀ/√d_h`` [d, L], and likewise the values and the output projection:
``out = Σ_h P_h·(V_h·Wo_hᵀ) + bo = P·M + bo``. Per step that is two GEMMs of width H·L (~96) instead of
the Q and output projections (width d = 256 each) plus a fused attention kernel whose per-call overhead
dominates at 12 keys. Same math, different rounding (≤ 1e-6 relative; the golden tests hold 1e-5).

Attention controllers need per-head probabilities from the plain path, so :func:`usable` keeps folding to
the default processor with autograd off on the CPU (a CUDA graph replays captured kernels and would not see
a cache refreshed from Python).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .attention import Attention, AttnProcessor, softmax_last


@dataclass
class CrossFold:
    """One layer's folded text: scores = x·a + c, output = softmax(scores)·m + bias (per sample)."""

    a: torch.Tensor  # [B, d, H·L]
    c: torch.Tensor  # [B, 1, H·L]
    m: torch.Tensor  # [B, H·L, d]
    bias: torch.Tensor  # [d]
    heads: int
    key: tuple  # what it was built from (weights and keys/values, with their versions)


def usable(attn: Attention, x: torch.Tensor) -> bool:
    """Folding applies: inference on the CPU with the default processor (no controller watching maps)."""
    return (not torch.is_grad_enabled() and x.device.type == "cpu"
            and type(attn.processor) is AttnProcessor and not attn.training)


def _key(attn: Attention, k: torch.Tensor, v: torch.Tensor) -> tuple:
    # Inference tensors keep no version counter; a text context's keys/values are never written in place.
    ts = (attn.Wq.weight, attn.Wq.bias, attn.Wo.weight, attn.Wo.bias, k, v)
    return tuple((t.data_ptr(), None if t.is_inference() else t._version, tuple(t.shape)) for t in ts)


def fold(attn: Attention, k: torch.Tensor, v: torch.Tensor) -> CrossFold:
    """Fold keys/values [B, H, L, d_h] into ``attn``'s query and output projections."""
    b, h, length, dh = k.shape
    d = attn.Wq.weight.shape[1]
    s = 1.0 / math.sqrt(dh)
    wq = attn.Wq.weight.view(h, dh, d)
    a = torch.einsum("hjd,bhlj->bdhl", wq, k).reshape(b, d, h * length) * s
    c = torch.einsum("hj,bhlj->bhl", attn.Wq.bias.view(h, dh), k).reshape(b, 1, h * length) * s
    wo = attn.Wo.weight.view(d, h, dh)
    m = torch.einsum("bhlj,ehj->bhle", v, wo).reshape(b, h * length, d)
    return CrossFold(a.contiguous(), c.contiguous(), m.contiguous(), attn.Wo.bias, h, _key(attn, k, v))


def cached_fold(cache: dict, layer: int, attn: Attention, k: torch.Tensor, v: torch.Tensor) -> CrossFold:
    """``cache[layer]``, rebuilt when the weights or the keys/values changed (e.g. a training step)."""
    f = cache.get(layer)
    if f is None or f.key != _key(attn, k, v):
        f = cache[layer] = fold(attn, k, v)
    return f


def attend(f: CrossFold, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Cross attention of queries x [B, N, d] through a fold; ``mask`` additive [B, 1, 1, L] or None."""
    b, n, _ = x.shape
    a, c, m = f.a, f.c, f.m
    if a.shape[0] != b:  # one text context for every sample
        a, c, m = a.expand(b, -1, -1), c.expand(b, -1, -1), m.expand(b, -1, -1)
    hl = a.shape[-1]
    scores = torch.baddbmm(c, x, a).view(b, n, f.heads, hl // f.heads)
    if mask is not None:
        scores += mask.view(mask.shape[0], 1, 1, -1)
    probs = softmax_last(scores, masked=mask is not None).view(b, n, hl)
    return torch.baddbmm(f.bias, probs, m)
