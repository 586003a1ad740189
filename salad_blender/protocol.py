"""Client side of the worker protocol: version, error codes and the array codec.

A deliberate copy of the codec in ``salad_model/serving/protocol.py``: the add-on runs in Blender's Python,
which has numpy but neither torch nor ``salad_model``. ``tests/test_client.py`` checks that both
copies read each other's output. Format reference: ``docs/worker_protocol.md``.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
from typing import Any

import numpy as np

PROTOCOL_VERSION = 1

# Codes the worker sends (stable), plus the client's own.
WORKER_CODES = ("bad_json", "bad_request", "unknown_op", "invalid_input", "model_error", "no_model",
                "cancelled", "out_of_memory", "internal", "line_too_long")
WORKER_EXITED = "worker_exited"        # the process ended (crash, kill, close) before answering
PROTOCOL_MISMATCH = "protocol_mismatch"  # hello answered with another protocol version
CANCELLED = "cancelled"
LINE_TOO_LONG = "line_too_long"  # also the client's own: a request it will not send (the worker would skip it)
WORKER_STOPPED = "worker_stopped"  # the client stopped the worker (stuck, or replaced): ``message`` says why
PROTOCOL_ERROR = "protocol_error"  # an event whose fields have the wrong types (e.g. "step": "3"): fails its job

# Request limits and choices: a deliberate copy of salad_model/runtime/requests.py (the add-on cannot
# import salad_model); tests/salad_model/runtime/test_requests.py checks that the two agree. The panel's
# ranges read these.
MAX_LINE_BYTES = 1 << 20
MAX_PROMPT_BYTES = 2048
SEED_MIN, SEED_MAX = 0, 2**32 - 1
STEPS_MIN, STEPS_MAX = 1, 1000
GUIDANCE_MIN, GUIDANCE_MAX = 0.0, 30.0
REWEIGHT_MIN, REWEIGHT_MAX = -2.0, 3.0
PROPORTION_MIN, PROPORTION_MAX = 0.0, 1.0
SCHEDULERS = ("ddim", "dpm++")
EDIT_MODES = ("auto", "word_swap", "refine", "reweight", "mirror")
MIRROR_SIDES = ("all", "upper", "lower")
FOV_MIN, FOV_MAX = 10.0, 150.0  # video import: the camera's horizontal field of view, degrees
CLEAN_UP_STRENGTH = 0.6  # video import: the model's motion-prior clean-up (salad_model runtime/motion_prior.py)
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
MIRROR_METHODS = ("geometric", "attention")  # exact mirror image | the paper's attention-row swap

ARRAY_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
ARRAY_KEYS = frozenset(("dtype", "shape", "data"))


def encode_array(array: Any) -> dict:
    """numpy array → ``{"dtype", "shape", "data": base64 of the little-endian bytes}``."""
    a = np.asarray(array)
    if a.dtype.name not in ARRAY_DTYPES:
        raise ValueError(f"dtype {a.dtype} cannot travel; use one of {', '.join(ARRAY_DTYPES)}")
    a = a.astype(a.dtype.newbyteorder("<"), order="C", copy=False)  # (ascontiguousarray makes 0-d 1-d)
    return {"dtype": a.dtype.name, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def is_array(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.keys() == ARRAY_KEYS


def decode_array(obj: dict) -> np.ndarray:
    """Inverse of :func:`encode_array`: a writable native-endian array (dtype and size checked)."""
    name, shape = obj.get("dtype"), obj.get("shape")
    if name not in ARRAY_DTYPES:
        raise ValueError(f"unsupported array dtype {name!r}")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ValueError(f"array shape must be a list of non-negative integers: {shape!r}")
    raw = base64.b64decode(obj.get("data", ""), validate=True)
    dt = np.dtype(name).newbyteorder("<")
    if len(raw) != dt.itemsize * math.prod(shape):
        raise ValueError(f"array data has {len(raw)} bytes, shape {shape} of {name} needs "
                         f"{dt.itemsize * math.prod(shape)}")
    return np.frombuffer(bytearray(raw), dtype=dt).reshape(shape).astype(np.dtype(name), copy=False)


def to_wire(obj: Any) -> Any:
    """Arrays → encoded dicts, numpy scalars → Python values, tuples → lists (for requests)."""
    if isinstance(obj, np.ndarray):
        return encode_array(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): to_wire(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_wire(v) for v in obj]
    return obj


def from_wire(obj: Any) -> Any:
    """Every encoded array in decoded JSON → numpy array."""
    if isinstance(obj, dict):
        if is_array(obj):
            return decode_array(obj)
        return {k: from_wire(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_wire(v) for v in obj]
    return obj


def dumps(message: dict) -> bytes:
    """One request line: compact ASCII JSON + newline."""
    return json.dumps(to_wire(message), separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


class EncodedRequest(dict):
    """A request already encoded once: ``line`` is its wire line (id included), which the client sends as is.

    Why: a request can be ~1 MiB of joints; the add-on measures it (to refuse one the worker cannot read) and
    the client sent it, each encoding it. Do not change the dict afterwards: the line would not follow.
    """

    line: bytes


_request_ids = itertools.count(1)


def encode_request(request: dict) -> EncodedRequest:
    """``request`` with a session-unique ``id`` (unless it has one) and its line, encoded once.

    Raises ``ValueError`` for NaN/inf and ``TypeError`` for a value JSON cannot carry, as :func:`dumps`.
    """
    req = EncodedRequest(request)
    req.setdefault("id", f"m{next(_request_ids)}")  # "m": never one of the client's own ids ("r1", ...)
    req.line = dumps(req)
    return req
