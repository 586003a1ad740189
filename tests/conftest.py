"""Shared fixtures. Environment first: no hub access, no busy-waiting OpenMP threads."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from needs import IN_CI, OPTIONAL  # noqa: E402
from testdata import DATA  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

pytest_plugins = ("official_release",)  # release / server fixtures of the download tests (loopback only)

# ------------------------------------------------------------------------------------------------
# No silent skips in CI. Locally a test whose dependency is missing (bpy, ../shared) skips; with CI=true
# (.ci/run, GitHub Actions) every skip is a failure unless its reason starts with one of these prefixes
# (things CI legitimately lacks). Tests use needs.require / needs.require_module for dependencies; a plain
# pytest.skip or importorskip is caught by the same hooks.

def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else longrepr)


def _fail_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (IN_CI and report.skipped) or getattr(report, "wasxfail", None) is not None:
        return
    reason = _skip_reason(report)
    if reason.removeprefix("Skipped: ").startswith(OPTIONAL):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped in CI (CI=true), which must run it: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ANN001, ANN201 - pytest hook
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):  # noqa: ANN001, ANN201 - pytest hook
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


# scripts/test.sh runs the Blender tests on two bpy versions: every run says which (also under -q).
def pytest_report_header(config):  # noqa: ANN001, ANN201 - pytest hook
    from bpy_suite import bpy_header

    return bpy_header()


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001, ANN201 - pytest hook
    if config.get_verbosity() < 0:  # -q prints no header
        from bpy_suite import bpy_header

        terminalreporter.write_line(bpy_header())


GOLDEN = DATA / "golden"


@pytest.fixture(scope="session")
def golden():
    """Loader for the reference tensors copied from shared/golden (weights_only)."""

    def load(name: str):
        return torch.load(GOLDEN / name, map_location="cpu", weights_only=True)

    return load


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny randomly initialised model saved in our format (shared by worker/CLI/add-on tests)."""
    from salad_model.runtime.checkpoints import random_bundle, save_model

    path = tmp_path_factory.mktemp("models") / "tiny"
    save_model(random_bundle("tiny", seed=0), path)
    return path


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_model_dir):
    from salad_model.runtime.pipeline import SaladPipeline

    return SaladPipeline.from_pretrained(tiny_model_dir, device="cpu")


@pytest.fixture(scope="session")
def mini_dataset(tmp_path_factory):
    """The two test BVH clips in the built-dataset layout, six 'takes' each so every split is non-empty."""
    import time

    from salad_model.training.data.bandai import process_clip, write_dataset

    data = DATA
    results = []
    for bvh in sorted(data.glob("dataset-2_*.bvh")):
        base = process_clip((bvh.stem, bvh.read_text()))
        stem = bvh.stem.rsplit("_", 1)[0]
        for take in range(1, 7):
            results.append({**base, "name": f"{stem}_{take:03d}"})
    out = tmp_path_factory.mktemp("mini")
    write_dataset(out, results, seed=0, t0=time.time(), data_dir=data)
    return out


@pytest.fixture(scope="module")
def one_thread():
    """One thread for torch and BLAS: two cores are shared with a training run and other engineers (OpenBLAS
    with 2 threads on busy cores makes one 512-d sqrtm take seconds instead of 0.3 s)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(1)
    except ImportError:  # optional: only speed depends on it
        limits = None
    yield
    if limits is not None:
        limits.restore_original_limits()
    torch.set_num_threads(n)
