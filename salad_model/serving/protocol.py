"""Worker protocol: constants and the JSON-lines / array codec of the worker side.

Torch-free and numpy-lazy on purpose: the worker answers ``hello`` before importing torch or numpy,
so a cold start costs one interpreter start-up. The add-on cannot import ``salad_model``; it has its
own copy of the array codec in ``salad_blender/protocol.py`` (``tests/test_client.py`` checks that
the two interoperate). Format reference: ``docs/worker_protocol.md``.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

PROTOCOL_VERSION = 1

# Stable error codes (docs/worker_protocol.md lists when each is sent).
BAD_JSON = "bad_json"
BAD_REQUEST = "bad_request"
UNKNOWN_OP = "unknown_op"
INVALID_INPUT = "invalid_input"
MODEL_ERROR = "model_error"
NO_MODEL = "no_model"
CANCELLED = "cancelled"
OUT_OF_MEMORY = "out_of_memory"
INTERNAL = "internal"
LINE_TOO_LONG = "line_too_long"
ERROR_CODES = (BAD_JSON, BAD_REQUEST, UNKNOWN_OP, INVALID_INPUT, MODEL_ERROR, NO_MODEL, CANCELLED,
               OUT_OF_MEMORY, INTERNAL, LINE_TOO_LONG)

# dtypes allowed on the wire (names as numpy spells them); everything little-endian.
ARRAY_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
ARRAY_KEYS = frozenset(("dtype", "shape", "data"))
MAX_ID_INT = 2**53  # ids every JSON client can represent exactly
MAX_ID_BYTES = 256


class ProtocolError(ValueError):
    """A line or array that does not follow the protocol; ``code`` is the error code to answer with."""

    def __init__(self, code: str, message: str, request_id: str | int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def encode_array(array: Any) -> dict:
    """numpy array (or anything ``np.asarray`` takes) → ``{"dtype", "shape", "data": base64 LE bytes}``."""
    import numpy as np

    a = np.asarray(array)
    if a.dtype.name not in ARRAY_DTYPES:
        raise ProtocolError(INTERNAL, f"dtype {a.dtype} cannot travel; use one of {', '.join(ARRAY_DTYPES)}")
    a = a.astype(a.dtype.newbyteorder("<"), order="C", copy=False)  # (ascontiguousarray makes 0-d 1-d)
    data = base64.b64encode(a.tobytes()).decode("ascii")
    return {"dtype": a.dtype.name, "shape": list(a.shape), "data": data}


def is_array(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.keys() == ARRAY_KEYS


def decode_array(obj: dict) -> Any:
    """Inverse of :func:`encode_array`; a writable native-endian array. Checks dtype and byte count."""
    import numpy as np

    if not is_array(obj):
        raise ProtocolError(INVALID_INPUT, "an array must be an object with exactly dtype, shape and data")
    name, shape = obj["dtype"], obj["shape"]
    if name not in ARRAY_DTYPES:
        raise ProtocolError(INVALID_INPUT, f"unsupported array dtype {name!r}")
    if not isinstance(shape, list) or len(shape) > 32 or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in shape):
        raise ProtocolError(INVALID_INPUT, f"array shape must be a list of non-negative integers: {shape!r}")
    try:
        raw = base64.b64decode(obj["data"], validate=True)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(INVALID_INPUT, f"array data is not valid base64: {exc}") from exc
    dt = np.dtype(name).newbyteorder("<")
    if len(raw) != dt.itemsize * math.prod(shape):
        raise ProtocolError(INVALID_INPUT, f"array data has {len(raw)} bytes; shape {shape} of {name} "
                                           f"needs {dt.itemsize * math.prod(shape)}")
    return np.frombuffer(bytearray(raw), dtype=dt).reshape(shape).astype(np.dtype(name), copy=False)


def to_wire(obj: Any) -> Any:
    """Make a result JSON-ready: arrays → encoded dicts, numpy scalars → Python, tuples → lists."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, dict):
        return {str(k): to_wire(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_wire(v) for v in obj]
    mod = type(obj).__module__
    if mod == "numpy":
        import numpy as np

        if isinstance(obj, np.ndarray):
            return encode_array(obj)
        if isinstance(obj, np.generic):
            return obj.item()
    if mod.startswith("pathlib"):
        return str(obj)
    raise TypeError(f"cannot send {type(obj).__name__} over the worker protocol")


def from_wire(obj: Any) -> Any:
    """Inverse of :func:`to_wire` for decoded JSON: every array dict becomes a numpy array."""
    if isinstance(obj, dict):
        if is_array(obj):
            return decode_array(obj)
        return {k: from_wire(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_wire(v) for v in obj]
    return obj


def dumps(message: dict) -> bytes:
    """One protocol line (compact, ASCII-only JSON, newline-terminated)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def parse_line(line: bytes | str) -> dict:
    """A request line → dict with a string ``id`` and ``op``; ProtocolError(bad_json / bad_request)."""
    try:
        msg = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:  # (includes integers of more than 4300 digits)
        raise ProtocolError(BAD_JSON, f"request is not valid JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise ProtocolError(BAD_JSON, "request is nested too deeply") from None
    if not isinstance(msg, dict):
        raise ProtocolError(BAD_REQUEST, f"a request must be a JSON object, got {type(msg).__name__}")
    rid = msg.get("id")
    if not isinstance(rid, (str, int)) or isinstance(rid, bool) or rid == "":
        raise ProtocolError(BAD_REQUEST, "every request needs an \"id\" (non-empty string or integer)")
    if (isinstance(rid, int) and not -MAX_ID_INT <= rid <= MAX_ID_INT) or (
            isinstance(rid, str) and len(rid.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES):
        raise ProtocolError(BAD_REQUEST, f"an \"id\" must be an integer within ±2^53 or a string of at most "
                                         f"{MAX_ID_BYTES} bytes")
    if not isinstance(msg.get("op"), str):
        raise ProtocolError(BAD_REQUEST, "every request needs an \"op\" string", rid)
    return msg
