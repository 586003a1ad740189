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
            raise RequestError(P.MODEL_ERROR, f"the model produced NaN or infinite values ({where}); the "
                                              "weights may be corrupt or the input out of the model's range")
    elif isinstance(data, float) and not math.isfinite(data):
        raise RequestError(P.MODEL_ERROR, f"the model produced a non-finite number ({where})")


def _is(exc: BaseException, module: str, name: str) -> bool:
    """isinstance against a salad_model class without importing its (torch-importing) module."""
    cls = getattr(sys.modules.get(module), name, None)
    return cls is not None and isinstance(exc, cls)
