"""The two halves of a batched CFG step, each on its own thread with half the cores (CPU inference).

Why: in a step on the CPU the GEMMs use every thread, but everything else — layer norms, the attentions'
softmax and copies, FiLM, Python — runs on one (:class:`~salad_model.runtime.packed.gemm_threads_only`:
those ops were no faster on two), so on 2 cores about a third of a step's wall time left one core idle. The
unconditional and conditional rows never meet inside the network (attention is within a sample, layer norm
within a token), so the batch's two halves run as two forwards at once, one on a worker thread: each op holds
one core for its whole length and no op waits for the other core. Each half's rows are computed exactly as in
the batched forward, up to float rounding of GEMMs with half the rows (measured ≤ 6·10⁻⁷ per step).

Applies only where the result cannot depend on the call order: inference on the CPU through the packed
weights (:func:`packed.applies`), ≥ 2 threads, an even batch, and every attention module on the default
processor (an editing controller records maps in call order, so it keeps the single batched forward).
Measured at 2 threads only (README, *Speed*); with n threads each half gets n // 2.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

import torch
from torch import nn

from . import packed
from .attention import Attention, AttnProcessor

if TYPE_CHECKING:
    from .denoiser import TextContext

ENABLED = True  # switch for same-run A/B timing (benchmarks) and tests of the batched path
# Split only when one half's FFN GEMM has at least this many multiply-adds: below it the step is mostly Python
# dispatch, which each half repeats under one GIL. Measured (DDIM-50, 196 frames, 2 threads, same-run A/B):
# official size (343 tokens x 256 x 1024 per half = 9.0e7) 0.73x wall, 1.06x CPU; the demo model (128 x 256:
# 1.1e7) 0.96x wall for 1.42x CPU -- not worth it. Eager halves only: traced ones (runtime/traced.py) hold no GIL
# and split at any size (demo model 0.60x wall, 0.88x CPU against its batched forward).
MIN_WORK = 1 << 25
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _forget_pool() -> None:  # a forked child has no worker thread: it makes its own
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="salad-half")
        return _pool


# model → (the module-registration count it was listed at, its Attention modules). Walking model.modules()
# (~200 at the official size) on every forward cost more than the processor checks themselves; the list is
# rebuilt whenever any module anywhere is registered (setattr, add_module, ModuleList.append, construction),
# so a module added after the first forward is always seen (one deleted stays listed until the next registration:
# at worst it keeps the batched forward, never a wrong split). Processors are checked on every call.
_attention: weakref.WeakKeyDictionary[nn.Module, tuple[int, tuple[Attention, ...]]] = weakref.WeakKeyDictionary()
_registrations = 0


def _registered(module: nn.Module, name: str, submodule: nn.Module | None) -> None:
    global _registrations
    _registrations += 1


torch.nn.modules.module.register_module_module_registration_hook(_registered)


def attention_modules(model: nn.Module) -> tuple[Attention, ...]:
    """``model``'s :class:`Attention` modules, listed once per module-tree change (see ``_attention``)."""
    hit = _attention.get(model)
    if hit is None or hit[0] != _registrations:
        hit = _attention[model] = (_registrations, tuple(m for m in model.modules() if isinstance(m, Attention)))
    return hit[1]


def default_attention(model: nn.Module) -> bool:
    """Every attention module of ``model`` runs the default processor (no controller watching the calls)."""
    return all(type(m.processor) is AttnProcessor for m in attention_modules(model))


def applies(model: nn.Module, x: torch.Tensor, text: TextContext) -> bool:
    """Split this forward: enough work per half (:data:`MIN_WORK`) or traced halves, CPU float32 inference,
    ≥ 2 threads, an even batch whose text rows match (or are one context shared by all), not already inside a
    split, default attention everywhere."""
    from . import traced

    b = x.shape[0]
    cfg = getattr(model, "config", None)
    work = (x.numel() // max(1, x.shape[-1]) // 2) * getattr(cfg, "latent_dim", 0) * getattr(cfg, "ff_dim", 0)
    return (ENABLED and b >= 2 and b % 2 == 0 and (work >= MIN_WORK or traced.applies(model, x))
            and torch.get_num_threads() >= 2
            and packed.applies(x) and not packed.splitting() and text.memory.shape[0] in (1, b)
            and default_attention(model))


Forward = Callable[[torch.Tensor, torch.Tensor, "TextContext", "torch.Tensor | None"], torch.Tensor]


def run(forward: Forward, x: torch.Tensor, timesteps: torch.Tensor | int, text: TextContext,
        len_mask: torch.Tensor | None) -> torch.Tensor:
    """``forward`` on the first half of the batch on the worker thread and on the second here, concatenated."""
    b = x.shape[0]
    h = b // 2
    ts = torch.as_tensor(timesteps, device=x.device)
    ts = (ts, ts) if ts.numel() == 1 else (ts.reshape(b)[:h], ts.reshape(b)[h:])
    ctx = (text, text) if text.memory.shape[0] == 1 else text.halves()
    lm = (None, None) if len_mask is None else (len_mask[:h], len_mask[h:])
    threads = torch.get_num_threads()
    each = max(1, threads // 2)
    inference = torch.is_inference_mode_enabled()

    def first() -> torch.Tensor:
        torch.set_num_threads(each)  # this thread's own OpenMP / MKL setting
        with torch.inference_mode(inference), torch.no_grad():
            return forward(x[:h], ts[0], ctx[0], lm[0])

    job = _executor().submit(first)
    torch.set_num_threads(each)
    try:
        second = forward(x[h:], ts[1], ctx[1], lm[1])
    finally:
        torch.set_num_threads(threads)
        wait([job])  # never leave the worker running past this call, even when our half failed
    return torch.cat([job.result(), second])


__all__ = ["ENABLED", "MIN_WORK", "applies", "attention_modules", "default_attention", "run"]
