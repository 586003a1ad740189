"""The worker's model-folder fingerprint (is a ``load`` of the same path a new model?) walks model folders only."""

from pathlib import Path

import pytest

from salad_model.serving.model_ops import folder_fingerprint


def test_a_folder_that_is_no_model_is_not_walked(tmp_path, monkeypatch):
    for k in range(20):
        (tmp_path / f"photo{k}.jpg").write_bytes(b"x")

    def walked(self, pattern):
        raise AssertionError(f"{self} was walked")

    monkeypatch.setattr(Path, "rglob", walked)
    assert folder_fingerprint(tmp_path) == ()


@pytest.mark.parametrize("config", ["config.json", "opt.txt"])
def test_a_model_folder_is_fingerprinted_and_a_changed_file_changes_it(tmp_path, config):
    (tmp_path / config).write_text("{}")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.tar").write_bytes(b"old")
    first = folder_fingerprint(tmp_path)
    assert [f[0] for f in first] == sorted([config, "model/weights.tar"])
    (tmp_path / "model" / "weights.tar").write_bytes(b"new weights")
    assert folder_fingerprint(tmp_path) != first


def test_a_missing_folder_has_no_fingerprint(tmp_path):
    assert folder_fingerprint(tmp_path / "gone") == ()
