"""The shots evaluation's single-clip label cache is keyed by the model's weights, not only by its folder."""

import json
from types import SimpleNamespace

import numpy as np

from salad_model.evaluation import shots
from salad_model.runtime.integrity import weights_digest


class _Pipe:
    """generate_batch records its calls; each clip's features say which model made it."""

    def __init__(self, folder, tag: float):
        self.info, self.tag, self.calls = {"source": str(folder)}, tag, 0

    def generate_batch(self, prompts, frames, seeds, steps):
        self.calls += len(prompts)
        return [SimpleNamespace(features=np.full((f, 4), self.tag)) for f in frames]


def _classify(clf, feats):
    return [f"model{int(f[0, 0])}" for f in feats]


def _model(folder, weights: bytes):
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text("{}")
    (folder / "denoiser.safetensors").write_bytes(weights)
    return folder


def test_new_weights_in_the_same_folder_get_labels_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(shots, "_classify", _classify)
    cache, folder = tmp_path / "singles.json", _model(tmp_path / "m", b"old weights")
    jobs = [("a person walks", 40, 1), ("a person jumps", 60, 2)]
    old = _Pipe(folder, 1)
    assert shots._single_labels(old, None, jobs, 10, cache, model=shots._model_digest(old)) == \
        {j: "model1" for j in jobs}
    again = _Pipe(folder, 1)  # the same weights: every label from the cache
    assert shots._single_labels(again, None, jobs, 10, cache, model=shots._model_digest(again))[jobs[0]] == "model1"
    assert again.calls == 0

    _model(folder, b"new weights, same folder")
    new = _Pipe(folder, 2)
    assert shots._single_labels(new, None, jobs, 10, cache, model=shots._model_digest(new)) == \
        {j: "model2" for j in jobs}
    assert new.calls == 2
    assert len(json.loads(cache.read_text())) == 4  # both models' labels kept: going back reuses the old ones


def test_the_digest_follows_weights_and_config_not_other_files(tmp_path):
    folder = _model(tmp_path / "m", b"w")
    first = weights_digest(folder)
    (folder / "README.md").write_text("a model card edit")
    assert weights_digest(folder) == first
    (folder / "config.json").write_text('{"info": {"guidance": 3}}')
    second = weights_digest(folder)
    assert second != first
    (folder / "stats.safetensors").write_bytes(b"s")
    assert weights_digest(folder) not in (first, second)
    assert weights_digest(tmp_path / "missing") == ""


def test_a_retrained_classifier_labels_the_clips_anew(tmp_path):
    """Labels come from the classifier too: the same model with other classifier weights gets another key."""
    import torch

    folder = _model(tmp_path / "m", b"weights")
    pipe = _Pipe(folder, 1)
    clf = torch.nn.Linear(3, 2)
    first = shots._model_digest(pipe, clf)
    assert first.startswith(weights_digest(folder) + "+") and shots._model_digest(pipe, clf) == first
    with torch.no_grad():
        clf.weight[0, 0] += 1.0
    assert shots._model_digest(pipe, clf) != first
