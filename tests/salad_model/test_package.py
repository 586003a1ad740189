"""The package's shape: old module names still work (and warn), the top-level API, the layering rules."""

import importlib
import subprocess
import sys

import pytest
from testdata import DATA, REPO

import salad_model
from salad_model import MOVED_MODULES, moved_target

OLD_SUBMODULES = ["salad_model.data.bandai", "salad_model.data.captions", "salad_model.t2m_eval.metrics",
                  "salad_model.t2m_eval.__main__"]


def _fresh_import(name: str):
    """Import ``name`` as if for the first time in this process (the warning is raised once per import)."""
    sys.modules.pop(name, None)
    parent, _, child = name.rpartition(".")
    if parent in sys.modules and child in vars(sys.modules[parent]) and name in MOVED_MODULES:
        delattr(sys.modules[parent], child)
    return importlib.import_module(name)


@pytest.mark.parametrize("old", sorted(MOVED_MODULES) + OLD_SUBMODULES)
def test_old_module_name_is_the_new_module_and_warns(old) -> None:
    new = moved_target(old)
    with pytest.deprecated_call(match=f"{old} moved to {new}"):
        mod = _fresh_import(old)
    assert mod is importlib.import_module(new)  # one module object: classes keep one identity
    assert mod.__name__ == new and mod.__spec__.name == new


def test_from_old_package_import_name_works() -> None:
    sys.modules.pop("salad_model.pipeline", None)
    with pytest.deprecated_call():
        from salad_model.pipeline import SaladPipeline as Old
    from salad_model.runtime.pipeline import SaladPipeline as New

    assert Old is New


def test_unmoved_names_are_not_aliased() -> None:
    assert moved_target("salad_model.runtime.pipeline") is None
    assert moved_target("salad_model.pipelines") is None  # a prefix of a moved name is not a match
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("salad_model.no_such_module")


def test_top_level_api_is_lazy_and_complete() -> None:
    from salad_model.runtime.pipeline import InputError, SaladPipeline

    assert salad_model.SaladPipeline is SaladPipeline and salad_model.InputError is InputError
    assert set(salad_model.__all__) >= {"SaladPipeline", "InputError", "load_any", "load_motion", "__version__"}
    with pytest.raises(AttributeError, match="no_such_name"):
        salad_model.no_such_name  # noqa: B018
    code = "import sys, salad_model; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"  # the worker's cold start stays cheap


@pytest.mark.parametrize("old, new", [("salad_model.worker", "salad_model.serving.worker"),
                                      ("salad_model.eval", "salad_model.evaluation.eval"),
                                      ("salad_model.t2m_eval", "salad_model.evaluation.t2m_eval"),
                                      ("salad_model.bench_worker", "benchmarks.bench_worker")])
def test_python_dash_m_old_name_runs_the_new_module(old, new) -> None:
    out = subprocess.run([sys.executable, "-m", old, "--help"], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout
    assert f"python -m {old} is deprecated: use python -m {new}" in out.stderr


def test_the_worker_side_never_imports_training_or_evaluation_code() -> None:
    """Everything the worker runs, including reading a user's Bandai-rig BVH, stays in runtime/motion/serving."""
    clip = DATA / "dataset-2_walk-turn-left_active_024.bvh"
    code = ("import sys\n"
            "import salad_model.serving.worker, salad_model.runtime.pipeline, salad_model.runtime.text_hf\n"
            "from salad_model.motion.motion_io import load_motion\n"
            f"assert load_motion({str(clip)!r}).shape[1:] == (22, 3)\n"
            "print(sorted(m for m in sys.modules if m.startswith(('salad_model.training', 'salad_model.evaluation',"
            " 'benchmarks'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
