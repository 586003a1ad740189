"""One definition of a request and of an edit: fields, types, ranges, defaults, limits.

Every entry point (CLI, Python API, worker, the add-on through its copy in ``salad_blender/protocol.py``)
checks its input here, so a value is refused (or accepted) the same way everywhere. Torch-free and
numpy-lazy: the worker imports it before torch. ``tests/salad_model/runtime/test_requests.py`` checks the
add-on's copy of the constants agrees with this module.

Decisions, once:
- integers are ``int`` and not ``bool`` (``True`` is no step count, ``"7"`` no seed, ``1.7`` no seed);
- numbers are finite ``int``/``float`` (not bool); huge integers are compared exactly, never overflowed;
- seeds are 0 … 2^32−1 (what every sampler, numpy and a Blender property pair can hold portably);
- ``guidance=None`` means "the model's default"; 0 means guidance 0;
- a prompt is refused when it is only whitespace, zero-width or control characters, or longer than
  :data:`MAX_PROMPT_BYTES` UTF-8 bytes (checked before any tokeniser sees it);
- ``frames`` and ``seconds`` together are refused (neither silently wins).
"""

from __future__ import annotations

import math
import numbers
import unicodedata
from dataclasses import dataclass
from typing import Any

# ------------------------------------------------------------------------------------------------
# Limits and choices (the add-on's copy: salad_blender/protocol.py)

MAX_LINE_BYTES = 1 << 20  # one worker protocol line (a 196-frame joints array is ~25 KB)
MAX_PROMPT_BYTES = 2048  # UTF-8 bytes of one prompt, before tokenising (encoders read ≤ 77 tokens)
SEED_MIN, SEED_MAX = 0, 2**32 - 1
STEPS_MIN, STEPS_MAX = 1, 1000
GUIDANCE_MIN, GUIDANCE_MAX = 0.0, 30.0
SECONDS_MAX = 3600.0
FRAMES_MAX = 100_000  # a sanity cap; the model's own range is checked by the pipeline
REWEIGHT_MIN, REWEIGHT_MAX = -2.0, 3.0
PROPORTION_MIN, PROPORTION_MAX = 0.0, 1.0
NULL_TEXT_ITERS_MAX = 1000
THREADS_MAX = 1024
FOV_MIN, FOV_MAX = 10.0, 150.0  # a video camera's horizontal field of view, degrees (issue 14)
CLEAN_UP_STRENGTH = 0.6  # the motion-prior clean-up of a video's motion (runtime/motion_prior.py, docs/video.md)
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
JOINTS_MAX_ABS = 1000.0  # metres: real motion farther than 1 km from the origin is a unit mistake
JOINTS_MAX_FRAMES = 100_000

SCHEDULERS = ("ddim", "dpm++")
EDIT_MODES = ("auto", "word_swap", "refine", "reweight", "mirror")
MIRROR_SIDES = ("all", "upper", "lower")
# "geometric": the exact mirror image of the motion (or of its arms / legs); "attention": the paper's
# cross-attention row swap (SALAD_SPEC §5), which on the demo model rarely flips the side (model card).
MIRROR_METHODS = ("geometric", "attention")
DEFAULT_STEPS = 50
DEFAULT_SCHEDULER = "ddim"
DEFAULT_PROPORTION = 0.2
# Fast mode (issue #18): DPM-Solver++ at few steps with guidance on the first steps only (the conditional
# half alone after them). Chosen on the demo model's held-out captions: docs/MODEL_CARD.md, "Fast mode".
FAST_PRESET = {"scheduler": "dpm++", "steps": 6, "guided_steps": 4}


class InputError(ValueError):
    """User input the model cannot take (prompt, length, edit parameters); the message says what to do."""


# ------------------------------------------------------------------------------------------------
# Field table: one row per request field


@dataclass(frozen=True)
class Field:
    """Type and range of one request field. ``kind``: str, int, num, bool, array, id, any."""

    kind: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    positive: bool = False  # lo is exclusive (seconds)
    max_bytes: int | None = None


FIELDS: dict[str, Field] = {
    "prompt": Field("str", max_bytes=MAX_PROMPT_BYTES),
    "source_prompt": Field("str", max_bytes=MAX_PROMPT_BYTES),
    "edit_prompt": Field("str", max_bytes=MAX_PROMPT_BYTES),
    "word": Field("str", max_bytes=MAX_PROMPT_BYTES),
    "frames": Field("int", 1, FRAMES_MAX),
    "seconds": Field("num", 0.0, SECONDS_MAX, positive=True),
    "seed": Field("int", SEED_MIN, SEED_MAX),
    "guidance": Field("num", GUIDANCE_MIN, GUIDANCE_MAX),
    "edit_guidance": Field("num", GUIDANCE_MIN, GUIDANCE_MAX),
    "steps": Field("int", STEPS_MIN, STEPS_MAX),
    "scheduler": Field("str", choices=SCHEDULERS),
    "mode": Field("str", choices=EDIT_MODES),
    "scale": Field("num", REWEIGHT_MIN, REWEIGHT_MAX),
    "mirror": Field("str", choices=MIRROR_SIDES),
    "mirror_method": Field("str", choices=MIRROR_METHODS),
    "src_proportion": Field("num", PROPORTION_MIN, PROPORTION_MAX),
    "swap_src_proportion": Field("num", PROPORTION_MIN, PROPORTION_MAX),
    "inject_temporal": Field("bool"),
    "return_source": Field("bool"),
    "record_maps": Field("bool"),
    "fast": Field("bool"),
    "guided_steps": Field("int", 0, STEPS_MAX),
    "overlap": Field("int", 0, FRAMES_MAX),
    "null_text_iters": Field("int", 0, NULL_TEXT_ITERS_MAX),
    "joints": Field("array"),
    "model": Field("str", max_bytes=4096),
    "device": Field("str", max_bytes=64),
    "threads": Field("int", 1, THREADS_MAX),
    "reload": Field("bool"),
    "protocol": Field("int", 0, 2**31 - 1),
    "client": Field("str", max_bytes=256),
    "target": Field("id"),
    # shots (runtime/shots.py, serving/shot_ops.py): segment objects and parts are checked there
    "segments": Field("any"),
    "parts": Field("any"),
    "context_seconds": Field("num", 0.0, 60.0, positive=True),
    "resample": Field("int", 0, 10),
    "trim_last": Field("bool"),
    "keep_path": Field("bool"),
    # video (serving/video_ops.py, issue 14): a file the worker reads, the camera's field of view
    "path": Field("str", max_bytes=4096),
    "fov": Field("num", FOV_MIN, FOV_MAX),
    "max_seconds": Field("num", 0.0, SECONDS_MAX, positive=True),
    "clean_up": Field("num", 0.0, 1.0, positive=True),
    "joints_a": Field("array"),
    "joints_b": Field("array"),
    "source_seconds": Field("num", 0.0, SECONDS_MAX, positive=True),
}

SAMPLING_KEYS = ("frames", "seconds", "seed", "guidance", "steps", "scheduler")
EDIT_KEYS = ("edit_prompt", "mode", "word", "scale", "mirror", "mirror_method", "src_proportion",
             "swap_src_proportion", "inject_temporal")
REAL_EDIT_KEYS = ("edit_prompt", "mode", "word", "scale", "mirror", "mirror_method", "edit_guidance")

_WHAT = {"str": "a string", "int": "an integer", "num": "a number", "bool": "true or false",
         "array": "an encoded array {dtype, shape, data}", "id": "a request id (string or integer)"}


def is_int(v: Any) -> bool:
    """An integer that is not a bool (numpy integers count; numpy bools do not)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and type(v).__name__ != "bool_"


def is_number(v: Any) -> bool:
    """A real int or float that is not a bool (numpy scalars count)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and type(v).__name__ != "bool_"


def short_repr(v: Any, limit: int = 60) -> str:
    """A bounded description of a user value for an error message (never a huge or recursive repr)."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**30:
        return f"an integer of {len(str(abs(v)))} digits"
    if isinstance(v, (dict, list)) and len(v) > 8:
        return f"a {type(v).__name__} of {len(v)} items"
    try:
        text = repr(v)
    except RecursionError:
        return f"a deeply nested {type(v).__name__}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _range(lo: float | None, hi: float | None) -> str:
    return f"{lo:g} … {hi:g}" if isinstance(lo, float) or isinstance(hi, float) else f"{lo} … {hi}"


def check_value(name: str, value: Any, field: Field | None = None) -> Any:
    """``value`` checked against the field's type and range; returns it as a plain Python value."""
    f = field or FIELDS[name]
    if f.kind == "any":
        return value
    if f.kind == "id":
        if not (isinstance(value, str) and value) and not (isinstance(value, int) and not isinstance(value, bool)):
            raise InputError(f"{name!r} must be {_WHAT['id']}, got {short_repr(value)}")
        return value
    if f.kind == "str":
        if not isinstance(value, str):
            raise InputError(f"{name!r} must be a string, got {short_repr(value)}")
        if f.max_bytes is not None and len(value.encode("utf-8", "surrogatepass")) > f.max_bytes:
            raise InputError(f"{name!r} is too long: at most {f.max_bytes} bytes (UTF-8)")
        check_unicode(value, repr(name))
        if f.choices is not None and value not in f.choices:
            raise InputError(f"{name!r} must be one of {', '.join(f.choices)}, got {short_repr(value)}")
        return value
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise InputError(f"{name!r} must be true or false, got {short_repr(value)}")
        return value
    if f.kind == "array":
        if not (isinstance(value, dict) and value.keys() == {"dtype", "shape", "data"}):
            raise InputError(f"{name!r} must be {_WHAT['array']}")
        return value
    if f.kind == "int":
        if not is_int(value):
            raise InputError(f"{name!r} must be an integer, got {short_repr(value)}")
        value = int(value)
    elif f.kind == "num":
        if not is_number(value):
            raise InputError(f"{name!r} must be a number, got {short_repr(value)}")
        if not isinstance(value, int) and not math.isfinite(value):
            raise InputError(f"{name!r} must be a finite number, got {short_repr(value)}")
    else:  # pragma: no cover - a table typo
        raise AssertionError(f"unknown field kind {f.kind!r}")
    lo, hi = f.lo, f.hi
    # int vs float comparisons are exact in Python (no overflow for 10**400).
    if (lo is not None and (value < lo or (f.positive and value <= lo))) or (hi is not None and value > hi):
        rng = f"a positive number, at most {hi:g}" if f.positive else f"within {_range(lo, hi)}"
        raise InputError(f"{name!r} must be {rng}, got {short_repr(value)}")
    return value if f.kind == "int" else float(value)


def check_fields(params: dict, allowed: tuple[str, ...] | frozenset[str]) -> dict:
    """Type- and range-check request fields; unknown ones are refused (typos); ``None`` = not given."""
    unknown = sorted(str(k) for k in set(params) - set(allowed))
    if unknown:
        raise InputError(f"unknown field(s): {', '.join(short_repr(k, 40) for k in unknown)} "
                         f"(allowed: {', '.join(sorted(allowed)) or 'none'})")
    out = {k: check_value(k, v) for k, v in params.items() if v is not None}
    if "frames" in out and "seconds" in out:
        raise InputError("give the length as frames or as seconds, not both")
    return out


# ------------------------------------------------------------------------------------------------
# Prompts

_INVISIBLE = ("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")


def check_unicode(text: str, what: str) -> None:
    """Refuse a lone surrogate (JSON's ``"\\ud800"`` decodes to one): the tokeniser failed on it with
    "TextEncodeInput must be Union[...]" (an internal error for ``prompt_tokens``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} is not valid Unicode text: a lone surrogate (U+{ord(text[exc.start]):04X}) at "
                         f"character {exc.start + 1}.") from None


def check_prompt_text(text: Any, name: str = "prompt") -> str:
    """A prompt stripped of surrounding whitespace; refuses non-strings, invisible-only and oversized text.

    Runs before tokenising so that a 10 MB prompt costs nothing. The token count is checked by
    :func:`salad_model.runtime.text.validate_prompt`, which needs the encoder.
    """
    if not isinstance(text, str):
        raise InputError(f"The {name} must be a string, got {type(text).__name__}.")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_PROMPT_BYTES:
        raise InputError(f"The {name} is too long: {size} bytes, at most {MAX_PROMPT_BYTES} (UTF-8).")
    check_unicode(text, f"The {name}")
    stripped = text.strip()
    if not stripped or all(unicodedata.category(c) in _INVISIBLE or c.isspace() for c in stripped):
        raise InputError(f"The {name} is empty: describe the motion, e.g. 'a person walks forward'.")
    return stripped


# ------------------------------------------------------------------------------------------------
# Sampling and length


def check_sampling(guidance: Any, steps: Any, scheduler: Any) -> tuple[float, int, str]:
    """(guidance, steps, scheduler) checked; guidance must already be resolved (not None)."""
    if scheduler not in SCHEDULERS:
        raise InputError(f"unknown sampler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
    steps = check_value("steps", steps)
    guidance = check_value("guidance", guidance)
    return guidance, steps, scheduler


def check_length_args(frames: Any, seconds: Any) -> None:
    """Types of frames / seconds; exactly one of them must be given."""
    if frames is not None and seconds is not None:
        raise InputError("give the length as frames or as seconds, not both")
    if frames is None and seconds is None:
        raise InputError("give the length in frames or seconds")
    if frames is not None and not is_int(frames):
        raise InputError(f"length must be a whole number of frames, got {short_repr(frames)}")
    if seconds is not None:
        if not is_number(seconds) or (not isinstance(seconds, int) and not math.isfinite(seconds)) or seconds <= 0:
            raise InputError(f"duration must be a positive number of seconds, got {short_repr(seconds)}")


def check_seed(seed: Any) -> int:
    return check_value("seed", seed)


# ------------------------------------------------------------------------------------------------
# Edits


@dataclass(frozen=True)
class EditSpec:
    """One edit, validated. ``kind`` resolves ``mode="auto"``: prompt (word swap / refine, chosen by the
    tokens), reweight, or mirror."""

    mode: str = "auto"
    edit_prompt: str | None = None
    word: str | None = None
    scale: float | None = None
    mirror: str | None = None
    mirror_method: str = "geometric"
    src_proportion: float = DEFAULT_PROPORTION
    swap_src_proportion: float = DEFAULT_PROPORTION
    inject_temporal: bool | None = None
    edit_guidance: float | None = None

    @classmethod
    def create(cls, **fields: Any) -> EditSpec:
        """Check every given field (None = default) and the combination; raises InputError."""
        given = {k: v for k, v in fields.items() if v is not None}
        unknown = sorted(set(given) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(f"unknown edit field(s): {', '.join(unknown)}")
        checked = {k: check_value(k, v) for k, v in given.items()}
        spec = cls(**checked)
        kind = spec.kind
        if kind == "reweight":
            if not spec.word or not spec.word.strip():
                raise InputError("re-weighting needs a word or phrase of the prompt")
            if spec.scale is None:
                raise InputError(f"re-weighting needs a scale within {REWEIGHT_MIN:g} … {REWEIGHT_MAX:g}")
        return spec

    @property
    def kind(self) -> str:
        """``mirror``, ``reweight``, ``word_swap``, ``refine`` or ``prompt`` (auto: decided by tokens)."""
        if self.mode == "mirror" or (self.mode == "auto" and self.mirror):
            return "mirror"
        if self.mode == "reweight" or (self.mode == "auto" and self.word is not None):
            return "reweight"
        return "prompt" if self.mode == "auto" else self.mode

    @property
    def geometric_mirror(self) -> str | None:
        """The side to mirror exactly (no sampling), or None when this is not a geometric mirror."""
        if self.kind != "mirror" or self.mirror_method != "geometric":
            return None
        return self.mirror or "all"


# ------------------------------------------------------------------------------------------------
# Real motion input


def check_joints(joints: Any, num_joints: int = 22) -> Any:
    """Real-motion joints [T, J, 3] as float64, refusing NaN/inf, absurd sizes and degenerate bodies.

    Degenerate: a frame whose hips and shoulders have no left-right extent across the up axis (all
    zeros, a collapsed body) has no facing direction; canonicalising it would divide by zero.
    """
    import numpy as np

    try:
        a = np.asarray(joints)
    except (ValueError, TypeError) as exc:
        raise InputError(f"motion must be a numeric array [T, {num_joints}, 3]: {exc}") from exc
    if a.dtype.kind not in "iuf":
        raise InputError(f"motion must be a numeric array [T, {num_joints}, 3], got dtype {a.dtype}")
    if a.ndim != 3 or a.shape[1:] != (num_joints, 3):
        raise InputError(f"motion must be joints [T, {num_joints}, 3], got {tuple(a.shape)}")
    if not 1 <= a.shape[0] <= JOINTS_MAX_FRAMES:
        raise InputError(f"motion must have 1 … {JOINTS_MAX_FRAMES} frames, got {a.shape[0]}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise InputError("motion contains NaN or infinite values")
    if np.abs(a).max() > JOINTS_MAX_ABS:
        raise InputError(f"motion has coordinates beyond {JOINTS_MAX_ABS:g} m; joints must be in metres "
                         "(is it in centimetres, or corrupt?)")
    if num_joints == 22:  # SMPL-22: hips 1/2, shoulders 16/17; Y up
        across = (a[:, 2] - a[:, 1]) + (a[:, 17] - a[:, 16])
        flat = np.hypot(across[:, 0], across[:, 2])
        if (flat < 1e-4).any():
            bad = int(np.argmax(flat < 1e-4))
            raise InputError(f"motion frame {bad} is degenerate: hips and shoulders have no left-right "
                             "extent, so the body has no facing direction")
    return a
