"""Linear layers with their weights packed once for oneDNN (CPU inference, float32).

Why: at the denoiser's shapes (≈ 700 tokens × 256 → 768 / 1024 / 256) torch's default ``F.linear`` (MKL
sgemm on the transposed weight, after copying the bias into the output) reached 111 GFLOP/s on the FFN's
[686, 256] × [256, 1024] while the same product with the weight pre-packed for oneDNN reached ~150 on this
2-core CPU (same run); oneDNN also adds the bias and the FFN's GELU/ReLU inside the kernel, so the bias copy
and the separate activation pass over the [tokens, 1024] hidden layer are gone. Same products, same
activation formula (erf GELU): the results agree with ``F.linear`` to float rounding (measured 0 difference
at these shapes; the golden tests hold 1e-5).

Packed weights live in a cache beside the module (not in it: nothing changes in its state dict, copies or
pickles) and are rebuilt when a weight is replaced or changed in place (its version moves), like the fused Q/K/V
weight of :class:`~salad_model.runtime.attention.Attention`. Used only where it applies (:func:`applies`):
inference on the CPU in float32 without autocast, on a torch built with oneDNN; everything else runs the
plain ``F.linear``.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import nn

ENABLED = True  # switch for same-run A/B timing (benchmarks) and tests of the plain path
_ACTIVATIONS = {None: ("none", ""), "gelu": ("gelu", "none"), "relu": ("relu", "")}
_available: bool | None = None
# owner module → slot → (the weight itself (weakly), its key, the packed copy)
_cache: weakref.WeakKeyDictionary[nn.Module, dict[str, tuple]] = weakref.WeakKeyDictionary()


SPLIT_THREADS = True  # inside gemm_threads_only(): everything but the packed GEMMs on one thread (A/B switch)
_gemm_threads = 0  # > 0 inside gemm_threads_only(): the thread count the packed GEMMs get back


class gemm_threads_only:  # noqa: N801 (a context manager, used like a function)
    """Inside: torch runs on one thread except the packed GEMMs, which get the caller's threads.

    Why: each small op (layer norm, softmax, FiLM, copies over ~10⁵ floats) is an OpenMP parallel region whose
    second thread must be woken (OMP_WAIT_POLICY=PASSIVE). On its own such an op ran no faster on 2 threads
    than on 1 (add_ over [2, 49, 7, 256]: 16 µs on 1 thread, 22-29 on 2), and on a busy machine each wake-up
    waits for the scheduler. The GEMMs, ~2/3 of a step, still use every thread."""

    def __enter__(self) -> gemm_threads_only:
        global _gemm_threads
        self.threads, self.outer = torch.get_num_threads(), _gemm_threads
        if SPLIT_THREADS and self.threads > 1 and not self.outer and available():
            _gemm_threads = self.threads
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc: object) -> None:
        global _gemm_threads
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        _gemm_threads = self.outer


def splitting() -> bool:
    """Inside :class:`gemm_threads_only` (its thread setting is process-wide: no second forward may run)."""
    return _gemm_threads > 0


def available() -> bool:
    """torch has oneDNN's packed linear (probed once on a 2×2 product)."""
    global _available
    if _available is None:
        try:
            w = torch.ones(2, 2)
            y = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 2), torch.ops.mkldnn._reorder_linear_weight(w, 1),
                                                   None, "none", [], "")
            _available = bool(torch.backends.mkldnn.is_available()) and torch.equal(y, torch.full((1, 2), 2.0))
        except (AttributeError, RuntimeError, NotImplementedError):
            _available = False
    return _available


def applies(x: torch.Tensor) -> bool:
    """Packed weights serve ``x``: float32 inference on the CPU, no autocast, oneDNN present."""
    return (ENABLED and not torch.is_grad_enabled() and x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and available())


def _key(t: torch.Tensor) -> tuple:
    return t.data_ptr(), None if t.is_inference() else t._version, tuple(t.shape)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, owner: nn.Module, slot: str = "",
           activation: str | None = None) -> torch.Tensor:
    """``act(F.linear(x, weight, bias))``; through a oneDNN-packed copy of ``weight`` cached under
    (``owner``, ``slot``) when :func:`applies`. ``activation``: None, "gelu" (erf) or "relu"."""
    if not applies(x) or weight.dtype != torch.float32:
        y = F.linear(x, weight, bias)
        return y if activation is None else getattr(F, activation)(y)
    slots = _cache.setdefault(owner, {})
    key = _key(weight)
    hit = slots.get(slot)
    if hit is None or hit[0]() is not weight or hit[1] != key:  # a new weight, or this one changed in place
        rows = x.numel() // max(1, x.shape[-1])
        with torch.no_grad():
            packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), max(1, rows))
        hit = slots[slot] = (weakref.ref(weight), key, packed)
    attr, algorithm = _ACTIVATIONS[activation]
    bias = None if bias is None else bias.detach()
    if torch.jit.is_tracing():  # runtime/traced.py passes the packed weight in as a graph input
        return _script_linear()(x, hit[2], bias, attr, algorithm)
    if not _gemm_threads:
        return torch.ops.mkldnn._linear_pointwise(x, hit[2], bias, attr, [], algorithm)
    torch.set_num_threads(_gemm_threads)
    try:
        return torch.ops.mkldnn._linear_pointwise(x, hit[2], bias, attr, [], algorithm)
    finally:
        torch.set_num_threads(1)


_scripted: list = []


def _script_linear():  # noqa: ANN202 - a TorchScript function
    """The packed call as a TorchScript function: the tracer cannot record its empty ``Scalar?[]`` argument
    itself, but records a call into a scripted function. Compiled on first use."""
    if not _scripted:
        from typing import Optional, Union

        def packed_linear(x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor], attr: str,  # noqa: UP045
                          algorithm: str) -> torch.Tensor:
            scalars = torch.jit.annotate(list[Optional[Union[int, float, complex]]], [])  # noqa: UP007, UP045
            return torch.ops.mkldnn._linear_pointwise(x, w, b, attr, scalars, algorithm)

        _scripted.append(torch.jit.script(packed_linear))
    return _scripted[0]


def slots(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """The (owner, slot) of every packed weight cached for ``model``'s modules, in a fixed order."""
    return [(m, s) for m in model.modules() for s in sorted(_cache.get(m, {}))]


def cached(where: list[tuple[nn.Module, str]]) -> tuple[torch.Tensor, ...]:
    """The packed weights at those slots (:func:`slots`), as they are now."""
    return tuple(_cache[m][s][2] for m, s in where)


def module_linear(m: nn.Linear, x: torch.Tensor, activation: str | None = None) -> torch.Tensor:
    """``m(x)`` (then ``activation``) through :func:`linear`, cached on ``m``."""
    return linear(x, m.weight, m.bias, m, "", activation)


def sequential(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``seq(x)`` with each Linear followed by a fusable activation run as one packed call."""
    mods = list(seq)
    i = 0
    while i < len(mods):
        m = mods[i]
        act = activation_name(mods[i + 1]) if i + 1 < len(mods) else None
        if isinstance(m, nn.Linear) and applies(x):
            x = module_linear(m, x, act)
            i += 2 if act is not None else 1
        else:
            x = m(x)
            i += 1
    return x


def activation_name(act: nn.Module) -> str | None:
    """"gelu" / "relu" for the activations oneDNN fuses exactly (erf GELU, ReLU); None otherwise."""
    if isinstance(act, nn.GELU) and act.approximate == "none":
        return "gelu"
    return "relu" if isinstance(act, nn.ReLU) else None


__all__ = ["ENABLED", "SPLIT_THREADS", "activation_name", "applies", "available", "cached", "gemm_threads_only",
           "linear", "module_linear", "sequential", "slots", "splitting"]
