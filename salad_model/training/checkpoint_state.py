"""Training checkpoints that load with ``torch.load(weights_only=True)``.

A resumable checkpoint holds the model, the optimiser, the iteration and the three RNG states. numpy's RNG
state is a tuple holding an ndarray, which the weights-only unpickler refuses, so it is stored as a tensor;
checkpoints written before that change (an ndarray inside) still load, with only numpy's array
reconstruction allowed (under either numpy's module name for it) — never a full unpickle of a file on disk.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

try:  # numpy 2 moved the array reconstructor
    from numpy._core.multiarray import _reconstruct
except ImportError:
    from numpy.core.multiarray import _reconstruct

# What an older checkpoint's numpy RNG state needs, and nothing more (torch names these three). A pickle names
# the reconstructor by the module of the numpy that wrote it — ``numpy.core.multiarray`` (numpy 1) or
# ``numpy._core.multiarray`` (numpy 2) — while torch matches the allowlist by name, so both spellings are listed
# for the one function whatever numpy is installed (a checkpoint moved between machines was refused otherwise).
_NUMPY_ARRAY_GLOBALS = [(_reconstruct, f"{module}.multiarray._reconstruct") for module in ("numpy.core", "numpy._core")]
_NUMPY_ARRAY_GLOBALS += [np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def rng_states() -> dict:
    """The torch, Python and numpy RNG states, in types the weights-only unpickler accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch_rng": torch.get_rng_state(), "py_rng": random.getstate(),
            "np_rng": (kind, torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64)), int(pos),
                       int(has_gauss), float(gauss))}


def restore_rng_states(state: dict) -> None:
    """Undo `rng_states` (also accepts an older checkpoint's ndarray numpy state)."""
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["py_rng"])
    kind, keys, pos, has_gauss, gauss = state["np_rng"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((kind, keys.astype(np.uint32), pos, has_gauss, gauss))


def load_checkpoint(path: str | Path) -> dict:
    """A training checkpoint, weights only; older ones may also hold numpy arrays (their RNG state)."""
    with torch.serialization.safe_globals(_NUMPY_ARRAY_GLOBALS):
        return torch.load(path, map_location="cpu", weights_only=True)
