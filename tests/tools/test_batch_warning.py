"""tools/batch.py prints the worker's unknown-prompt warning (a tiny model whose vocabulary knows nothing)."""

import json
import shutil

from needs import require_module
from test_batch import run

from salad_model.runtime.novelty import Vocabulary, anchor_embedding, sentence_embeddings
from salad_model.runtime.text import load_text_encoder

bpy = require_module("bpy")


def test_batch_warns_and_still_writes(tmp_path, tiny_model_dir):
    model = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, model)
    enc = load_text_encoder(json.loads((model / "config.json").read_text())["text_encoder"])
    known = ["A person walks.", "A person runs.", "A person bows.", "A person kicks."]
    Vocabulary(known, ["walk", "run", "bow", "kick"], sentence_embeddings(enc, known), anchor_embedding(enc),
               2.0).save(model)  # no prompt can reach 2.0: every prompt is reported
    p = run("--prompt", "a person swims", "--seconds", 2, "--out", tmp_path / "o", "--model", model,
            "--steps", 1, "--threads", 1)
    assert p.returncode == 0, p.stderr
    assert 'warning: "a person swims" is far from everything' in p.stderr and "Nearest it knows" in p.stderr
    assert (tmp_path / "o" / "a_person_swims.blend").is_file()


def test_batch_shot_warns_about_its_far_segment(tmp_path, tiny_model_dir):
    """A timeline goes through the add-on's Generate Shot job (shot_jobs.start_compose → MotionJob)."""
    model = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, model)
    enc = load_text_encoder(json.loads((model / "config.json").read_text())["text_encoder"])
    known = ["A person walks.", "A person runs.", "A person bows.", "A person kicks."]
    Vocabulary(known, ["walk", "run", "bow", "kick"], sentence_embeddings(enc, known), anchor_embedding(enc),
               2.0).save(model)  # no prompt can reach 2.0: the first segment is reported
    p = run("--segment", "a person swims:2", "--segment", "a person walks:2", "--out", tmp_path / "o",
            "--model", model, "--steps", 1, "--threads", 1)
    assert p.returncode == 0, p.stderr
    assert 'warning: "a person swims" is far from everything' in p.stderr and "Nearest it knows" in p.stderr
    assert len(list((tmp_path / "o").glob("*.blend"))) == 1
