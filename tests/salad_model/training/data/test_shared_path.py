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
