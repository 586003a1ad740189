"""Multi-head attention with swappable processors (diffusers style).

The network never knows about editing: an :class:`Attention` module projects Q/K/V and hands them to its
``processor``. The default processor is fused ``scaled_dot_product_attention``; a
:class:`ControlledAttnProcessor` computes explicit probabilities and lets an *attention controller*
(see :mod:`salad_model.runtime.editing`) record or replace them — only when maps are needed.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from . import packed

MASK_VALUE = -1e9  # the reference fills masked logits with −1e9 (not −inf)


class AttentionController(Protocol):
    """Sees (and may replace) post-softmax probabilities [N, H, Lq, Lk] of every attention call."""

    def __call__(self, probs: torch.Tensor, kind: str, layer: int) -> torch.Tensor: ...


class Attention(nn.Module):
    """``softmax(QKᵀ/√d_h + mask)·V`` with separate Wq/Wk/Wv/Wo (reference key names)."""

    def __init__(self, dim: int, heads: int, dropout: float, kind: str, layer: int):
        super().__init__()
        self.Wq = nn.Linear(dim, dim)
        self.Wk = nn.Linear(dim, dim)
        self.Wv = nn.Linear(dim, dim)
        self.Wo = nn.Linear(dim, dim)
        self.heads = heads
        self.dropout = dropout
        self.kind = kind  # "temp", "skel" or "cross"
        self.layer = layer
        self.processor: AttnProcessor = FUSED
        self._qkv: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    def fused_qkv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[Wq; Wk; Wv] as one weight (one GEMM instead of three), cached until a parameter changes."""
        params = (self.Wq.weight, self.Wk.weight, self.Wv.weight, self.Wq.bias, self.Wk.bias, self.Wv.bias)
        key = tuple((t.data_ptr(), t._version) for t in params)
        if self._qkv is None or self._qkv[0] != key:
            with torch.no_grad():
                self._qkv = (key, torch.cat(params[:3]), torch.cat(params[3:]))
        return self._qkv[1], self._qkv[2]

    def split(self, x: torch.Tensor) -> torch.Tensor:
        n, length, d = x.shape
        return x.view(n, length, self.heads, d // self.heads).transpose(1, 2)

    def project_kv(self, kv_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values [N, H, L, d_h]; cacheable for the text memory (constant across steps)."""
        return self.split(self.Wk(kv_in)), self.split(self.Wv(kv_in))

    def grid_self_attention(self, x: torch.Tensor, seq_dim: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Self-attention along dim ``seq_dim`` (1: frames, 2: parts) of a token grid x [B, T, P, D].

        The result comes back in x's shape. Inference runs Q/K/V as one GEMM (over parts: on the grid as it
        lies; over frames: on a part-major copy of x, so that each sequence's frames are adjacent) and hands the
        processor q, k, v [N, H, L, d_h] as views of its output (N ordered sample-major, as the reference
        reshapes); over frames the result is a transposed view.
        """
        b, t, p, d = x.shape
        if seq_dim not in (1, 2):
            raise ValueError(f"seq_dim must be 1 (frames) or 2 (parts), got {seq_dim}")
        if torch.is_grad_enabled():  # training: the plain path (autograd-friendly, same numbers)
            if seq_dim == 1:
                out = self(x.transpose(1, 2).reshape(b * p, t, d), mask=mask)
                return out.view(b, p, t, d).transpose(1, 2)
            return self(x.reshape(b * t, p, d), mask=mask).view(b, t, p, d)
        hh, dh = self.heads, d // self.heads
        if seq_dim == 1:
            # frames of one sequence adjacent: a cheap copy of the 256-wide input instead of a permuted copy of
            # the 768-wide Q/K/V; q, k, v are then strided views [b·p, H, T, d_h] the fused kernel reads as they lie
            qkv = packed.linear(x.transpose(1, 2).contiguous(), *self.fused_qkv(), self, "qkv")
            qkv = qkv.view(b * p, t, 3, hh, dh)
            q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
            out = self.processor(self, q, k, v, mask)
            out = out.transpose(1, 2).reshape(b, p, t, d)  # a view of the fused kernel's [N, T, H, d_h] output
            return packed.module_linear(self.Wo, out).transpose(1, 2)
        qkv = packed.linear(x, *self.fused_qkv(), self, "qkv").view(b, t, p, 3, hh, dh)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).reshape(3, b * t, hh, p, dh)  # views: b, t merge
        out = self.processor(self, q, k, v, mask)
        out = out.view(b, t, hh, p, dh).permute(0, 1, 3, 2, 4)
        return packed.module_linear(self.Wo, out.reshape(b, t, p, d))

    def forward(self, q_in: torch.Tensor, kv_in: torch.Tensor | None = None,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """q_in [N, Lq, D]; keys/values from ``kv`` (precomputed) or ``kv_in`` (default: q_in).

        ``mask`` is additive, broadcastable to [N, H, Lq, Lk] (0 or −1e9).
        """
        if kv is None and kv_in is None and not torch.is_grad_enabled():
            n, length, d = q_in.shape
            qkv = F.linear(q_in, *self.fused_qkv()).view(n, length, 3, self.heads, d // self.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).contiguous()  # one copy → three contiguous [N, H, L, d_h]
        else:
            q = self.split(self.Wq(q_in))
            k, v = kv if kv is not None else self.project_kv(q_in if kv_in is None else kv_in)
        out = self.processor(self, q, k, v, mask)
        n, h, length, dh = out.shape
        return self.Wo(out.transpose(1, 2).reshape(n, length, h * dh))


class AttnProcessor:
    """Fastest exact path: fused SDPA for long key sequences, plain matmul-softmax for short ones.

    On CPU the fused kernel's per-call overhead dominates when queries and keys are both short
    (measured at 196 frames: skeletal 7×7 0.78 ms explicit vs 2.26 ms fused; temporal 49×49 0.51 vs
    0.64 ms), while cross attention (343 queries) is faster fused.
    """

    short = 64
    # Q/K/V as strided views of the fused projection (rows not adjacent): matmul would copy q, kᵀ and v first,
    # the fused kernel reads the strides (temporal 49 frames: 0.84 ms fused against 1.17 explicit with the
    # copy, one thread; skeletal 7 parts: 0.93 against 0.71)
    short_strided = 16

    def __call__(self, attn: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 mask: torch.Tensor | None) -> torch.Tensor:
        p = attn.dropout if attn.training else 0.0
        strided = q.stride(-2) != q.shape[-1] and not torch.is_grad_enabled()  # training: as it always ran
        short = self.short_strided if strided else self.short
        if q.shape[-2] <= short and k.shape[-2] <= short:
            probs = attention_probs(q, k, mask)
            if p > 0:
                probs = F.dropout(probs, p)
            return torch.matmul(probs, v)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)


FUSED = AttnProcessor()


SHORT_SOFTMAX = 16  # rows this short or shorter: softmax as exp / sum (see softmax_last)


EXP_FLOOR = -80.0  # exp below this is < 1.9e-35 of the row's largest term: counted as exactly 0


def softmax_last(x: torch.Tensor, masked: bool = False) -> torch.Tensor:
    """Softmax over the last dim, ``exp(x − max) / Σ``; on the CPU without autograd, rows of ≤ 16 run as
    separate max / exp / sum / divide passes, in place: torch's fused kernel is ~4–7× slower on such short
    rows (measured: [98, 8, 7, 7] 0.65 vs 0.10 ms, [2, 343, 8, 12] 1.09 vs 0.16 ms, one thread; longer rows
    are faster fused). Same formula; the two exps may differ by an ulp.

    ``masked``: x holds an additive mask (−1e9). torch's exp takes a slow path below about −87 (one thread,
    [2, 343, 8, 8] with a quarter at −1e9: 0.27 ms, against 0.03 ms in range), so such rows are clamped to
    EXP_FLOOR first and whatever lands on exp(EXP_FLOOR) set to 0: masked keys keep probability exactly 0,
    and a real term ≤ 1.9e-35 of the row's largest could not move its float32 sum."""
    if x.shape[-1] > SHORT_SOFTMAX or torch.is_grad_enabled() or x.device.type != "cpu":
        return x.softmax(dim=-1)
    e = torch.sub(x, x.amax(dim=-1, keepdim=True))
    if masked:
        e = F.threshold_(e.clamp_(min=EXP_FLOOR).exp_(), math.exp(EXP_FLOOR), 0.0)
    else:
        e = e.exp_()
    return e.div_(e.sum(dim=-1, keepdim=True))


def attention_probs(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Explicit softmax probabilities [N, H, Lq, Lk] (the reference's op order: scale, mask, softmax)."""
    if q.dim() > 3 and q.shape[:-2] == k.shape[:-2] and q.is_contiguous() and k.is_contiguous():
        # one batch dim as views: bmm reads kᵀ as a transposed view (matmul copies a 4-D kᵀ first)
        lq, lk = q.shape[-2], k.shape[-2]
        scores = torch.bmm(q.reshape(-1, lq, q.shape[-1]), k.reshape(-1, lk, k.shape[-1]).transpose(1, 2))
        scores = scores.view(*q.shape[:-2], lq, lk)
    else:
        scores = torch.matmul(q, k.transpose(-1, -2))
    if torch.is_grad_enabled():
        scores = scores / math.sqrt(q.shape[-1])
        return (scores if mask is None else scores + mask).softmax(dim=-1)
    scores.div_(math.sqrt(q.shape[-1]))  # inference: in place on the fresh product (no extra tensor per call)
    if mask is not None:
        fits = torch.broadcast_shapes(mask.shape, scores.shape) == scores.shape
        scores = scores.add_(mask) if fits else scores + mask
    return softmax_last(scores, masked=mask is not None)


class ControlledAttnProcessor(AttnProcessor):
    """Explicit-softmax attention whose probabilities pass through a controller."""

    def __init__(self, controller: AttentionController):
        self.controller = controller

    def __call__(self, attn: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 mask: torch.Tensor | None) -> torch.Tensor:
        probs = self.controller(attention_probs(q, k, mask), attn.kind, attn.layer)
        if attn.training and attn.dropout > 0:
            probs = F.dropout(probs, attn.dropout)
        return torch.matmul(probs, v)


class processor_installed:  # noqa: N801 (a context manager, used like a function)
    """``processor`` on every :class:`Attention` module of ``module`` for one block; on exit each module gets
    back whatever it had (the default, or an editing controller), so options can be stacked and nested."""

    def __init__(self, module: nn.Module, processor: AttnProcessor):
        self.module, self.processor = module, processor

    def __enter__(self) -> AttnProcessor:
        self.before = [(m, m.processor) for m in self.module.modules() if isinstance(m, Attention)]
        for m, _ in self.before:
            m.processor = self.processor
        return self.processor

    def __exit__(self, *exc: object) -> None:
        for m, p in self.before:
            m.processor = p


def padding_to_additive(valid: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """Key validity [N, Lk] (True = attendable) → additive mask [N, 1, 1, Lk]."""
    if valid is None:
        return None
    m = torch.zeros(valid.shape, dtype=dtype, device=valid.device)
    m = m.masked_fill(~valid, MASK_VALUE)
    return m[:, None, None, :]
