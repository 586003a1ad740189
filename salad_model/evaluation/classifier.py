"""A small motion classifier (content and style) used as the evaluator of generated motion.

Why a classifier: the Bandai-Namco data has labels, not free text, so "did the model do what the
caption asked" is measured by classifying the generated motion with a network trained on real clips
(and reporting that network's accuracy on real test clips as the ceiling). Its pooled penultimate
features also serve as the embedding for the Fréchet distance and diversity.

Design (sized to train in minutes on one CPU thread):

- input: HumanML3D features [T, 263], de-normalised; the classifier stores the dataset mean/std and
  normalises itself, so it can be applied to any motion (real or generated) without side tables;
- input channels: root, joint positions, joint velocities and foot contacts; not the 6D rotations,
  which our joints never come from (:func:`feature_channels`);
- network: 1×1 input projection, residual dilated temporal convolutions (kernel 5, dilations
  1, 2, 4, 8 → receptive field 61 frames ≈ 3 s), masked mean + max pooling over time, a linear
  embedding (``embed``) and two heads;
- content vocabulary: the union of dataset-1 and dataset-2 contents (``walk``/``run`` are shared);
- style vocabulary: one head over the union of the styles, with the synonyms that our captions
  already treat as one style merged (``elderly``→``old``, ``exhausted``→``tired``,
  ``masculine``→``masculinity``): the text model cannot tell them apart, so neither should the
  evaluator. Because dataset-1 styles have ~7 training clips each, evaluation also reports the
  style accuracy restricted to the clip's own sub-dataset style set (``dataset_styles``);
- training data: train split plus mirrored copies (left/right contents swapped), random crops.

Train with ``python -m salad_model.evaluation.eval train-classifier`` (see :func:`train_classifier`).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import ASSETS_DIR

CLASSIFIER_DIR = ASSETS_DIR / "classifier"
STYLE_SYNONYMS: dict[str, str] = {"elderly": "old", "exhausted": "tired", "masculine": "masculinity"}
# One-handed contents and their side; the left/right metrics are defined on these.
HAND_SIDES: dict[str, str] = {
    "wave-left-hand": "left", "wave-right-hand": "right",
    "raise-up-left-hand": "left", "raise-up-right-hand": "right",
}


def canonical_style(style: str) -> str:
    """Merge style labels that the captions describe with the same words."""
    return STYLE_SYNONYMS.get(style, style)


@dataclass
class ClassifierConfig:
    """Architecture, vocabularies and crop lengths; saved as ``config.json`` next to the weights."""

    contents: list[str]
    styles: list[str]
    dataset_styles: dict[str, list[str]] = field(default_factory=dict)
    feature_dim: int = 263
    channels: str = "no_rot"  # "all", or "no_rot": skip the 6D joint rotations (see feature_channels)
    hidden: int = 64
    embed_dim: int = 64
    kernel: int = 5
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    dropout: float = 0.1
    min_crop: int = 40
    max_crop: int = 160
    eval_max_frames: int = 196

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["dilations"] = tuple(known.get("dilations", (1, 2, 4, 8)))
        return cls(**known)


def feature_channels(mode: str, dim: int = 263, joints: int = 22) -> list[int]:
    """Input channels the classifier reads.

    ``no_rot`` drops the 6D local rotations (HumanML3D channels 4+3(J−1) … 4+9(J−1)): our pipeline builds
    joints from root + positions alone (``recover_from_ric``) and retargets from joints, so rotations are
    invisible to users; a classifier that read them lost 7–9 accuracy points on VAE reconstructions of
    real clips (the VAE reproduces rotations worst) and would have scored generated motion on channels
    nobody sees.
    """
    if mode == "all":
        return list(range(dim))
    if mode == "no_rot":
        r0, r1 = 4 + 3 * (joints - 1), 4 + 9 * (joints - 1)
        return [i for i in range(dim) if not r0 <= i < r1]
    raise ValueError(f"unknown channel mode {mode!r}")


class _FrameNorm(nn.Module):
    """LayerNorm over channels of each frame of [B, C, T]: unlike GroupNorm it never mixes frames, so
    padding cannot change a clip's output (the result does not depend on what it is batched with)."""

    def __init__(self, ch: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ch, 1))
        self.bias = nn.Parameter(torch.zeros(ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = x.var(1, keepdim=True, unbiased=False)
        return (x - mu) * torch.rsqrt(var + 1e-5) * self.weight + self.bias


class _Block(nn.Module):
    """Residual dilated temporal conv; padded frames are re-zeroed so they never leak into the pool."""

    def __init__(self, ch: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(ch, ch, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.mix = nn.Conv1d(ch, ch, 1)
        self.norm = _FrameNorm(ch)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        h = self.mix(F.gelu(self.conv(self.norm(x))))
        return (x + self.drop(h)) * m


class MotionClassifier(nn.Module):
    """Features [B, T, 263] (de-normalised) + mask [B, T] → content logits, style logits, embedding."""

    def __init__(self, config: ClassifierConfig, mean: np.ndarray | torch.Tensor | None = None,
                 std: np.ndarray | torch.Tensor | None = None):
        super().__init__()
        self.config = c = config
        d = c.feature_dim
        self.register_buffer("mean", torch.zeros(d) if mean is None else torch.as_tensor(mean).float().clone())
        self.register_buffer("std", torch.ones(d) if std is None else torch.as_tensor(std).float().clone())
        self.register_buffer("channels", torch.tensor(feature_channels(c.channels, d)), persistent=False)
        self.inp = nn.Conv1d(len(self.channels), c.hidden, 1)
        self.blocks = nn.ModuleList(_Block(c.hidden, c.kernel, dl, c.dropout) for dl in c.dilations)
        self.proj = nn.Linear(2 * c.hidden, c.embed_dim)
        self.drop = nn.Dropout(c.dropout)
        self.content_head = nn.Linear(c.embed_dim, len(c.contents))
        self.style_head = nn.Linear(c.embed_dim, len(c.styles))

    def embed(self, feats: torch.Tensor, mask: torch.Tensor | None = None, normalised: bool = False
              ) -> torch.Tensor:
        """Pooled penultimate features [B, embed_dim] (used for Fréchet distance and diversity)."""
        x = feats if normalised else (feats - self.mean) / self.std
        x = x[..., self.channels]
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        m = mask[:, None, :].to(x.dtype)
        h = self.inp(x.transpose(1, 2)) * m
        for blk in self.blocks:
            h = blk(h, m)
        n = m.sum(-1).clamp(min=1.0)
        mean = h.sum(-1) / n
        mx = h.masked_fill(m == 0, -1e4).amax(-1)
        return F.gelu(self.proj(torch.cat([mean, mx], -1)))

    def forward(self, feats: torch.Tensor, mask: torch.Tensor | None = None, normalised: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e = self.embed(feats, mask, normalised)
        z = self.drop(e)
        return self.content_head(z), self.style_head(z), e

    # -- convenience for evaluation ---------------------------------------------------------------

    @torch.no_grad()
    def predict(self, clips: list[np.ndarray], batch: int = 64) -> dict[str, np.ndarray]:
        """Classify de-normalised feature arrays of any lengths: probabilities and embeddings."""
        self.eval()
        pc, ps, emb = [], [], []
        order = np.argsort([len(c) for c in clips])
        for k in range(0, len(clips), batch):
            idx = order[k:k + batch]
            x, m = pad_clips([clips[i] for i in idx])
            c, s, e = self(x, m)
            pc.append(c.softmax(-1))
            ps.append(s.softmax(-1))
            emb.append(e)
        inv = np.argsort(order)
        cat = lambda t: torch.cat(t).numpy()[inv] if t else np.zeros((0,))  # noqa: E731
        return {"content_prob": cat(pc), "style_prob": cat(ps), "embedding": cat(emb)}

    def side_scores(self, content_prob: np.ndarray) -> np.ndarray:
        """P(left-hand contents) − P(right-hand contents) per clip: > 0 means "left hand"."""
        out = np.zeros(len(content_prob))
        for name, side in HAND_SIDES.items():
            if name in self.config.contents:
                out += (1 if side == "left" else -1) * content_prob[:, self.config.contents.index(name)]
        return out

    def style_within(self, style_prob: np.ndarray, datasets: list[int]) -> np.ndarray:
        """Style argmax restricted to each clip's sub-dataset style set (index into ``styles``)."""
        out = style_prob.argmax(-1)
        for i, ds in enumerate(datasets):
            allowed = self.config.dataset_styles.get(str(ds))
            if allowed:
                cols = [self.config.styles.index(s) for s in allowed]
                out[i] = cols[int(style_prob[i, cols].argmax())]
        return out


def pad_clips(clips: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length [T, D] arrays into [B, T_max, D] with a validity mask."""
    t = max(len(c) for c in clips)
    x = torch.zeros(len(clips), t, clips[0].shape[-1])
    m = torch.zeros(len(clips), t, dtype=torch.bool)
    for i, c in enumerate(clips):
        x[i, : len(c)] = torch.from_numpy(np.array(c, dtype=np.float32))
        m[i, : len(c)] = True
    return x, m


def center_crop(f: np.ndarray, frames: int) -> np.ndarray:
    """The middle ``frames`` rows (all of them when shorter): how real clips are shown to the evaluator."""
    if len(f) <= frames:
        return f
    s = (len(f) - frames) // 2
    return f[s:s + frames]


def generation_frames(clip_frames: int, lo: int = 40, hi: int = 196) -> int:
    """Length used to generate the counterpart of a real clip: rounded to ×4, clamped to the model range."""
    return int(min(max(int(round(clip_frames / 4.0)) * 4, lo), hi))


# ------------------------------------------------------------------------------------------------
# Save / load


def save_classifier(model: MotionClassifier, folder: Path, extra: dict | None = None) -> Path:
    """``classifier.safetensors`` (float16 weights, float32 statistics) + ``config.json``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.float() if k in ("mean", "std") else v.half()).contiguous().clone()
             for k, v in model.state_dict().items()}
    save_file(state, str(folder / "classifier.safetensors"))
    cfg = {"format": "salad-motion-classifier-v1", **model.config.to_dict(), **(extra or {})}
    (folder / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    return folder


def load_classifier(folder: Path | str | None = None) -> MotionClassifier:
    """The shipped classifier (default) or one saved by :func:`save_classifier`."""
    from safetensors.torch import load_file

    folder = Path(folder) if folder else CLASSIFIER_DIR
    cfile = folder / "config.json"
    if not cfile.is_file():
        raise FileNotFoundError(f"no classifier at {folder}: "
                                "run `python -m salad_model.evaluation.eval train-classifier`")
    cfg = ClassifierConfig.from_dict(json.loads(cfile.read_text()))
    model = MotionClassifier(cfg)
    state = {k: v.float() for k, v in load_file(str(folder / "classifier.safetensors")).items()}
    model.load_state_dict(state)
    return model.eval()


# ------------------------------------------------------------------------------------------------
# Data and training


@dataclass
class LabelledClip:
    name: str
    dataset: int
    content: str
    style: str
    features: np.ndarray  # de-normalised [T, 263]
    mirrored: bool = False


def load_split(data_dir: Path, split: str, mirror: bool = False) -> list[LabelledClip]:
    """Clips of one split with canonical labels; ``mirror`` adds the left/right mirror images."""
    from ..motion.motion_process import mirror_features
    from ..training.data.bandai import clip_arrays, load_dataset
    from ..training.data.captions import mirror_content

    clips, joints, feats = load_dataset(data_dir)
    out: list[LabelledClip] = []
    for c in clips:
        if c["split"] != split:
            continue
        f = np.asarray(clip_arrays(c, joints, feats)[1], dtype=np.float32)
        style = canonical_style(c["style"])
        out.append(LabelledClip(c["name"], int(c["dataset"]), c["content"], style, f))
        if mirror:
            out.append(LabelledClip(c["name"], int(c["dataset"]), mirror_content(c["content"]), style,
                                    mirror_features(f), True))
    return out


def vocabularies(data_dir: Path) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """Sorted content and (merged) style vocabularies of the whole dataset, and styles per sub-dataset."""
    from ..training.data.captions import mirror_content

    clips = json.loads((Path(data_dir) / "clips.json").read_text())
    contents = sorted({c["content"] for c in clips} | {mirror_content(c["content"]) for c in clips})
    styles = sorted({canonical_style(c["style"]) for c in clips})
    per_ds: dict[str, set[str]] = {}
    for c in clips:
        per_ds.setdefault(str(c["dataset"]), set()).add(canonical_style(c["style"]))
    return contents, styles, {k: sorted(v) for k, v in sorted(per_ds.items())}


@torch.no_grad()
def evaluate_real(model: MotionClassifier, clips: list[LabelledClip]) -> dict:
    """Accuracies on real clips, each shown at the length its generated counterpart would have."""
    cfg = model.config
    crops = [center_crop(c.features, generation_frames(len(c.features) + 1, hi=cfg.eval_max_frames))
             for c in clips]
    pred = model.predict(crops)
    return classification_report(model, pred, [c.content for c in clips], [c.style for c in clips],
                                  [c.dataset for c in clips])


def classification_report(model: MotionClassifier, pred: dict, contents: list[str], styles: list[str],
                          datasets: list[int]) -> dict:
    """Content / style / within-dataset style / left-right accuracies, per-class accuracies, confusion."""
    cfg = model.config
    ci = np.array([cfg.contents.index(c) if c in cfg.contents else -1 for c in contents])
    si = np.array([cfg.styles.index(canonical_style(s)) if canonical_style(s) in cfg.styles else -1
                   for s in styles])
    pc = pred["content_prob"].argmax(-1)
    ps = pred["style_prob"].argmax(-1)
    pw = model.style_within(pred["style_prob"], datasets)
    hand = np.array([c in HAND_SIDES for c in contents])
    side_true = np.array([HAND_SIDES.get(c) == "left" for c in contents])
    side_pred = model.side_scores(pred["content_prob"]) > 0
    conf = np.zeros((len(cfg.contents), len(cfg.contents)), dtype=int)
    for t, p in zip(ci, pc, strict=True):
        if t >= 0:
            conf[t, p] += 1
    per_content = {c: float(np.mean(pc[ci == k] == k)) for k, c in enumerate(cfg.contents) if (ci == k).any()}
    per_style = {s: float(np.mean(ps[si == k] == k)) for k, s in enumerate(cfg.styles) if (si == k).any()}
    ds = np.array(datasets)
    per_dataset = {str(d): {"n": int((ds == d).sum()),
                            "content_acc": accuracy(pc[ds == d], ci[ds == d]),
                            "style_acc": accuracy(ps[ds == d], si[ds == d]),
                            "style_acc_within_dataset": accuracy(pw[ds == d], si[ds == d])}
                   for d in sorted(set(datasets))}
    return {
        "n": len(contents),
        "content_acc": accuracy(pc, ci),
        "style_acc": accuracy(ps, si),
        "style_acc_within_dataset": accuracy(pw, si),
        "lr_n": int(hand.sum()),
        "lr_acc": accuracy(side_pred[hand], side_true[hand]) if hand.any() else float("nan"),
        "per_dataset": per_dataset,
        "per_content": per_content,
        "per_style": per_style,
        "confusion": conf.tolist(),
    }


def accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Fraction of equal entries (nan for an empty set, so that a missing class is not scored as 0)."""
    pred, target = np.asarray(pred), np.asarray(target)
    return float(np.mean(pred == target)) if len(target) else float("nan")


def _batches(items: list[LabelledClip], batch: int, cfg: ClassifierConfig, rng: random.Random,
             cidx: dict[str, int], sidx: dict[str, int]):
    """Endless random batches: one crop length per batch, random start per clip, shorter clips whole."""
    while True:
        length = rng.randint(cfg.min_crop, cfg.max_crop)
        chosen = [items[rng.randrange(len(items))] for _ in range(batch)]
        crops = []
        for it in chosen:
            f = it.features
            if len(f) > length:
                s = rng.randint(0, len(f) - length)
                f = f[s:s + length]
            crops.append(f)
        x, m = pad_clips(crops)
        yield (x, m, torch.tensor([cidx[it.content] for it in chosen]),
               torch.tensor([sidx[it.style] for it in chosen]))


def train_classifier(data_dir: Path, out: Path | None = CLASSIFIER_DIR, max_steps: int = 4000, batch: int = 64,
                     lr: float = 2e-3, eval_every: int = 200, patience: int = 6, seed: int = 0,
                     hidden: int = 64, noise: float = 0.05, threads: int | None = 1, limit: int | None = None,
                     log=print) -> tuple[MotionClassifier, dict]:
    """Train on train (+ mirrored) clips, keep the best val checkpoint, report test accuracy (the ceiling).

    One CPU thread by default: the evaluator must not slow down model training running next to it.
    """
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    data_dir = Path(data_dir)
    contents, styles, per_ds = vocabularies(data_dir)
    cfg = ClassifierConfig(contents=contents, styles=styles, dataset_styles=per_ds, hidden=hidden,
                           embed_dim=hidden)
    mean = np.load(data_dir / "mean.npy")
    std = np.load(data_dir / "std.npy")
    train = load_split(data_dir, "train", mirror=True)
    val = load_split(data_dir, "val")
    test = load_split(data_dir, "test")
    if limit:
        train, val, test = train[:limit], val[:limit], test[:limit]
    # Normalise the training crops once (the model normalises de-normalised inputs itself).
    norm = [LabelledClip(c.name, c.dataset, c.content, c.style, (c.features - mean) / std, c.mirrored)
            for c in train]
    model = MotionClassifier(cfg, mean, std)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"classifier: {len(train)} train items (with mirrors), {len(val)} val, {len(test)} test; "
        f"{len(contents)} contents, {len(styles)} styles; {n_params} parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    cidx = {c: i for i, c in enumerate(contents)}
    sidx = {s: i for i, s in enumerate(styles)}
    batches = _batches(norm, batch, cfg, rng, cidx, sidx)
    best, best_state, bad, history = -1.0, None, 0, []
    t0 = time.time()
    step = 0
    for step in range(1, max_steps + 1):  # noqa: B007
        model.train()
        x, m, yc, ys = next(batches)
        for g in opt.param_groups:  # short warm-up, cosine decay over the step budget
            g["lr"] = lr * min(1.0, step / 100) * 0.5 * (1 + math.cos(math.pi * step / max_steps))
        if noise:  # small jitter: generated features are smoother/noisier than mocap in places
            x = x + noise * torch.randn_like(x) * m[..., None]
        c, s, _ = model(x, m, normalised=True)
        loss = F.cross_entropy(c, yc, label_smoothing=0.1) + F.cross_entropy(s, ys, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == max_steps:
            r = evaluate_real(model, val)
            score = r["content_acc"] + r["style_acc"]
            history.append({"step": step, "loss": round(loss.item(), 4), "val_content_acc": r["content_acc"],
                            "val_style_acc": r["style_acc"], "sec": round(time.time() - t0, 1)})
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in history[-1].items()))
            if score > best:
                best, bad = score, 0
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    summary = {
        "trained_steps": step, "best_val_step": max(history, key=lambda h: h["val_content_acc"]
                                                    + h["val_style_acc"])["step"] if history else 0,
        "train_seconds": round(time.time() - t0, 1), "parameters": n_params,
        "val": {k: v for k, v in evaluate_real(model, val).items() if k in ("content_acc", "style_acc")},
        "test": evaluate_real(model, test), "history": history, "seed": seed, "batch": batch, "lr": lr, "noise": noise,
        "data": {"train_items": len(train), "val": len(val), "test": len(test)},
    }
    if out is not None:
        test_short = {k: v for k, v in summary["test"].items() if k not in ("confusion",)}
        save_classifier(model, Path(out), {"training": {**{k: v for k, v in summary.items()
                                                           if k != "test"}, "test": test_short}})
    return model, summary
