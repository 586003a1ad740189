"""CPU inference forwards of the denoiser's CFG halves as TorchScript graphs: traced once per shape, frozen.

Why: outside its GEMMs a CPU step is ~300 small ops per CFG half, each dispatched from Python under the GIL,
and the two halves (runtime/halves.py) run on two threads that take turns holding it. A TorchScript graph runs
the same ops from C++ with the GIL released, so the halves really run at once, and ``torch.jit.freeze`` folds
the weights in as constants. Same ops in the same order, float rounding only.
Same-run A/B of a whole DDIM-50 generation against the eager halves (2 threads, load ~5.7, README *Speed*):
official size 0.90x wall and CPU; demo model 0.60x wall, 0.88x CPU against its eager batched forward (eager
halves did not pay there). First use of a shape: ~0.5 s to trace.

A graph is traced for one set of shapes (frames, prompt length rounded up to :data:`TEXT_BUCKET`, batch,
masks present) and for the weights as they are (their data pointers and versions are part of the key:
loading other weights retraces). Python choices inside the forward are fixed by the shapes (short or fused
attention, folded cross attention), and everything that depends on the timestep or the prompt is an input:
the FiLM parameters (looked up eagerly, from the sampler's :meth:`~Denoiser.timestep_table`), the text's
keys/values and its folded cross attention (refreshed eagerly: :func:`cross_fold.cached_fold`).
If tracing fails, or a graph raises, that shape runs eagerly.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections import OrderedDict

import torch
from torch import nn

from . import cross_fold, packed
from .denoiser import Denoiser, TextContext

ENABLED = True  # switch for same-run A/B timing (benchmarks) and tests of the eager path
MAX_GRAPHS = 4  # per denoiser, least recently used dropped (each holds its folded constants)
# Prompts are padded (masked: probability exactly 0) to a multiple of this many words, so that prompts of
# 9-16 words share one graph instead of tracing one per length.
TEXT_BUCKET = 8


class _Step(nn.Module):
    """The traced unit: tensors in, tensors out; rebuilds the text context and the FiLM pairs inside."""

    def __init__(self, denoiser: Denoiser, has_mask: bool, has_len_mask: bool):
        super().__init__()
        self.denoiser = denoiser
        self.has_mask, self.has_len_mask = has_mask, has_len_mask

    def forward(self, x: torch.Tensor, films: torch.Tensor, kv: tuple, folds: tuple, packed_weights: tuple,
                *masks: torch.Tensor) -> torch.Tensor:
        """``packed_weights``: the oneDNN-packed weights :func:`packed.linear` will look up (opaque tensors
        cannot be graph constants: as inputs, the tracer recognises them by identity)."""
        den = self.denoiser
        masks = list(masks)
        mask = masks.pop(0) if self.has_mask else None
        len_mask = masks.pop(0) if self.has_len_mask else None
        pairs = [(films[:, 2 * i], films[:, 2 * i + 1]) for i in range(films.shape[1] // 2)]
        ctx = TextContext(x.new_empty(0), mask, [(k, v) for k, v in kv])
        for layer, (k, v), (a, c, m) in zip(den.transformer.layers(), kv, folds, strict=True):
            attn = layer.cross_attn
            ctx.folds[attn.layer] = cross_fold.CrossFold(a, c, m, attn.Wo.bias, attn.heads,
                                                         cross_fold._key(attn, k, v))
        return den._forward(x, 0, ctx, len_mask, [pairs[i : i + 4] for i in range(0, len(pairs), 4)])


class TracedForward:
    """Callable like :meth:`Denoiser._forward` (so :func:`halves.run` can split it): the FiLM parameters and
    the folded text prepared eagerly, then the graph for these shapes (traced on first use)."""

    def __init__(self, denoiser: Denoiser):
        self._denoiser = weakref.ref(denoiser)  # the cache below is keyed weakly on the denoiser
        self.graphs: OrderedDict[tuple, tuple | None] = OrderedDict()  # key → (graph, packed slots) or None
        self.lock = threading.Lock()  # the halves' threads ask for the same graph at once: trace it once

    def __call__(self, x: torch.Tensor, timesteps: torch.Tensor | int, text: TextContext,
                 len_mask: torch.Tensor | None) -> torch.Tensor:
        den = self._denoiser()
        text = text.padded_kept(-(-text.length // TEXT_BUCKET) * TEXT_BUCKET)
        ts = torch.as_tensor(timesteps, device=x.device)
        ts = ts.reshape(1) if ts.numel() == 1 else ts
        films = den.step_films(ts)
        if films is None:
            films = den.film_params(den.timestep_emb(ts))
        film_t = torch.stack([t for layer in films for pair in layer for t in pair], 1)  # [B or 1, 2·n, d]
        folds = []
        for layer, (k, v) in zip(den.transformer.layers(), text.kv, strict=True):
            f = cross_fold.cached_fold(text.folds, layer.cross_attn.layer, layer.cross_attn, k, v)
            folds.append((f.a, f.c, f.m))
        masks = tuple(m for m in (text.mask, len_mask) if m is not None)
        shapes = tuple(tuple(t.shape) for t in (x, film_t, *masks)) + tuple(tuple(k.shape) for k, _ in text.kv)
        weights = tuple((t.data_ptr(), None if t.is_inference() else t._version) for t in den.parameters())
        key = (shapes, text.mask is not None, len_mask is not None, weights)
        with self.lock:
            hit = self.graphs.get(key)
            if hit is not None:
                self.graphs.move_to_end(key)
            elif key not in self.graphs:  # first use: this call runs eagerly (packing the weights), then trace
                out = den._forward(x, ts, text, len_mask, films)
                self.graphs[key] = self._trace(den, key, (x, film_t, tuple(text.kv), tuple(folds)), masks)
                while len(self.graphs) > MAX_GRAPHS:
                    self.graphs.popitem(last=False)
                return out
        if hit is None:  # tracing failed for this shape
            return den._forward(x, ts, text, len_mask, films)
        graph, slots = hit
        try:
            return graph(x, film_t, tuple(text.kv), tuple(folds), packed.cached(slots), *masks)
        except (RuntimeError, KeyError):  # e.g. an input the key did not foresee: eager from now on, same numbers
            with self.lock:
                self.graphs[key] = None
            return den._forward(x, ts, text, len_mask, films)

    @staticmethod
    def _trace(den: Denoiser, key: tuple, args: tuple, masks: tuple) -> tuple | None:
        """(graph, the packed-weight slots it reads), or None when tracing failed."""
        slots = packed.slots(den)
        step = _Step(den, key[1], key[2]).eval()
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes are part of the key
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.freeze: the eager path is the fallback
                graph = torch.jit.trace(step, (*args, packed.cached(slots), *masks), check_trace=False)
                return torch.jit.freeze(graph), slots  # optimize_for_inference on top: no faster (0.998x wall)
        except Exception:  # noqa: BLE001 - any tracing failure: this shape runs eagerly (same numbers)
            return None


_forwards: weakref.WeakKeyDictionary[Denoiser, TracedForward] = weakref.WeakKeyDictionary()


def applies(denoiser: Denoiser, x: torch.Tensor) -> bool:
    """Trace this forward: float32 CPU inference without autocast, default attention everywhere, not tracing."""
    from . import halves

    return (ENABLED and not torch.is_grad_enabled() and not denoiser.training and x.device.type == "cpu"
            and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu") and not torch.jit.is_tracing()
            and halves.default_attention(denoiser))


def forward_of(denoiser: Denoiser) -> TracedForward:
    """``denoiser``'s traced forward (its graphs kept with it)."""
    f = _forwards.get(denoiser)
    if f is None:
        f = _forwards[denoiser] = TracedForward(denoiser)
    return f


__all__ = ["ENABLED", "MAX_GRAPHS", "TracedForward", "applies", "forward_of"]
