"""The worker's model operations: load/unload, model info, prompt tokens, generate, edit, attention, edit_real.

Mixed into :class:`~salad_model.serving.worker.Worker`, which routes ``op_<name>`` requests here on its main
thread and provides progress, cancel checks and the step callback. torch and the runtime are imported on
the first ``load``, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from salad_model.runtime import requests as R
from salad_model.runtime.integrity import MODEL_CONFIGS

from . import protocol as P
from .errors import RequestError
from .process import _log

DEVICES = ("auto", "cpu", "cuda", "mps")


def folder_fingerprint(folder: Path, limit: int = 500) -> tuple:
    """(relative path, size, mtime_ns) of the model folder's files: a folder whose files changed is loaded again.

    Why: ``load`` reused the loaded model whenever the path and device matched, so weights re-exported or
    re-downloaded into the same folder were never read until the worker restarted (and the add-on sends a ``load``
    before every job). A deleted folder has no fingerprint: its ``load`` fails clearly, the old model stays.
    Only a model folder (config.json or opt.txt in it) is walked: any other path the user picks (a home folder,
    a drive) would be listed whole on every ``load`` before the load says it is no model.
    """
    try:
        if not any((folder / name).is_file() for name in MODEL_CONFIGS):
            return ()
        files = sorted(p for p in folder.rglob("*") if p.is_file())[:limit]
        return tuple((str(p.relative_to(folder)), st.st_size, st.st_mtime_ns) for p in files for st in [p.stat()])
    except OSError:
        return ()


class ModelOps:
    """One method per model op; ``self.pipe`` is the loaded SaladPipeline (None until ``load``)."""

    def _import_torch(self, threads: int | None = None):
        if self._torch is None:
            import torch

            self._torch = torch
            _log(f"torch {torch.__version__} imported")
        if threads is not None:
            self.threads = threads
        if self._torch.get_num_threads() != self.threads:
            self._torch.set_num_threads(self.threads)
        return self._torch

    def _pipeline(self):
        if self.pipe is None:
            raise RequestError(P.NO_MODEL, "no model is loaded: send a \"load\" request first")
        return self.pipe

    def op_load(self, rid: Any, params: dict) -> dict:
        model = params.get("model", "demo")
        device = params.get("device", self.device)
        threads = params.get("threads")
        if not model.strip():
            raise RequestError(P.INVALID_INPUT, "\"model\" must be \"demo\" or a model folder")
        if device not in DEVICES and not device.startswith("cuda:"):
            raise RequestError(P.INVALID_INPUT, f"unknown device {device!r}; use auto, cpu, cuda[:N] or mps")
        if threads is not None and not 1 <= threads <= 1024:
            raise RequestError(P.INVALID_INPUT, f"threads must be within 1 … 1024, got {threads}")
        self._progress(rid, "load", 0, 3, detail="importing torch")
        torch = self._import_torch(threads)
        self._check_cancel(rid)
        from ..runtime.checkpoints import load_any
        from ..runtime.pipeline import DEMO_MODEL_DIR, SaladPipeline, pick_device

        dev = pick_device(device)
        mps = getattr(torch.backends, "mps", None)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RequestError(P.INVALID_INPUT, "CUDA is not available in the worker's Python environment")
        if dev.type == "mps" and not (mps is not None and mps.is_available()):
            raise RequestError(P.INVALID_INPUT, "Apple MPS is not available in the worker's Python env")
        path = DEMO_MODEL_DIR if model == "demo" else Path(model).expanduser()
        key = (str(path.resolve()), str(dev), folder_fingerprint(path))
        if self.pipe is not None and key == self._model_key and not params.get("reload"):
            return {**self.model_info(), "reused": True}
        self._progress(rid, "load", 1, 3, detail="reading weights")
        bundle = load_any(path)
        self._check_cancel(rid)
        self._progress(rid, "load", 2, 3, detail="loading the text encoder")
        pipe = SaladPipeline(bundle, device=str(dev))
        self._check_cancel(rid)
        self.pipe, self._model_key = pipe, key  # replace the old model only once the new one works
        self._progress(rid, "load", 3, 3, detail="ready")
        return {**self.model_info(), "reused": False}

    def op_unload(self, rid: Any, params: dict) -> dict:
        had = self.pipe is not None
        self.pipe, self._model_key = None, None
        import gc

        gc.collect()
        if self._torch is not None and self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()
        return {"unloaded": had}

    def model_info(self) -> dict:
        pipe = self._pipeline()
        te = pipe.text_encoder
        info = pipe.info
        return {"name": pipe.name, "fps": pipe.fps, "min_frames": pipe.min_frames,
                "max_frames": pipe.max_frames, "frame_step": 4, "license": info.get("license"),
                "dataset": info.get("dataset"), "guidance": pipe.default_guidance,
                "text_encoder": {"name": te.name, "type": pipe.bundle.text_encoder.get("type"),
                                 "dim": te.dim, "max_length": te.max_length},
                "device": str(pipe.device), "threads": self.threads, "source": info.get("source"),
                "format": info.get("format"), "schedulers": list(R.SCHEDULERS),
                "edit_modes": list(R.EDIT_MODES)}

    def op_model_info(self, rid: Any, params: dict) -> dict:
        return self.model_info()

    def op_prompt_tokens(self, rid: Any, params: dict) -> dict:
        pipe = self._pipeline()
        if "prompt" not in params:
            raise RequestError(P.INVALID_INPUT, "prompt_tokens needs a \"prompt\"")
        te, prompt = pipe.text_encoder, params["prompt"]
        prompt = R.check_prompt_text(prompt)  # size capped before tokenising; invisible-only refused
        n = te.num_tokens(prompt)
        return {"prompt": prompt, "tokens": te.tokens(prompt), "num_tokens": n, "max_length": te.max_length,
                "too_long": n > te.max_length}

    def _warned(self, data: dict, *prompts: str | None) -> dict:
        """The result's ``prompt_warning``: the first far-from-training prompt (None: all known)."""
        warnings = self._pipeline().prompt_warnings(*prompts)
        data["prompt_warning"] = warnings[0].to_dict() if warnings else None
        return data

    @staticmethod
    def _motion(m) -> dict:
        import numpy as np

        return {"joints": np.asarray(m.joints, np.float32), "features": np.asarray(m.features, np.float32),
                "contacts": np.asarray(m.contacts, bool), "meta": m.meta}

    @staticmethod
    def _sampling(params: dict) -> dict:
        keys = ("frames", "seconds", "seed", "guidance", "steps", "scheduler")
        return {k: params[k] for k in keys if k in params}

    def op_generate(self, rid: Any, params: dict) -> dict:
        pipe = self._pipeline()
        if "prompt" not in params:
            raise RequestError(P.INVALID_INPUT, "generate needs a \"prompt\"")
        # Recording the attention maps costs ~nothing and makes the next edit of this motion skip its source pass.
        m = pipe.generate(params["prompt"], callback=self._step_callback(rid),
                          record_maps=params.get("record_maps", True), fast=params.get("fast", False),
                          **self._sampling(params))
        return self._warned(self._motion(m), params["prompt"])

    def op_edit_real(self, rid: Any, params: dict) -> dict:
        """Invert a real motion (joints [T, 22, 3], model space, 20 fps) under ``prompt`` and edit it."""
        pipe = self._pipeline()
        for key in ("prompt", "joints"):
            if key not in params:
                raise RequestError(P.INVALID_INPUT, f"edit_real needs {key!r}")
        joints = P.decode_array(params["joints"])
        if joints.dtype.kind not in "f":
            raise RequestError(P.INVALID_INPUT, f"'joints' must be a float array, got {joints.dtype}")
        edit = {k: params[k] for k in ("edit_prompt", "mode", "word", "scale", "mirror", "mirror_method",
                                       "edit_guidance") if k in params}
        kw = {k: params[k] for k in ("overlap", "null_text_iters", "steps", "guidance") if k in params}
        m = pipe.edit_real(params["prompt"], joints=joints, callback=self._step_callback(rid),
                           check=lambda: self._check_cancel(rid), **kw, **edit)  # null-text: every iteration
        return self._warned(self._motion(m), edit.get("edit_prompt"))

    def op_attention(self, rid: Any, params: dict) -> dict:
        pipe = self._pipeline()
        if "prompt" not in params:
            raise RequestError(P.INVALID_INPUT, "attention needs a \"prompt\"")
        a = pipe.attention(params["prompt"], callback=self._step_callback(rid), **self._sampling(params))
        return self._warned({**self._motion(a.motion), "tokens": list(a.tokens), "maps": a.maps.astype("float32"),
                             "parts": list(a.parts)}, params["prompt"])

    def op_edit(self, rid: Any, params: dict) -> dict:
        pipe = self._pipeline()
        if "source_prompt" not in params:
            raise RequestError(P.INVALID_INPUT, "edit needs the \"source_prompt\" of the motion to edit")
        keys = ("edit_prompt", "mode", "word", "scale", "mirror", "mirror_method", "src_proportion",
                "swap_src_proportion", "inject_temporal", "fast", "guided_steps")
        kw = {k: params[k] for k in keys if k in params}
        want_source = bool(params.get("return_source"))
        res = pipe.edit(params["source_prompt"], callback=self._step_callback(rid), return_source=want_source,
                        **self._sampling(params), **kw)
        out, src = res if want_source else (res, None)
        data = self._warned(self._motion(out), kw.get("edit_prompt") or params["source_prompt"])
        if want_source:
            data["source"] = None if src is None else self._motion(src)
        return data
