"""Content words re-weighted after a timeline seam (``ShotDirector(reweight=ContentReweight(scale))``).

After another action's last second a segment is recognised less often than its single clip (runs read as walks,
raises as waves: docs/MODEL_CARD.md, "Tracing the middle segment's loss"). This option strengthens the new
prompt where it has to take over: in a segment's first window (the one holding the previous segment's end), the
conditional branch's cross attention to the prompt's content words is scaled by ``scale`` on the queries of the
new frames — the product's attention re-weighting edit (:class:`editing.Reweight`, post-softmax columns scaled,
no renormalisation) run as an attention controller. The held frames, the unconditional branch and every window
without a previous prompt are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .attention import ControlledAttnProcessor
from .editing import Reweight
from .requests import REWEIGHT_MAX, REWEIGHT_MIN, InputError

if TYPE_CHECKING:
    from .shots import ShotDirector

# Words that name who moves or join the words, not what the motion is (compared lower-case, pieces stripped).
NON_CONTENT = frozenset(
    "a an the person man woman someone somebody human figure he she they it his her their its them him is are "
    "and with to of then while as".split()
)


@dataclass(frozen=True)
class ContentReweight:
    """Scale of the new prompt's content words on a segment's new frames (the re-weight slider's range)."""

    scale: float = 2.0

    def checked(self) -> ContentReweight:
        s = self.scale
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not REWEIGHT_MIN <= s <= REWEIGHT_MAX:
            raise InputError(f"content re-weighting: scale must be within {REWEIGHT_MIN:g} … {REWEIGHT_MAX:g}, "
                             f"got {s!r}")
        return self


def _word(label: str) -> str:
    """A token label as a plain lower-case word; "" for special tokens and punctuation."""
    if label.startswith(("[", "<|")) and label.endswith(("]", "|>")):
        return ""
    w = label.replace("</w>", "").removeprefix("##").removeprefix("Ġ").lower()
    return w if any(ch.isalnum() for ch in w) else ""


def content_token_indices(encoder, prompt: str) -> list[int]:
    """Positions (as the text context holds them, start token = 0) of the prompt's content-word tokens."""
    return [i for i, lab in enumerate(encoder.tokens(prompt)) if (w := _word(lab)) and w not in NON_CONTENT]


class NewFramesReweight:
    """Attention controller: ``mode``'s cross-attention map for the conditional row on the new frames' queries.

    Rows of a window's batched forward are ``[uncond; cond]`` (batch 1), or ``cond`` alone without guidance:
    the conditional row is the last. Queries are the window's T'·7 tokens, time-major.
    """

    def __init__(self, mode: Reweight, new_frames: torch.Tensor, parts: int = 7):
        self.mode = mode
        self.queries = new_frames.to(torch.bool).repeat_interleave(parts)

    def __call__(self, probs: torch.Tensor, kind: str, layer: int) -> torch.Tensor:
        if kind != "cross":
            return probs
        if probs.shape[-2] != len(self.queries):
            raise ValueError(f"content re-weighting expects {len(self.queries)} queries, got {probs.shape[-2]}")
        cond = probs[-1]  # [H, T'·7, L]
        edited = self.mode.cross(cond, None, cond, 0.0)
        out = probs.clone()
        out[-1][:, self.queries] = edited[:, self.queries]
        return out


def reweight_processor(d: ShotDirector, held: int, prompt: str, frames: int) -> ControlledAttnProcessor:
    """The processor for ``d``'s window of ``frames`` latent frames whose first ``held`` are the previous
    segment's motion (the caller samples with it installed)."""
    mode = Reweight(content_token_indices(d.pipe.text_encoder, prompt), float(d.reweight.scale))
    return ControlledAttnProcessor(NewFramesReweight(mode, torch.arange(frames) >= held))
