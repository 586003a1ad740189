"""Guidance whose unconditional branch does not see the held context (``ShotDirector(free_guidance=True)``).

Classifier-free guidance pushes a window along ``v_c − v_u``. In a segment's first window both branches see the
previous segment's held end, so ``v_u`` is "a text-free continuation of that motion" and the guidance pushes the
new frames away from continuing it in general, not towards the new text in particular. Here the unconditional
branch's temporal attention is masked to the new frames (key padding over the held ones: the same mask that
hides a batch's padding), so ``v_u`` on the new frames is the model's text-free motion of those frames alone and
``v_c − v_u`` carries both the text and the context. The conditional branch, the held frames (replaced after
every step) and every window without a previous prompt are unchanged; the cost is the same single batched
forward per step.
"""

from __future__ import annotations

import torch


def context_free_frames(held: torch.Tensor) -> torch.Tensor:
    """[B, T'] frames the unconditional branch sees: those with no cell held (``held`` [B, T', 7], bool or
    hold weights)."""
    return ~(held > 0).any(-1)
