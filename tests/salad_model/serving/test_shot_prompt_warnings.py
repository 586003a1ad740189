"""Shot prompts get the unknown-prompt warning like generate: the worker's ``prompt_warning`` of compose,
continue, in-between and part regeneration (real worker process), and the CLI's stderr line for a timeline.

The tiny model gets a vocabulary whose threshold lies between a far prompt's score and a training caption's,
measured with its own random encoder (as in runtime/test_novelty.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_worker import RawWorker

from salad_model.runtime.novelty import Vocabulary, anchor_embedding, sentence_embeddings
from salad_model.runtime.text import load_text_encoder
from salad_model.serving import protocol as P

KNOWN = ["A person walks forward.", "A person runs forward.", "Someone waves with the left hand.",
         "A man bows politely.", "A woman kicks.", "A child walks sideways to the right."]
LABELS = ["walk", "run", "wave-left-hand", "bow", "kick", "walk-right"]
CANDIDATES = ["zebra quantum xylophone", "7 8 9", "purple elephants orbit saturn", "qwerty"]


@pytest.fixture(scope="module")
def vocab_model(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, str, str]:
    """(model folder with a vocabulary, a far prompt it flags, a known prompt it does not)."""
    model = tmp_path_factory.mktemp("vocab") / "tiny"
    shutil.copytree(tiny_model_dir, model)
    enc = load_text_encoder(json.loads((model / "config.json").read_text())["text_encoder"])
    vocab = Vocabulary(KNOWN, LABELS, sentence_embeddings(enc, KNOWN), anchor_embedding(enc), 0.0)
    known = float(vocab.scores(sentence_embeddings(enc, KNOWN[:1]))[0])
    scores = vocab.scores(sentence_embeddings(enc, CANDIDATES))
    far_prompt, far = CANDIDATES[int(scores.argmin())], float(scores.min())
    assert far < known  # the tiny random encoder still tells these apart
    vocab.threshold = (far + known) / 2
    vocab.save(model)
    return model, far_prompt, KNOWN[0]


@pytest.fixture(scope="module")
def worker(vocab_model):
    w = RawWorker()
    w.result("load", model=str(vocab_model[0]), device="cpu")
    yield w
    assert w.close() == 0 and not w.bad_lines


def _warned(result: dict) -> str | None:
    w = result["prompt_warning"]
    if w is not None:
        assert len(w["nearest"]) == 3 and f'"{w["prompt"]}" is far from everything' in w["message"]
    return None if w is None else w["prompt"]


def test_compose_warns_about_a_far_segment(worker, vocab_model) -> None:
    _, far, known = vocab_model
    segs = [{"prompt": known, "seconds": 2}, {"prompt": far, "seconds": 2}]
    assert _warned(worker.result("compose", segments=segs, steps=1)) == far  # the second segment, named
    same = [{"prompt": known, "seconds": 2}, {"prompt": known, "seconds": 2, "seed": 3}]
    assert _warned(worker.result("compose", segments=same, steps=1)) is None


def test_continue_inbetween_and_parts_warn(worker, vocab_model) -> None:
    _, far, known = vocab_model
    src = worker.result("generate", prompt=known, frames=60, seed=2, steps=1)
    assert _warned(src) is None
    arr = P.encode_array(np.asarray(src["joints"], np.float32))
    assert _warned(worker.result("continue", joints=arr, prompt=far, seconds=2, steps=1)) == far
    assert _warned(worker.result("continue", joints=arr, prompt=known, seconds=2, steps=1)) is None
    assert _warned(worker.result("inbetween", joints_a=arr, joints_b=arr, prompt=far, seconds=2, steps=1)) == far
    assert _warned(worker.result("inbetween", joints_a=arr, joints_b=arr, prompt=known, seconds=2, steps=1)) is None
    assert _warned(worker.result("regenerate_parts", joints=arr, prompt=far, parts=["arms"], steps=1)) == far
    assert _warned(worker.result("regenerate_parts", joints=arr, prompt=known, parts=["arms"], steps=1)) is None
    from_far_source = worker.result("regenerate_parts", source_prompt=far, frames=48, prompt=known, parts="upper",
                                    steps=1)
    assert _warned(from_far_source) == far  # the generated source's prompt is checked too


def test_cli_compose_and_continue_warn_on_stderr(vocab_model, tmp_path: Path, capsys) -> None:
    from salad_model.__main__ import main

    model, far, known = vocab_model
    common = ["--model", str(model), "--steps", "1", "--device", "cpu"]
    assert main(["compose", "--segment", f"{known}:2", "--segment", f"{far}:2", *common,
                 "--out", str(tmp_path / "shot")]) == 0
    err = capsys.readouterr().err
    assert f'warning: "{far}" is far from everything' in err and f'"{known}" is far' not in err
    assert (tmp_path / "shot.npz").is_file()  # still made
    assert main(["compose", "--segment", f"{known}:2", "--segment", f"{known}:2:4", *common,
                 "--out", str(tmp_path / "shot2")]) == 0
    assert "warning:" not in capsys.readouterr().err
    assert main(["continue", str(tmp_path / "shot.npz"), "--prompt", far, "--seconds", "2", *common,
                 "--out", str(tmp_path / "more")]) == 0
    assert f'warning: "{far}" is far from everything' in capsys.readouterr().err
