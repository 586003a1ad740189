"""Shared fixtures. Environment first: no hub access, no busy-waiting OpenMP threads."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

GOLDEN = Path(__file__).parent / "data" / "golden"


@pytest.fixture(scope="session")
def golden():
    """Loader for the reference tensors copied from shared/golden (weights_only)."""

    def load(name: str):
        return torch.load(GOLDEN / name, map_location="cpu", weights_only=True)

    return load


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny randomly initialised model saved in our format (shared by worker/CLI/add-on tests)."""
    from salad_model.checkpoints import random_bundle, save_model

    path = tmp_path_factory.mktemp("models") / "tiny"
    save_model(random_bundle("tiny", seed=0), path)
    return path


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_model_dir):
    from salad_model.pipeline import SaladPipeline

    return SaladPipeline.from_pretrained(tiny_model_dir, device="cpu")
