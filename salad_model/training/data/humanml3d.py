"""Readers for the standard HumanML3D and KIT-ML folder layouts (T2M_EVALUATOR_SPEC §1).

```
dataset/humanml3d/                      (KIT: dataset/kit-ml/, same layout)
  new_joint_vecs/<id>.npy               [T, 263] features (KIT [T, 251])
  texts/<id>.txt                        caption#word/POS tokens#start s#end s, one per line
  train.txt val.txt test.txt            motion ids, one per line
checkpoints/t2m/Comp_v6_KLD005/meta/{mean,std}.npy   the statistics every SALAD tensor is normalised with
```

`build_items` is the one item construction shared by training and evaluation (§1.3): length filter on the whole
motion, one item per sub-clip caption, one item carrying all whole-motion captions. `HumanML3DData` turns those
items into the same item dicts `salad_model.training.train.MotionData` produces, so the one training loop runs on them.
The dataset-level ``Mean.npy``/``Std.npy`` are *not* the SALAD statistics (root and contact channels differ),
so they are never used silently: `find_stats` looks for the ``meta/`` pair and explains when it is missing.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATASETS = {  # reader name -> (benchmark, feature width, min length, fps)
    "humanml3d": ("t2m", 263, 40, 20.0),
    "kit": ("kit", 251, 24, 12.5),
}
MAX_LEN = 200  # items must be shorter than this (so at most 199 frames; crops at most 196)
TAG_FPS = 20  # sub-clip tags are converted with 20 fps for KIT too (reference quirk, spec §1.2)
SPLITS = ("train", "val", "test")


def benchmark_of(dataset: str) -> str:
    """``humanml3d`` → ``t2m``; ``kit`` → ``kit`` (also accepts the benchmark names themselves)."""
    if dataset in ("t2m", "kit"):
        return dataset
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[dataset][0]


def _spec(dataset: str) -> tuple[str, int, int, float]:
    return DATASETS["humanml3d" if benchmark_of(dataset) == "t2m" else "kit"]


@dataclass
class Caption:
    """One line of ``texts/<id>.txt``."""

    text: str
    tokens: list[str]
    start: float
    end: float

    @property
    def whole(self) -> bool:
        return self.start == 0.0 and self.end == 0.0


@dataclass
class ClipItem:
    """A training/evaluation item: frames ``[start, start+length)`` of ``source_id`` and its captions."""

    name: str
    source_id: str
    start: int
    length: int
    captions: list[str] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)


def _tag(value: str) -> float:
    v = float(value)
    return 0.0 if math.isnan(v) else v


def parse_caption_line(line: str) -> Caption:
    """``caption#tokens#start#end``; ``nan`` tags become 0.0 (whole motion)."""
    parts = line.strip().split("#")
    if len(parts) < 4:
        raise ValueError(f"caption line needs 4 '#'-separated fields, got {len(parts)}: {line.strip()!r}")
    return Caption(parts[0], parts[1].split(" "), _tag(parts[2]), _tag(parts[3]))


def read_captions(path: Path) -> list[Caption]:
    """Every non-blank line of a caption file (a malformed line raises: the reference then skips the motion)."""
    return [parse_caption_line(ln) for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def read_split(root: Path, split: str) -> list[str]:
    path = Path(root) / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path} (expected {', '.join(s + '.txt' for s in SPLITS)})")
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def check_layout(root: Path) -> None:
    """A clear error when a folder is not a HumanML3D/KIT-ML dataset folder."""
    root = Path(root)
    missing = [n for n in ("new_joint_vecs", "texts") if not (root / n).is_dir()]
    if missing:
        raise FileNotFoundError(f"{root} is not a HumanML3D/KIT-ML folder: missing {', '.join(missing)}/ "
                                "(expected new_joint_vecs/, texts/, train.txt, val.txt, test.txt)")


def build_items(root: Path, split: str, min_len: int, max_len: int = MAX_LEN, limit: int | None = None,
                seed: int | None = None) -> tuple[list[ClipItem], dict[str, np.ndarray]]:
    """Items of a split in construction order (per motion: its sub-clips, then the whole motion) + raw motions.

    Ids whose motion or caption file cannot be read are skipped (as the reference does); a summary warning
    says how many. ``seed`` only affects the sub-clip names (random letter prefix, a dictionary key).
    """
    root = Path(root)
    check_layout(root)
    rng = random.Random(seed)
    items: list[ClipItem] = []
    motions: dict[str, np.ndarray] = {}
    names: set[str] = set()
    skipped: list[str] = []
    ids = read_split(root, split)
    for mid in ids[:limit] if limit else ids:
        try:
            motion = np.load(root / "new_joint_vecs" / f"{mid}.npy", allow_pickle=False)
            captions = read_captions(root / "texts" / f"{mid}.txt")
        except (OSError, ValueError):
            skipped.append(mid)
            continue
        if motion.ndim != 2 or not min_len <= len(motion) < max_len:
            continue
        whole = ClipItem(mid, mid, 0, len(motion))
        subclips = []
        for cap in captions:
            if cap.whole:
                whole.captions.append(cap.text)
                whole.tokens.append(cap.tokens)
                continue
            a, b = int(cap.start * TAG_FPS), int(cap.end * TAG_FPS)
            n = len(motion[a:b])
            if not min_len <= n < max_len:
                continue
            name = f"{rng.choice('ABCDEFGHIJKLMNOPQRSTUVW')}_{mid}"
            while name in names:
                name = f"{rng.choice('ABCDEFGHIJKLMNOPQRSTUVW')}_{mid}"
            names.add(name)
            subclips.append(ClipItem(name, mid, a, n, [cap.text], [cap.tokens]))
        if not subclips and not whole.captions:
            continue
        motions[mid] = motion
        items.extend(subclips)
        if whole.captions:
            names.add(mid)
            items.append(whole)
    if skipped:
        warnings.warn(f"{root}: skipped {len(skipped)} of {len(ids)} {split} ids whose files are missing or "
                      f"unreadable (e.g. {', '.join(skipped[:3])})", stacklevel=2)
    return items, motions


def find_stats(root: Path, dataset: str, stats_dir: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The evaluator's ``meta/{mean,std}.npy``: explicit folder, else next to the dataset in the reference layout."""
    bench = benchmark_of(dataset)
    root = Path(root)
    candidates = [Path(stats_dir)] if stats_dir else [
        root.parent.parent / "checkpoints" / bench / "Comp_v6_KLD005" / "meta",
        root / "meta",
        root / "Comp_v6_KLD005" / "meta",
    ]
    for c in candidates:
        if (c / "mean.npy").is_file() and (c / "std.npy").is_file():
            mean = np.load(c / "mean.npy", allow_pickle=False).astype(np.float32)
            std = np.load(c / "std.npy", allow_pickle=False).astype(np.float32)
            dim = _spec(dataset)[1]
            if mean.shape != (dim,) or std.shape != (dim,):
                raise ValueError(f"{c}: statistics have shape {mean.shape}/{std.shape}, expected ({dim},)")
            return mean, std
    raise FileNotFoundError(
        "feature statistics mean.npy/std.npy not found in " + ", ".join(str(c) for c in candidates)
        + f". SALAD normalises with the evaluator's checkpoints/{bench}/Comp_v6_KLD005/meta pair; the dataset's "
        "own Mean.npy/Std.npy differ on the root and foot-contact channels. Pass the meta folder with --stats.")


class HumanML3DData:
    """One split as the item dicts of `salad_model.training.train.MotionData` (normalised features, captions).

    ``stage="denoiser"`` (and evaluation): the §1.3 items (sub-clips and whole motions, ``min_len ≤ L < 200``).
    ``stage="vae"``: every motion of the split once, no length filter and no captions needed (§1.6 windows).
    Mirrored copies are already in the dataset (``M`` ids), so nothing is mirrored here.
    """

    def __init__(self, root: Path, split: str, dataset: str = "humanml3d", stage: str = "denoiser",
                 stats_dir: Path | str | None = None, limit: int | None = None):
        self.root, self.split, self.dataset, self.stage = Path(root), split, dataset, stage
        self.benchmark, self.dim, self.min_len, self.fps = _spec(dataset)
        self.mean, self.std = find_stats(self.root, dataset, stats_dir)
        if stage == "vae":
            self.items = self._whole_motions(limit)
        elif stage == "denoiser":
            clips, motions = build_items(self.root, split, self.min_len, limit=limit, seed=0)
            normed = {k: self._normalise(v, k) for k, v in motions.items()}
            self.items = [self._item(c, normed[c.source_id][c.start:c.start + c.length]) for c in clips]
        else:
            raise ValueError(f"unknown stage {stage!r} (vae or denoiser)")

    def _normalise(self, motion: np.ndarray, mid: str) -> np.ndarray:
        if motion.ndim != 2 or motion.shape[1] != self.dim:
            raise ValueError(f"{self.root / 'new_joint_vecs' / (mid + '.npy')}: shape {motion.shape}, expected "
                             f"[T, {self.dim}] for {self.dataset}")
        return ((motion.astype(np.float32) - self.mean) / self.std).astype(np.float32)

    @staticmethod
    def _item(c: ClipItem, features: np.ndarray) -> dict:
        return {"name": c.name, "source_id": c.source_id, "start": c.start, "content": "", "style": "",
                "mirrored": c.source_id.startswith("M"), "features": features, "captions": list(c.captions),
                "tokens": [list(t) for t in c.tokens], "heldout": []}

    def _whole_motions(self, limit: int | None) -> list[dict]:
        check_layout(self.root)
        ids = read_split(self.root, self.split)
        items = []
        for mid in ids[:limit] if limit else ids:
            path = self.root / "new_joint_vecs" / f"{mid}.npy"
            if not path.is_file():
                continue
            f = self._normalise(np.load(path, allow_pickle=False), mid)
            items.append(self._item(ClipItem(mid, mid, 0, len(f)), f))
        return items

    def windows(self, window: int) -> list[tuple[int, int]]:
        """Every (item, start) with a full window (the VAE's random 64-frame crops)."""
        return [(i, s) for i, it in enumerate(self.items) for s in range(len(it["features"]) - window + 1)]


# ------------------------------------------------------------------------------------------------
# Synthetic data in the exact layout (tests, smoke runs of a new installation)

_SUBJECTS = [["a/DET", "person/NOUN"], ["someone/PRON"], ["a/DET", "man/NOUN"], ["the/DET", "figure/NOUN"]]
_VERBS = {"walks": "walk", "runs": "run", "jumps": "jump", "turns": "turn", "waves": "wave", "kicks": "kick",
          "dances": "dance", "sits": "sit"}
_ADVERBS = ["forward", "slowly", "quickly", "left", "back", "carefully"]


def _synthetic_motion(rng: np.random.Generator, frames: int, dim: int, style: int) -> np.ndarray:
    """Smooth features with a plausible layout: small root motion, standing height, joint offsets, contacts."""
    joints = (dim + 1) // 12
    t = np.arange(frames)[:, None] / 20.0
    freq = 0.5 + 0.25 * (style % 4)
    wave = np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, size=(1, dim)))
    f = np.zeros((frames, dim), dtype=np.float32)
    f[:, 0] = 0.01 * wave[:, 0] * (style % 3)
    f[:, 1] = 0.005 * wave[:, 1]
    f[:, 2] = 0.02 + 0.01 * (style % 2) + 0.005 * wave[:, 2]
    f[:, 3] = 0.9 + 0.05 * wave[:, 3]
    ric = slice(4, 4 + (joints - 1) * 3)
    rest = np.random.default_rng(7).normal(0, 0.3, size=(joints - 1) * 3)
    rest[1::3] = np.abs(rest[1::3]) + 0.1
    f[:, ric] = rest + 0.05 * wave[:, ric]
    rot = slice(ric.stop, ric.stop + (joints - 1) * 6)
    f[:, rot] = np.tile([1, 0, 0, 0, 1, 0], joints - 1) + 0.1 * wave[:, rot]
    vel = slice(rot.stop, rot.stop + joints * 3)
    f[:, vel] = 0.02 * wave[:, vel]
    f[:, -4:] = (wave[:, -4:] > 0).astype(np.float32)
    return f + rng.normal(0, 0.005, size=f.shape).astype(np.float32)


def write_synthetic(root: Path, n_motions: int = 32, dataset: str = "humanml3d", seed: int = 0,
                    min_frames: int | None = None, max_frames: int = 199) -> tuple[np.ndarray, np.ndarray]:
    """Write a small dataset in the exact layout; returns (mean, std) of its features (for a ``meta/`` pair).

    Besides plain motions it contains what the real data has: mirrored ``M`` ids, sub-clip captions, ``nan``
    tags, a too-short motion and a split id without a file.
    """
    _, dim, min_len, _ = _spec(dataset)
    lo = min_frames or min_len
    root = Path(root)
    (root / "new_joint_vecs").mkdir(parents=True, exist_ok=True)
    (root / "texts").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    width = 5 if benchmark_of(dataset) == "kit" else 6
    ids, feats = [], []
    verbs = list(_VERBS)
    for i in range(n_motions):
        mid = f"{i:0{width}d}"
        frames = int(rng.integers(lo, max_frames + 1))
        style = int(rng.integers(0, len(verbs)))
        motion = _synthetic_motion(rng, frames, dim, style)
        lines = []
        for k in range(int(rng.integers(1, 4))):
            subj = _SUBJECTS[int(rng.integers(len(_SUBJECTS)))]
            adv = _ADVERBS[(style + k) % len(_ADVERBS)]
            words = [w.split("/")[0] for w in subj] + [verbs[style], adv]
            tokens = subj + [f"{_VERBS[verbs[style]]}/VERB", f"{adv}/ADV"]
            tags = "nan#nan" if k == 2 else "0.0#0.0"
            lines.append(f"{' '.join(words)}.#{' '.join(tokens)}#{tags}")
        if i % 5 == 1 and frames >= 2 * lo + 10:  # a sub-clip caption on the first half
            half = frames / 2 / 20.0
            lines.append(f"a person stops.#a/DET person/NOUN stop/VERB#0.0#{half:.2f}")
        for name, arr in ((mid, motion), ("M" + mid, motion[::-1].copy() if i % 4 == 0 else None)):
            if arr is None:
                continue
            np.save(root / "new_joint_vecs" / f"{name}.npy", arr.astype(np.float32))
            (root / "texts" / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            ids.append(name)
            feats.append(arr)
    short = f"{n_motions:0{width}d}"
    np.save(root / "new_joint_vecs" / f"{short}.npy", _synthetic_motion(rng, lo - 4, dim, 0))
    (root / "texts" / f"{short}.txt").write_text("a person jumps.#a/DET person/NOUN jump/VERB#0.0#0.0\n")
    ids.append(short)
    order = rng.permutation(len(ids))
    n_test = max(1, len(ids) // 4)
    n_val = max(1, len(ids) // 8)
    splits = {"test": [ids[k] for k in order[:n_test]], "val": [ids[k] for k in order[n_test:n_test + n_val]],
              "train": [ids[k] for k in order[n_test + n_val:]]}
    splits["test"].append("9" * width)  # listed but missing: must be skipped
    for split, members in splits.items():
        (root / f"{split}.txt").write_text("\n".join(members) + "\n", encoding="utf-8")
    allf = np.concatenate(feats)
    mean, std = allf.mean(0).astype(np.float32), (allf.std(0) + 1e-3).astype(np.float32)
    np.save(root / "Mean.npy", mean)
    np.save(root / "Std.npy", std)
    return mean, std
