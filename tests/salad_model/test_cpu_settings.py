"""The Python API applies the CLI's CPU settings (issue #16): OMP_WAIT_POLICY=PASSIVE reaches the C
environment before torch loads its OpenMP runtime (subprocesses: the policy is read once, at import torch),
a warning when torch came first, torch threads from one function, and the CLI's "loading model" line."""

import os
import subprocess
import sys

import pytest
import torch

from salad_model import cpu
from salad_model.runtime.pipeline import SaladPipeline

# getenv through libc: what libgomp will read when torch loads it, not just Python's copy
PROBE = """
import ctypes, os, sys, warnings
{before}
import salad_model
libc = ctypes.CDLL(None); libc.getenv.restype = ctypes.c_char_p
print("TORCH_LOADED", "torch" in sys.modules)
print("C_ENV", libc.getenv(b"OMP_WAIT_POLICY"))
from salad_model.cpu import apply_cpu_settings
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    print("THREADS", apply_cpu_settings(1))
    apply_cpu_settings(1)
print("WARNINGS", [str(x.message)[:40] for x in w if issubclass(x.category, RuntimeWarning)])
"""


def probe(policy: str | None, torch_first: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    code = PROBE.format(before="import torch" if torch_first else "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                         check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_import_salad_model_sets_passive_before_torch_loads():
    r = probe(None, torch_first=False)
    assert r["TORCH_LOADED"] == "False"  # `import salad_model` does not import torch
    assert r["C_ENV"] == "b'PASSIVE'" and r["THREADS"] == "1" and r["WARNINGS"] == "[]"


def test_a_policy_the_user_chose_is_kept():
    r = probe("ACTIVE", torch_first=False)
    assert r["C_ENV"] == "b'ACTIVE'" and r["WARNINGS"] == "[]"


def test_torch_imported_first_without_a_policy_warns_once():
    r = probe(None, torch_first=True)
    assert r["C_ENV"] == "None"  # too late to set: torch's OpenMP runtime has read its environment
    assert r["WARNINGS"] == "['torch was imported before salad_model wh']"  # one warning for two calls


def test_torch_imported_first_with_passive_in_the_environment_is_fine():
    assert probe("PASSIVE", torch_first=True)["WARNINGS"] == "[]"


@pytest.mark.parametrize("value, expected", [("3", 3), ("1", 1), ("", None), ("0", None), ("two", None)])
def test_default_threads_honours_omp_num_threads(monkeypatch, value, expected):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    monkeypatch.setattr(cpu, "physical_cores", lambda: 7)
    assert cpu.default_threads() == (expected or 7)


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_from_pretrained_applies_the_cli_thread_default(tiny_model_dir, monkeypatch, keep_threads):
    monkeypatch.setattr(cpu, "physical_cores", lambda: 1)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    SaladPipeline.from_pretrained(tiny_model_dir, device="cpu")
    assert torch.get_num_threads() == 1
    SaladPipeline.from_pretrained(tiny_model_dir, device="cpu", threads=2)
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="at least 1"):
        SaladPipeline.from_pretrained(tiny_model_dir, device="cpu", threads=-1)


def test_the_constructor_leaves_threads_to_its_caller(tiny_pipeline, monkeypatch, keep_threads):
    """The worker sets its own threads and builds SaladPipeline(bundle) directly."""
    monkeypatch.setattr(cpu, "physical_cores", lambda: 1)
    torch.set_num_threads(2)
    SaladPipeline(tiny_pipeline.bundle, text_encoder=tiny_pipeline.text_encoder, device="cpu")
    assert torch.get_num_threads() == 2


def test_cli_says_it_is_loading_the_model_before_the_work(tiny_model_dir, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "salad_model", "generate", "a person walks", "--model",
                        str(tiny_model_dir), "--seconds", "2", "--steps", "2", "--threads", "1", "--out", "w.npz"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == f"loading model {tiny_model_dir} …"
    assert any(line.startswith("generating") for line in lines[1:])
    assert "loading" not in r.stdout  # stdout keeps only the written paths
