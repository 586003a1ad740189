"""The data builders find the shared folder like the tests do ($SALAD_SHARED, else the nearest shared/)."""

from __future__ import annotations

from salad_model.training.data import shared


def test_env_variable_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SALAD_SHARED", str(tmp_path / "elsewhere"))
    assert shared.find_shared() == tmp_path / "elsewhere"
    assert shared.shared_data("deepmimic") == tmp_path / "elsewhere" / "data" / "deepmimic"


def test_nearest_shared_beside_the_checkout_or_a_parent(tmp_path, monkeypatch):
    monkeypatch.delenv("SALAD_SHARED", raising=False)
    checkout = tmp_path / "work" / "wt" / "demo"
    checkout.mkdir(parents=True)
    (tmp_path / "work" / "shared" / "data").mkdir(parents=True)  # /work/shared, two levels up
    assert shared.find_shared(checkout) == tmp_path / "work" / "shared"
    (tmp_path / "work" / "wt" / "shared" / "spec").mkdir(parents=True)  # a nearer one beside the checkout
    assert shared.find_shared(checkout) == tmp_path / "work" / "wt" / "shared"


def test_an_empty_shared_folder_nearer_the_checkout_is_skipped(tmp_path, monkeypatch):
    monkeypatch.delenv("SALAD_SHARED", raising=False)
    checkout = tmp_path / "a" / "wt" / "repo"
    checkout.mkdir(parents=True)
    (tmp_path / "a" / "wt" / "shared").mkdir()  # no data/ or spec/: not it
    (tmp_path / "a" / "shared" / "data").mkdir(parents=True)
    assert shared.find_shared(checkout) == tmp_path / "a" / "shared"


def test_bandai_default_uses_it():
    from salad_model.training.data import bandai, deepmimic

    assert bandai.DEFAULT_DATA_DIR == shared.shared_data("bandai-namco")
    assert deepmimic.DEFAULT_DATA_DIR == shared.shared_data("deepmimic")


def test_none_found_is_none_for_the_tests_and_a_named_fallback_for_the_builders(tmp_path, monkeypatch):
    monkeypatch.delenv("SALAD_SHARED", raising=False)
    checkout = tmp_path / "lonely" / "repo"
    checkout.mkdir(parents=True)
    real_is_dir = shared.Path.is_dir  # folders outside tmp_path (a /tmp/shared on this machine) do not count
    monkeypatch.setattr(shared.Path, "is_dir", lambda p: p.is_relative_to(tmp_path) and real_is_dir(p))
    assert shared.locate_shared(checkout) is None  # tests/testdata.SHARED: None, so tests skip with a reason
    assert shared.find_shared(checkout) == tmp_path / "lonely" / "shared"  # named in the builders' errors


def test_testdata_uses_the_same_rule_without_torch():
    """tests/testdata.py holds no copy of the lookup, and importing it loads neither torch nor numpy."""
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parents[3]
    # From the checkout's root with tests/ appended: with tests/ first, its salad_model/ test folder would shadow
    # the package (pytest puts the package first too).
    code = ("import sys; sys.path.append('tests'); import testdata\n"
            "from salad_model.training.data.shared import locate_shared\n"
            "assert testdata.SHARED == locate_shared(testdata.REPO), testdata.SHARED\n"
            "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tests.parent, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert "def find_shared" not in (tests / "testdata.py").read_text()
