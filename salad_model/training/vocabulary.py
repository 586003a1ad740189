"""Build a model's vocabulary (runtime/novelty.py): its training captions, their embeddings, a threshold.

``python -m salad_model.training.vocabulary MODEL_DIR [--captions DATA/captions.json --clips DATA/clips.json]``

Captions: the training captions of a prepared data folder (exact, what a retrained model saw), or — without
one — the caption generator run over every (content, style) label pair of the Bandai-Namco label files
(10 captions per pair, the same generator and seeds scheme as training). Threshold: the 5th percentile of
the best similarity of *held-out* captions (same actions, wording never used in training) on a calibration
half; false alarms are then measured on the other half and detection on ``data/novelty/oov_prompts.txt``
(actions outside the vocabulary). The lists used are written to ``data/novelty/``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from salad_model.runtime.novelty import ANCHOR_SENTENCES, Vocabulary, anchor_embedding, sentence_embeddings
from salad_model.training.data.captions import clip_seed, make_captions

NOVELTY_DIR = Path(__file__).parent / "data" / "novelty"
FALSE_ALARM_TARGET = 0.05


def bandai_pairs(label_dir: Path) -> list[tuple[str, str]]:
    """Every (content, style) pair of each dataset's label files (dataset-N_<label> lines)."""
    pairs = set()
    for n in (1, 2):
        def read(kind: str, n: int = n) -> list[str]:
            lines = (label_dir / f"{kind}_label-{n}.txt").read_text(encoding="utf-8").split()
            return [ln.split("_", 1)[1] for ln in lines if "_" in ln]
        pairs |= {(c, s) for c in read("content") for s in read("style")}
    return sorted(pairs)


def captions_from_pairs(pairs: list[tuple[str, str]], per_pair: int = 10, heldout_per_pair: int = 3
                        ) -> tuple[list[tuple[str, str]], list[str]]:
    """(caption, label) training captions and held-out captions (never equal to a training caption)."""
    train: dict[str, str] = {}
    held: list[str] = []
    for c, s in pairs:
        seed = clip_seed(f"{c}_{s}")
        for text in make_captions(c, s, per_pair, seed):
            train.setdefault(text, c)
        held += make_captions(c, s, heldout_per_pair, seed + 1, heldout=True)
    return sorted(train.items()), sorted(set(held) - set(train))


def captions_from_data(captions_json: Path, clips_json: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """The exact training captions of a prepared data folder (train clips, with mirrors), held-out of val."""
    caps = json.loads(captions_json.read_text(encoding="utf-8"))
    clips = {r["name"]: r for r in json.loads(clips_json.read_text(encoding="utf-8"))}
    train: dict[str, str] = {}
    held: set[str] = set()
    for name, c in caps.items():
        rec = clips.get(name, {})
        content = str(rec.get("content", "?"))
        if rec.get("split", "train") == "train":
            for text in c.get("train", []) + c.get("mirror_train", []):
                train.setdefault(text, content)
        held |= set(c.get("heldout", []))
    return sorted(train.items()), sorted(held - set(train))


def cap_per_label(train: list[tuple[str, str]], datasets: list[str] | None, n: int
                  ) -> tuple[list[tuple[str, str]], list[str] | None]:
    """At most ``n`` captions per (dataset, label), a sample seeded by the label (the same on every machine)."""
    import random

    groups: dict[tuple[str, str], list[int]] = {}
    for i, (_, lab) in enumerate(train):
        groups.setdefault((datasets[i] if datasets else "", lab), []).append(i)
    keep = sorted(i for key, idx in groups.items()
                  for i in (idx if len(idx) <= n else random.Random("/".join(key)).sample(idx, n)))
    return [train[i] for i in keep], ([datasets[i] for i in keep] if datasets else None)


def build(model_dir: Path, train: list[tuple[str, str]], heldout: list[str], oov: list[str], encoder,  # noqa: ANN001
          source: str, datasets: list[str] | None = None, heldout_datasets: list[str] | None = None) -> dict:
    """Embed, choose the threshold on half the held-out captions, measure on the rest; save the vocabulary.

    ``datasets`` (one name per training caption, several datasets only) is saved for ``by_prompt`` guiders;
    ``heldout_datasets`` (one per held-out caption) then measures how often a held-out caption's nearest
    training caption comes from its own dataset (the route it would take)."""
    import torch

    texts = [t for t, _ in train]
    emb = sentence_embeddings(encoder, texts)
    vocab = Vocabulary(texts, [lab for _, lab in train], emb, anchor_embedding(encoder), 1.0, datasets=datasets)
    calib, test = heldout[0::2], heldout[1::2]
    best_calib = vocab.scores(sentence_embeddings(encoder, calib))
    threshold = round(float(torch.quantile(best_calib, FALSE_ALARM_TARGET)), 4)
    vocab.threshold = threshold
    best_test = vocab.scores(sentence_embeddings(encoder, test))
    best_oov = vocab.scores(sentence_embeddings(encoder, oov))
    false_alarms = round(float((best_test < threshold).float().mean()), 4)
    report = {"threshold": threshold, "captions": len(texts), "heldout_calibration": len(calib),
              "heldout_test": len(test), "false_alarms_heldout_test": false_alarms,
              "oov_prompts": len(oov), "oov_detected": round(float((best_oov < threshold).float().mean()), 4),
              "oov_missed": [p for p, s in zip(oov, best_oov.tolist(), strict=True) if s >= threshold]}
    vocab.info = {"about": "training captions of this model for the unknown-prompt warning (runtime/novelty.py)",
                  "source": source, "embedding": "mean of the model's text-encoder token features, L2-normalised",
                  "score": "best caption similarity minus similarity to the anchor (mean of anchor_sentences)",
                  "anchor_sentences": list(ANCHOR_SENTENCES),
                  "chosen_on": f"5th percentile of {len(calib)} held-out captions (calibration half)",
                  **{k: v for k, v in report.items() if k != "threshold"}}
    if datasets is not None and heldout_datasets is not None:
        q = sentence_embeddings(encoder, heldout)
        routed = [vocab.dataset_of(q[i]) for i in range(len(heldout))]
        for name in sorted(set(heldout_datasets)):
            idx = [i for i, d in enumerate(heldout_datasets) if d == name]
            report[f"routed_to_own_dataset_{name}"] = round(sum(routed[i] == name for i in idx) / len(idx), 4)
        vocab.info.update({k: v for k, v in report.items() if k.startswith("routed_")},
                          datasets_about="each caption's training dataset: by_prompt guiders route a prompt by "
                                         "its nearest caption's (runtime/guiders.py)")
    vocab.save(model_dir)
    return report


def main(argv: list[str] | None = None) -> int:
    from salad_model.runtime.checkpoints import load_model
    from salad_model.runtime.text import load_text_encoder

    ap = argparse.ArgumentParser(prog="python -m salad_model.training.vocabulary", description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--captions", type=Path, action="append", default=None,
                    help="a prepared data folder's captions.json (repeat for a model trained on several datasets: "
                         "each caption then records its folder's name as its dataset)")
    ap.add_argument("--clips", type=Path, default=None, help="its clips.json (splits and content labels; one "
                                                             "--captions only, else each folder's clips.json)")
    ap.add_argument("--labels", type=Path, default=None, help="Bandai-Namco folder with *_label-N.txt")
    ap.add_argument("--per-label", type=int, default=0,
                    help="keep at most N training captions per (dataset, action): a seeded sample (0: all); the "
                         "embeddings are 768 bytes a caption")
    ap.add_argument("--oov", type=Path, default=NOVELTY_DIR / "oov_prompts.txt")
    args = ap.parse_args(argv)
    datasets = held_datasets = None
    if args.captions and len(args.captions) > 1:
        train, held, datasets, held_datasets = [], [], [], []
        for cap in args.captions:
            t, h = captions_from_data(cap, cap.with_name("clips.json"))
            train += t
            held += h
            datasets += [cap.parent.name] * len(t)
            held_datasets += [cap.parent.name] * len(h)
        source = "training captions of " + " + ".join(c.parent.name for c in args.captions)
    elif args.captions:
        train, held = captions_from_data(args.captions[0], args.clips or args.captions[0].with_name("clips.json"))
        source = f"training captions of {args.captions[0].parent.name}"
    else:
        from salad_model.training.data.bandai import DEFAULT_DATA_DIR

        train, held = captions_from_pairs(bandai_pairs(args.labels or DEFAULT_DATA_DIR))
        source = "caption generator over the Bandai-Namco content x style label pairs (10 per pair)"
    if args.per_label:
        train, datasets = cap_per_label(train, datasets, args.per_label)
        source += f" (at most {args.per_label} per action, a seeded sample)"
    oov = [ln.strip() for ln in args.oov.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not args.captions:  # the shipped demo's vocabulary: its held-out captions are kept for the tests
        NOVELTY_DIR.mkdir(parents=True, exist_ok=True)
        (NOVELTY_DIR / "heldout_captions.txt").write_text("\n".join(held) + "\n", encoding="utf-8")
    encoder = load_text_encoder(load_model(args.model_dir).text_encoder)
    report = build(args.model_dir, train, held, oov, encoder, source, datasets, held_datasets)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
