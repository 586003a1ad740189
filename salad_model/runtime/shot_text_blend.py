"""Prompt interpolation across a timeline seam: per-frame blending of two prompts' cross attention.

A segment's first window holds the end of the previous segment (its context) and generates the new frames.
With a hard switch every frame of that window — the held ones too — reads the new prompt, so the network
sees another action's motion labelled with the new text. Here each latent frame reads a blend of the two
prompts: cross attention is computed against the previous prompt's words and against the new prompt's
words, and the two outputs are mixed per frame with a weight that rises from 0 (previous prompt) to 1
(new prompt) over a ramp placed around the seam (``TextBlend``). Everything else (temporal and skeletal
attention, guidance, inpainting) is unchanged; the unconditional half reads the empty prompt on both sides,
so its output is the plain one.

The two prompts travel as one text context joined along the word axis, each half padded (masked) to the
same length, so the attention processor can split them; the processor is installed for the one window and
removed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .attention import Attention, AttnProcessor, processor_installed
from .denoiser import Denoiser, TextContext
from .requests import InputError

if TYPE_CHECKING:
    from .shots import ShotDirector

# Off: on 100 timelines TextBlend(-2, 4) smoothed the seams (jerk 0.99× → 0.92×) but recognised 47.7% of
# segments against 48.7% with the hard switch (docs/MODEL_CARD.md, "A like-for-like content measure").
DEFAULT_TEXT_BLEND: TextBlend | None = None


@dataclass(frozen=True)
class TextBlend:
    """Where the new prompt takes over in a segment's first window, relative to the seam (latent frames).

    Weight of the new prompt for latent frame t of the window (the seam is frame ``ctx``, the first new
    one): 0 before ``ctx + start``, rising linearly over ``ramp`` frames, 1 after. ``start`` 0, ``ramp`` 0:
    the held context reads the previous prompt and the new frames the new one (a switch at the seam).
    """

    start: int = 0
    ramp: int = 0

    def checked(self, ctx: int, max_frames: int) -> TextBlend:
        """Itself, if the ramp starts within the held context (or after it) and fits a window."""
        ok = all(isinstance(x, int) and not isinstance(x, bool) for x in (self.start, self.ramp))
        if not ok or not -ctx <= self.start <= max_frames // 4 or not 0 <= self.ramp <= max_frames // 4:
            raise InputError(
                f"text blend: start must be within {-ctx}…{max_frames // 4} and ramp within "
                f"0…{max_frames // 4} latent frames, got {self.start!r}, {self.ramp!r}"
            )
        return self

    def weights(self, ctx: int, frames: int) -> torch.Tensor:
        """[frames] weights of the new prompt for a window holding ``ctx`` frames of context."""
        t = torch.arange(frames, dtype=torch.float32)
        a = ctx + self.start
        return torch.clamp((t - a + 1) / (self.ramp + 1), 0.0, 1.0)


def join_words(a: TextContext, b: TextContext, half: int) -> TextContext:
    """``a`` and ``b`` (same batch) side by side along the word axis, each padded to ``half`` words."""
    a, b = a.padded(half), b.padded(half)

    def mask(c: TextContext) -> torch.Tensor:
        if c.mask is not None:
            return c.mask
        return torch.zeros(c.memory.shape[0], 1, 1, c.length, dtype=c.memory.dtype, device=c.memory.device)

    kv = [
        (torch.cat([ka, kb], dim=2), torch.cat([va, vb], dim=2)) for (ka, va), (kb, vb) in zip(a.kv, b.kv, strict=True)
    ]
    return TextContext(torch.cat([a.memory, b.memory], dim=1), torch.cat([mask(a), mask(b)], dim=-1), kv)


class BlendedCrossAttention(AttnProcessor):
    """Cross attention over a joined context (:func:`join_words`): the two halves' outputs mixed per frame.

    Queries are the window's T'·7 tokens, time-major; ``weights`` [T'] is the new prompt's share per frame.
    Self attention (temporal, skeletal) runs the default path.
    """

    def __init__(self, half: int, weights: torch.Tensor, parts: int = 7):
        self.half = half
        self.w = weights.repeat_interleave(parts)[:, None]  # [T'·7, 1]

    def __call__(
        self, attn: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        if attn.kind != "cross":
            return super().__call__(attn, q, k, v, mask)
        h = self.half
        if k.shape[-2] != 2 * h or q.shape[-2] != self.w.shape[0]:
            raise ValueError(
                f"blended cross attention expects {2 * h} words and {self.w.shape[0]} queries, "
                f"got {k.shape[-2]} and {q.shape[-2]}"
            )
        ma = None if mask is None else mask[..., :h]
        mb = None if mask is None else mask[..., h:]
        out_a = F.scaled_dot_product_attention(q, k[..., :h, :], v[..., :h, :], attn_mask=ma)
        out_b = F.scaled_dot_product_attention(q, k[..., h:, :], v[..., h:, :], attn_mask=mb)
        w = self.w.to(out_a.dtype)
        return torch.lerp(out_a, out_b, w)


class blended_text(processor_installed):  # noqa: N801 (a context manager, used like a function)
    """Install :class:`BlendedCrossAttention` on every attention module of ``denoiser`` for one window."""

    def __init__(self, denoiser: Denoiser, half: int, weights: torch.Tensor):
        super().__init__(denoiser, BlendedCrossAttention(half, weights))


def blended_contexts(prev: TextContext, new: TextContext, null: TextContext) -> tuple[TextContext, TextContext, int]:
    """(cond, uncond, half): the previous and new prompts joined, and the empty prompt joined with itself."""
    half = max(prev.length, new.length, null.length)
    return join_words(prev, new, half), join_words(null, null, half), half


def blended_window(
    d: ShotDirector, prev: tuple[str, int], prompt: str, frames: int
) -> tuple[TextContext, TextContext, BlendedCrossAttention]:
    """(cond, uncond, processor) for ``d``'s window of ``frames`` latent frames whose first ``prev[1]`` are held
    motion of prompt ``prev[0]`` (the caller samples with the processor installed)."""
    pipe = d.pipe
    cond, null, half = blended_contexts(d._cond(prev[0]), d._cond(prompt), pipe._null(1))
    weights = d.text_blend.weights(prev[1], frames).to(pipe.device)
    return cond, null, BlendedCrossAttention(half, weights)
