"""CI=true turns skips of required things into failures (tests/conftest.py hooks, tests/needs.py)."""

import os
import subprocess
import sys

import pytest
from testdata import REPO, TESTS

CASES = '''
import pytest
from needs import require, require_module

def test_required_module():
    require_module("no_such_module_salad")

def test_required_thing():
    require(False, "the shared folder")

def test_plain_skip():
    pytest.skip("no reason")

@pytest.mark.skipif(True, reason="marker")
def test_marker():
    pass

def test_optional():
    pytest.skip("optional: needs CUDA")

def test_passes():
    pass
'''


@pytest.mark.parametrize("ci", ["true", ""])
def test_skips_fail_in_ci_except_optional(tmp_path, ci):
    (tmp_path / "test_cases.py").write_text(CASES)
    env = {**os.environ, "CI": ci, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    out = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "conftest", "-p", "no:cacheprovider",
                          str(tmp_path / "test_cases.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    result = {line.split("::")[1].split()[0]: line.split()[1] for line in out.stdout.splitlines()
              if line.startswith("test_cases.py::") and len(line.split()) > 1}

    def outcome(name: str) -> str:
        return result[f"test_{name}"]

    required = ("required_module", "required_thing", "plain_skip", "marker")
    if ci:
        assert all(outcome(n) in ("FAILED", "ERROR") for n in required), out.stdout  # ERROR: skip at setup
        assert "skipped in CI" in out.stdout and out.returncode == 1
    else:
        assert [outcome(n) for n in required] == ["SKIPPED"] * 4, out.stdout
        assert out.returncode == 0
    assert outcome("optional") == "SKIPPED" and outcome("passes") == "PASSED"
