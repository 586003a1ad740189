"""Worker operations of shots (issue #13): ``compose``, ``continue``, ``inbetween``, ``regenerate_parts``.

Mixed into the worker (errors are ``InputError``: the worker may run as ``__main__``, so its own
exception classes are not importable here by name); each op validates what the field table cannot
(required fields, segment objects), runs :class:`~salad_model.runtime.shots.ShotDirector` with the worker's
per-step progress / cancel callback, and returns a motion (``joints``, ``features``, ``contacts``,
``meta`` with ``meta.shot`` = the recipe).
Real motion arrives as joints [T, 22, 3] in model space (metres, Y up, 20 fps), like ``edit_real``.
"""

from __future__ import annotations

from typing import Any

from . import protocol as P

_SHOT = ("seed", "guidance", "steps", "scheduler", "context_seconds", "resample")
# allowed fields per op; types and ranges: salad_model/runtime/requests.FIELDS
SHOT_FIELDS: dict[str, tuple[str, ...]] = {
    "compose": ("segments", "trim_last", *_SHOT),
    "continue": ("joints", "prompt", "seconds", *_SHOT),
    "inbetween": ("joints_a", "joints_b", "prompt", "seconds", *_SHOT),
    "regenerate_parts": ("joints", "source_prompt", "frames", "source_seconds", "prompt", "parts", "keep_path",
                         *_SHOT),
}
SHOT_OPS = tuple(SHOT_FIELDS)


def _need(op: str, params: dict, *keys: str) -> None:
    from ..runtime.pipeline import InputError

    for k in keys:
        if k not in params:
            raise InputError(f"{op} needs {k!r}")


def _segments(raw: list) -> list:
    from ..runtime.pipeline import InputError
    from ..runtime.shots import Segment

    if not isinstance(raw, list):
        raise InputError("'segments' must be a list of {\"prompt\", \"seconds\", \"seed\"} objects")
    out = []
    for k, s in enumerate(raw):
        if not isinstance(s, dict) or set(s) - {"prompt", "seconds", "seed"}:
            raise InputError(f"segment {k + 1} must be an object with prompt, seconds and an optional seed")
        out.append(Segment(s.get("prompt") or "", s.get("seconds"), s.get("seed")))  # type: ignore[arg-type]
    return out


def _joints(params: dict, key: str):
    """A real-motion array field (shape and values are checked by the pipeline, like ``edit_real``'s)."""
    from ..runtime.pipeline import InputError

    a = P.decode_array(params[key])
    if a.dtype.kind != "f":
        raise InputError(f"{key!r} must be a float array, got {a.dtype}")
    return a


class ShotOps:
    """The worker's shot operations (needs ``_pipeline``, ``_step_callback``, ``_motion`` and ``_warned`` of the
    worker: every prompt gets the unknown-prompt check, the first far one is the result's ``prompt_warning``)."""

    def _director(self, params: dict):
        from ..runtime.shots import DEFAULT_CONTEXT_SECONDS, ShotDirector

        return ShotDirector(self._pipeline(), context_seconds=params.get("context_seconds", DEFAULT_CONTEXT_SECONDS),
                            resample=params.get("resample", 0), guidance=params.get("guidance"),
                            steps=params.get("steps", 50), scheduler=params.get("scheduler", "ddim"),
                            trim_last=params.get("trim_last"))  # absent: on (the director's default)

    def op_compose(self, rid: Any, params: dict) -> dict:
        _need("compose", params, "segments")
        d = self._director(params)
        segments = _segments(params["segments"])
        m = d.compose(segments, seed=params.get("seed", 0), callback=self._step_callback(rid))
        return self._warned(self._motion(m), *(s.prompt for s in segments))

    def op_continue(self, rid: Any, params: dict) -> dict:
        _need("continue", params, "joints", "prompt", "seconds")
        d = self._director(params)
        m = d.continue_motion(_joints(params, "joints"), params["prompt"], params["seconds"],
                              seed=params.get("seed", 0), callback=self._step_callback(rid))
        return self._warned(self._motion(m), params["prompt"])

    def op_inbetween(self, rid: Any, params: dict) -> dict:
        _need("inbetween", params, "joints_a", "joints_b", "prompt", "seconds")
        d = self._director(params)
        m = d.inbetween(_joints(params, "joints_a"), _joints(params, "joints_b"), params["prompt"],
                        params["seconds"], seed=params.get("seed", 0), callback=self._step_callback(rid))
        return self._warned(self._motion(m), params["prompt"])

    def op_regenerate_parts(self, rid: Any, params: dict) -> dict:
        from ..runtime.pipeline import InputError

        _need("regenerate_parts", params, "prompt", "parts")
        if ("joints" in params) == ("source_prompt" in params):
            raise InputError("regenerate_parts needs the source as 'joints' or as 'source_prompt' (+ frames / "
                             "source_seconds, seed: the generation to start from)")
        d = self._director(params)
        cb = self._step_callback(rid)
        if "joints" in params:
            src = _joints(params, "joints")
            m = d.regenerate_parts(src, params["prompt"], params["parts"], seed=params.get("seed", 0), callback=cb,
                                   keep_path=params.get("keep_path", False))
            return self._warned(self._motion(m), params["prompt"])
        # a generation as the source: its steps are the first half of the progress, the regeneration's the second
        src = self._pipeline().generate(
            params["source_prompt"], frames=params.get("frames"),
            seconds=params.get("source_seconds", None if "frames" in params else 4.0), seed=params.get("seed", 0),
            guidance=d.guidance, steps=d.steps, scheduler=d.scheduler, callback=lambda i, n: cb(i, 2 * n))
        m = d.regenerate_parts(src, params["prompt"], params["parts"], seed=params.get("seed", 0),
                               callback=lambda i, n: cb(n + i, 2 * n), keep_path=params.get("keep_path", False))
        return self._warned(self._motion(m), params["prompt"], params["source_prompt"])
