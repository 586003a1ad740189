"""SALAD (Skeleton-aware Latent Diffusion) text-to-motion model: networks, sampler, editing, pipeline.

Subpackages (docs/architecture.md has the dependency picture):
``motion`` (skeletons, features, BVH, motion files), ``runtime`` (the model at inference: networks, text,
sampling, editing, inversion, pipeline), ``serving`` (the worker process and its protocol), ``training``
(training loop, data pipelines) and ``evaluation`` (metrics, reports, the T2M benchmark).

Imports are lazy so that ``import salad_model`` stays cheap (the worker's cold start matters): the main API
(``from salad_model import SaladPipeline``) is resolved on first attribute access. Module paths from before
the split (``salad_model.pipeline``, ``python -m salad_model.worker``, …) still work through one alias table,
with a DeprecationWarning.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from pathlib import Path

from .cpu import prefer_passive_omp

# Before anything of ours imports torch: idle OpenMP threads sleep instead of spinning (salad_model/cpu.py).
prefer_passive_omp()

__version__ = "0.1.0"

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"  # bundled demo model and classifier (package data)
CONFIGS_DIR = PACKAGE_DIR / "configs"  # training configurations (package data)

# Old module path → new one. A name under an old package maps too (salad_model.data.bandai → …training.data.bandai).
MOVED_MODULES: dict[str, str] = {
    **{f"salad_model.{m}": f"salad_model.motion.{m}"
       for m in ("skeleton", "features", "motion_process", "bvh", "motion_io")},
    **{f"salad_model.{m}": f"salad_model.runtime.{m}"
       for m in ("vae", "denoiser", "attention", "text", "checkpoints", "sampling", "editing", "inversion",
                 "pipeline")},
    "salad_model.worker": "salad_model.serving.worker",
    "salad_model.protocol": "salad_model.serving.protocol",
    "salad_model.train": "salad_model.training.train",
    "salad_model.distributed": "salad_model.training.distributed",
    "salad_model.data": "salad_model.training.data",
    **{f"salad_model.{m}": f"salad_model.evaluation.{m}" for m in ("eval", "eval_real", "classifier", "plots")},
    "salad_model.t2m_eval": "salad_model.evaluation.t2m_eval",
    # benchmarks/ sits beside tools/ in the repository (not installed): these work from a checkout's root
    "salad_model.bench": "benchmarks.bench",
    "salad_model.bench_worker": "benchmarks.bench_worker",
}

# The main API at the package top: name → module that defines it.
_EXPORTS = {
    "SaladPipeline": "salad_model.runtime.pipeline",
    "Motion": "salad_model.runtime.pipeline",
    "InputError": "salad_model.runtime.pipeline",
    "EDIT_MODES": "salad_model.runtime.pipeline",
    "load_any": "salad_model.runtime.checkpoints",
    "CheckpointError": "salad_model.runtime.checkpoints",
    "load_motion": "salad_model.motion.motion_io",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'salad_model' has no attribute {name!r}")


def moved_target(name: str) -> str | None:
    """The current path of an old module name (or of a module under an old package), else None."""
    for old, new in MOVED_MODULES.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}; the old name is deprecated and will be removed",
                  DeprecationWarning, stacklevel=3)


class _AliasLoader(importlib.abc.Loader):
    """Makes an old name the *same* module object as its new path (one class identity, one module state)."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        _warn(spec.name, self.target)
        module = importlib.import_module(self.target)
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self._real_spec  # the import system stamped the alias spec on it; restore the real one

    def get_code(self, fullname: str):
        """For ``python -m old.name``: run the new module as ``__main__`` (its own package, its own imports)."""
        src = (f"import runpy, warnings\n"
               f"warnings.warn({f'python -m {fullname} is deprecated: use python -m {self.target}'!r}, "
               f"DeprecationWarning)\n"
               f"runpy.run_module({self.target!r}, run_name='__main__', alter_sys=True)\n")
        return compile(src, f"<alias {fullname} → {self.target}>", "exec")


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = moved_target(fullname) if fullname.startswith("salad_model.") else None
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())
