"""Is a prompt far from everything the model was trained on? Text similarity to its training captions.

A model folder may carry ``vocabulary.json`` (captions, their labels, the threshold and how it was chosen)
and ``vocabulary.safetensors`` (the captions' sentence embeddings, float16, and an *anchor*: the mean
embedding of content-free sentences such as "A person."). A prompt's score is its best cosine similarity
to the captions minus its similarity to the anchor: "a person <anything>" is close to every caption through
"a person", and the anchor takes that shared part out (measured: detection of out-of-vocabulary prompts 72%
→ 88% at the same false-alarm rate, docs/MODEL_CARD.md). Below the threshold the prompt gets a
:class:`PromptWarning` naming the nearest things the model knows. The sentence embedding is the mean of the
model's own text-encoder token features, L2-normalised (for MiniLM: the sentence-transformers embedding),
so no second model loads.
Models without these files (the official checkpoints: their training captions are not shipped) get no
warning. Built by ``python -m salad_model.training.vocabulary``; a retrained model brings its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

VOCAB_JSON = "vocabulary.json"
VOCAB_TENSORS = "vocabulary.safetensors"
# Content-free sentences: their mean embedding is what every "a person ..." prompt shares with every caption.
ANCHOR_SENTENCES = ("A person.", "Someone.", "A man.", "A woman.", "A person moves.", "A person does something.")


def anchor_embedding(encoder):  # noqa: ANN001, ANN201
    import torch

    return torch.nn.functional.normalize(sentence_embeddings(encoder, ANCHOR_SENTENCES).mean(0), dim=0)


def sentence_embeddings(encoder, texts: Sequence[str], batch: int = 128):  # noqa: ANN001, ANN201
    """[N, D] float32 unit vectors: the mean of each text's valid token features.

    Batches padded to their longest text only (``encode_compact``), sorted by length: ~5x less work than
    padding every caption to the encoder's 77 tokens.
    """
    import torch

    texts = list(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.zeros(len(texts), int(encoder.dim))
    for start in range(0, len(texts), batch):
        idx = order[start:start + batch]
        for i, (feats, _mask) in zip(idx, encoder.encode_compact([texts[i] for i in idx]), strict=True):
            out[i] = feats.float().mean(0).cpu()
    return torch.nn.functional.normalize(out, dim=-1)


@dataclass
class PromptWarning:
    """A prompt the model probably cannot do, with the nearest captions it was trained on."""

    prompt: str
    similarity: float
    threshold: float
    nearest: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        near = "; ".join(f'"{n}"' for n in self.nearest)
        d = 2 if f"{self.similarity:.2f}" != f"{self.threshold:.2f}" else 3  # 0.178 read as 0.18, "≥ 0.18"
        return (f'"{self.prompt}" is far from everything this model was trained on (match {self.similarity:.{d}f}, '
                f"known prompts score ≥ {self.threshold:.{d}f}); expect something else. Nearest it knows: {near}")

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "similarity": round(self.similarity, 4), "threshold": self.threshold,
                "nearest": list(self.nearest), "message": self.message}


class Vocabulary:
    """Training captions of one model and the threshold below which a prompt is called unknown."""

    def __init__(self, captions: list[str], labels: list[str], embeddings, anchor, threshold: float,  # noqa: ANN001
                 info: dict | None = None, datasets: list[str] | None = None) -> None:
        if len(captions) != len(embeddings) or len(labels) != len(captions):
            raise ValueError(f"vocabulary: {len(captions)} captions, {len(labels)} labels, "
                             f"{len(embeddings)} embeddings")
        if datasets is not None and len(datasets) != len(captions):
            raise ValueError(f"vocabulary: {len(datasets)} dataset names for {len(captions)} captions")
        self.datasets = datasets  # each caption's training dataset (models trained on several), else None
        if tuple(anchor.shape) != (embeddings.shape[1],):
            raise ValueError(f"vocabulary: anchor of shape {tuple(anchor.shape)} for {embeddings.shape[1]}-wide "
                             "embeddings")
        self.captions, self.labels, self.embeddings, self.anchor = captions, labels, embeddings, anchor
        self.threshold, self.info = float(threshold), dict(info or {})

    @classmethod
    def load(cls, folder: str | Path) -> Vocabulary | None:
        """The model folder's vocabulary, or None when it has none (then nothing is ever flagged)."""
        import torch
        from safetensors.torch import load_file

        folder = Path(folder)
        jfile, tfile = folder / VOCAB_JSON, folder / VOCAB_TENSORS
        if not (jfile.is_file() and tfile.is_file()):
            return None
        meta = json.loads(jfile.read_text(encoding="utf-8"))
        tensors = load_file(str(tfile))
        # copies, not views of the file's memory map (checkpoints.load_model says why)
        return cls(list(meta["captions"]), list(meta["labels"]), tensors["embeddings"].to(torch.float32, copy=True),
                   tensors["anchor"].to(torch.float32, copy=True), float(meta["threshold"]),
                   {k: v for k, v in meta.items() if k not in ("captions", "labels", "datasets")},
                   list(meta["datasets"]) if "datasets" in meta else None)

    def save(self, folder: str | Path) -> None:
        import torch
        from safetensors.torch import save_file

        folder = Path(folder)
        save_file({"embeddings": self.embeddings.to(torch.float16).contiguous(),
                   "anchor": self.anchor.float().contiguous()}, str(folder / VOCAB_TENSORS))
        (folder / VOCAB_TENSORS).chmod(0o644)
        meta = {**self.info, "threshold": self.threshold, "captions": self.captions, "labels": self.labels}
        if self.datasets is not None:
            meta["datasets"] = self.datasets
        (folder / VOCAB_JSON).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")

    def scores(self, queries):  # noqa: ANN001, ANN201
        """Scores [Q] of unit-vector queries [Q, D]: best caption similarity minus anchor similarity."""
        return (queries @ self.embeddings.T).max(dim=1).values - queries @ self.anchor

    def nearest(self, query, n: int = 3) -> list[str]:  # noqa: ANN001
        """The n nearest captions with distinct labels (varied examples, not one action three times)."""
        order = (self.embeddings @ query).argsort(descending=True).tolist()
        out, seen = [], set()
        for i in order:
            if self.labels[i] in seen:
                continue
            seen.add(self.labels[i])
            out.append(self.captions[i])
            if len(out) == n:
                break
        return out

    def dataset_of(self, query) -> str | None:  # noqa: ANN001
        """The training dataset of the caption nearest to a unit-vector query [D] (None: one dataset only).

        What a ``by_prompt`` guider routes on (:mod:`guiders`): the datasets of a model trained on several were
        learnt to different degrees and want different guidance."""
        if self.datasets is None:
            return None
        return self.datasets[int((self.embeddings @ query).argmax())]

    def check(self, prompt: str, encoder) -> PromptWarning | None:  # noqa: ANN001
        q = sentence_embeddings(encoder, [prompt])
        score = float(self.scores(q)[0])
        if score >= self.threshold:
            return None
        return PromptWarning(prompt, score, self.threshold, self.nearest(q[0]))
