"""How the worker refuses a request: its error type, the cancel signal, and checks on exceptions and results.

Standard library only at import time (``hello`` is answered before torch or numpy are imported).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from . import protocol as P


class RequestError(Exception):
    """A request the worker refuses (bad fields, no model); becomes an error event with ``code``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class _Cancel(Exception):
    """Cancel noticed outside the sampling loop (queued request, between loading stages)."""


def check_finite(data: Any, where: str = "result") -> None:
    """Refuse NaN/inf anywhere in a result before it leaves the worker (a diverged model, not user data)."""
    import numpy as np

    if isinstance(data, dict):
        for k, v in data.items():
            check_finite(v, f"{where}.{k}")
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            check_finite(v, f"{where}[{i}]")
    elif isinstance(data, np.ndarray):
        if data.dtype.kind in "fc" and not np.isfinite(data).all():
            raise RequestError(P.MODEL_ERROR, f"the model produced {_non_finite_summary(data)} ({where}); the "
                                              "weights may be corrupt or the input out of the model's range")
    elif isinstance(data, float) and not math.isfinite(data):
        kind = "NaN" if math.isnan(data) else "an infinite number"
        raise RequestError(P.MODEL_ERROR, f"the model produced {kind} ({where})")


def _non_finite_summary(a: Any) -> str:
    """What is wrong in an array holding NaN/inf: how many of each, and in how many frames (axis 0) and joints
    (axis 1 of a [T, J, 3] array), so "NaN everywhere" (corrupt weights) reads differently from "inf in two
    frames" (an overflow at the clip's end)."""
    import numpy as np

    nan, inf = np.isnan(a), np.isinf(a)
    kinds = [f"{n} {name}" for n, name in ((int(nan.sum()), "NaN"), (int(inf.sum()), "infinite")) if n]
    text = " and ".join(kinds) + f" value{'s' if nan.sum() + inf.sum() > 1 else ''} of {a.size}"
    if a.ndim >= 2:
        bad = nan | inf
        frames = np.flatnonzero(bad.reshape(len(a), -1).any(1))
        text += f" in {len(frames)} of {len(a)} frames (first {frames[0]}, last {frames[-1]})"
        if a.ndim == 3:
            joints = bad.any((0, 2))
            text += f", {int(joints.sum())} of {a.shape[1]} joints"
    return text


def _is(exc: BaseException, module: str, name: str) -> bool:
    """isinstance against a salad_model class without importing its (torch-importing) module."""
    cls = getattr(sys.modules.get(module), name, None)
    return cls is not None and isinstance(exc, cls)
