"""Training checkpoints load weights-only: RNG states round-trip, old files still load, pickled code does not."""

import io
import os
import pickle
import random
import types

import numpy as np
import pytest
import torch

from salad_model.training.checkpoint_state import load_checkpoint, restore_rng_states, rng_states


def _draws() -> tuple:
    return np.random.rand(), np.random.randn(), random.random(), torch.rand(1).item()


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    np.random.seed(7)
    np.random.randn()  # leaves a cached Gaussian in numpy's state (has_gauss = 1)
    torch.save({"iter": 3, **rng_states()}, tmp_path / "ckpt.pt")
    expected = _draws()
    _draws()
    restore_rng_states(torch.load(tmp_path / "ckpt.pt", weights_only=True))  # plain torch accepts it
    assert _draws() == expected


def test_a_checkpoint_from_before_holds_a_numpy_state_and_still_resumes(tmp_path):
    old = {"iter": 9, "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(),
           "np_rng": np.random.get_state()}  # the format written before: an ndarray inside
    torch.save(old, tmp_path / "old.pt")
    expected = _draws()
    state = load_checkpoint(tmp_path / "old.pt")
    assert state["iter"] == 9
    restore_rng_states(state)
    assert _draws() == expected


def _pickle_naming_numpy_as(module: str) -> types.SimpleNamespace:
    """A pickle module for ``torch.save`` that names numpy's array reconstructor as ``module`` does: the
    installed numpy writes one spelling (``numpy.core`` before 2.0, ``numpy._core`` since), the other numpy the
    other, and a checkpoint moves between machines."""

    class Pickler(pickle.Pickler):
        def __init__(self, file, protocol=None, **kw):
            self._out, self._buf = file, io.BytesIO()
            super().__init__(self._buf, protocol, **kw)

        def dump(self, obj):
            super().dump(obj)
            data = self._buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            assert b"numpy.core.multiarray" in data, "the pickle holds no numpy array"
            self._out.write(data.replace(b"numpy.core.multiarray", f"{module}.multiarray".encode()))

    return types.SimpleNamespace(Pickler=Pickler, __name__="pickle")


@pytest.mark.parametrize("module", ["numpy.core", "numpy._core"])
def test_an_old_checkpoint_loads_whichever_numpy_wrote_it(tmp_path, module):
    """numpy 2 renamed numpy.core to numpy._core, and pickles name the module they were written with: a
    checkpoint written under either numpy loads under the other (only the allowlist's name differs)."""
    old = {"iter": 5, "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(),
           "np_rng": np.random.get_state()}
    torch.save(old, tmp_path / "old.pt", pickle_module=_pickle_naming_numpy_as(module))
    assert f"{module}.multiarray".encode() in (tmp_path / "old.pt").read_bytes()
    expected = _draws()
    state = load_checkpoint(tmp_path / "old.pt")
    assert state["iter"] == 5
    restore_rng_states(state)
    assert _draws() == expected


class _Payload:
    def __reduce__(self):
        return os.system, ("echo owned > /dev/null",)


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    torch.save({"iter": 1, "evil": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="(?i)weights only load failed|unsupported global"):
        load_checkpoint(tmp_path / "evil.pt")


def test_the_refusal_holds_even_when_the_environment_asks_torch_for_full_unpickling(tmp_path, monkeypatch):
    """``weights_only=True`` is passed explicitly: torch's TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD only changes its default."""
    torch.save({"iter": 1, "evil": _Payload()}, tmp_path / "evil.pt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(Exception, match="(?i)weights only load failed|unsupported global"):
        load_checkpoint(tmp_path / "evil.pt")


def test_a_checkpoint_written_on_a_gpu_machine_resumes_on_the_cpu(tmp_path, monkeypatch):
    """Tensors saved from CUDA carry their device; the training machine may have none (they load on the CPU)."""
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")  # as if saved from a GPU
    torch.save({"iter": 4, "w": torch.arange(3.0)}, tmp_path / "gpu.pt")
    monkeypatch.undo()
    state = load_checkpoint(tmp_path / "gpu.pt")
    assert state["w"].device.type == "cpu" and state["w"].tolist() == [0.0, 1.0, 2.0]
