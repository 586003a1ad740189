"""The worker and its model folder's files (audit 5): files overwritten in place, truncated or deleted while the
model is loaded. Expected: the loaded model never changes under the worker, a changed folder is read again on the
next ``load`` (the add-on sends one before every job), a broken or missing one is a clear ``model_error`` and the
old model keeps working."""

import shutil

import numpy as np
import pytest
from test_worker import RawWorker

from salad_model.runtime.checkpoints import random_bundle, save_model

GEN = {"prompt": "a person walks", "frames": 40, "steps": 3, "seed": 1}


@pytest.fixture
def folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    save_model(random_bundle("tiny", seed=0), a)
    save_model(random_bundle("tiny", seed=1), b)
    return a, b


def overwrite(src, dst):
    for f in src.iterdir():  # weights and config (the tiny text encoder's seed is in config.json)
        shutil.copy(f, dst / f.name)  # in place: the same inode, new bytes (what a re-export does)


def test_a_model_folder_changed_in_place_is_loaded_again_and_never_leaks_into_the_loaded_model(folders):
    a, b = folders
    w = RawWorker("--device", "cpu", "--threads", "1")
    try:
        assert w.result("load", model=str(b))["reused"] is False
        want_b = w.result("generate", **GEN)["joints"]
        assert w.result("load", model=str(a))["reused"] is False
        want_a = w.result("generate", **GEN)["joints"]
        assert not np.array_equal(want_a, want_b)
        overwrite(b, a)
        assert np.array_equal(w.result("generate", **GEN)["joints"], want_a)  # the loaded model is unchanged
        assert w.result("load", model=str(a))["reused"] is False  # the folder changed: read again
        assert np.array_equal(w.result("generate", **GEN)["joints"], want_b)
        assert w.result("load", model=str(a))["reused"] is True  # unchanged since: reused

        for f in a.glob("*.safetensors"):  # truncated (a download cut short)
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        err = w.request("load", model=str(a))
        assert err["event"] == "error" and err["code"] == "model_error"
        assert "corrupt or truncated" in err["message"] and "Traceback" not in err["message"]
        assert np.array_equal(w.result("generate", **GEN)["joints"], want_b)  # the old model keeps working

        shutil.rmtree(a)
        err = w.request("load", model=str(a))
        assert err["event"] == "error" and err["code"] == "model_error" and "not found" in err["message"]
        assert np.array_equal(w.result("generate", **GEN)["joints"], want_b)
    finally:
        assert w.close() == 0 and not w.bad_lines
