"""The evaluation dataset and loader (T2M_EVALUATOR_SPEC §1.3–§1.5).

Items come from `salad_model.training.data.humanml3d.build_items` (the same construction training uses), sorted by
length. Each fetch draws a caption, the length rounding coin and the crop from the dataset's own RNG, so the
global NumPy RNG stays reserved for the metrics, as in the reference's main process.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ...training.data.humanml3d import ClipItem, build_items
from .wordvec import MAX_TEXT_LEN, WordVectorizer

MAX_MOTION_LENGTH = 196
UNIT_LENGTH = 4


class EvalSample(NamedTuple):
    word_embs: np.ndarray  # [22, 300]
    pos_ohot: np.ndarray  # [22, 15]
    caption: str
    sent_len: int
    motion: np.ndarray  # [196, D] normalised, zero-padded
    m_length: int
    tokens: str  # the 22 tokens joined by "_"


class EvalBatch(NamedTuple):
    """The reference loader's 7-tuple, rows sorted by ``sent_len`` descending."""

    word_embs: torch.Tensor  # [B, 22, 300]
    pos_ohot: torch.Tensor  # [B, 22, 15]
    captions: list[str]
    sent_len: torch.Tensor  # [B] int64
    motions: torch.Tensor  # [B, 196, D]
    m_lens: torch.Tensor  # [B] int64
    tokens: list[str]


class EvalDataset:
    """Items of one split (``min_len ≤ L < 200``), length-ascending; one random caption/crop per fetch."""

    def __init__(self, root: Path, split: str, min_len: int, word_vectorizer: WordVectorizer, mean: np.ndarray,
                 std: np.ndarray, seed: int = 0, limit: int | None = None,
                 max_motion_length: int = MAX_MOTION_LENGTH, unit_length: int = UNIT_LENGTH,
                 max_text_len: int = MAX_TEXT_LEN):
        items, self.motions = build_items(root, split, min_len, limit=limit, seed=seed)
        self.items: list[ClipItem] = sorted(items, key=lambda c: c.length)
        if not self.items:
            raise ValueError(f"{root}: no {split} items of {min_len}–199 frames")
        self.w_vectorizer = word_vectorizer
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.max_motion_length, self.unit_length, self.max_text_len = max_motion_length, unit_length, max_text_len
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.items)

    def inv_transform(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Normalised → raw features."""
        if isinstance(x, torch.Tensor):
            return x * torch.from_numpy(self.std).to(x) + torch.from_numpy(self.mean).to(x)
        return x * self.std + self.mean

    def frames(self, item: ClipItem) -> np.ndarray:
        return self.motions[item.source_id][item.start:item.start + item.length]

    def sample(self, index: int, caption_index: int, m_length: int, crop_start: int) -> EvalSample:
        """The deterministic part of a fetch, given the three random choices."""
        item = self.items[index]
        word_embs, pos_ohot, sent_len, toks = self.w_vectorizer.encode_tokens(item.tokens[caption_index],
                                                                              self.max_text_len)
        motion = self.frames(item)[crop_start:crop_start + m_length]
        motion = (motion.astype(np.float32) - self.mean) / self.std
        if m_length < self.max_motion_length:
            motion = np.concatenate([motion, np.zeros((self.max_motion_length - m_length, motion.shape[1]),
                                                      dtype=np.float32)])
        return EvalSample(word_embs.astype(np.float32), pos_ohot.astype(np.float32), item.captions[caption_index],
                          sent_len, motion.astype(np.float32), m_length, "_".join(toks))

    def draw(self, index: int) -> tuple[int, int, int]:
        """(caption index, rounded length, crop start): 2/3 ``4⌊L/4⌋``, 1/3 one unit less; uniform crop."""
        item = self.items[index]
        cap = self.rng.randrange(len(item.captions))
        units = item.length // self.unit_length
        m = self.unit_length * (units - 1 if self.rng.randrange(3) == 2 else units)
        m = min(m, self.max_motion_length)
        return cap, m, self.rng.randint(0, item.length - m)

    def __getitem__(self, index: int) -> EvalSample:
        return self.sample(index, *self.draw(index))


def collate(samples: list[EvalSample]) -> EvalBatch:
    """Stable sort by ``sent_len`` descending (the text GRU packing needs it), then stack."""
    samples = sorted(samples, key=lambda s: s.sent_len, reverse=True)
    return EvalBatch(
        torch.from_numpy(np.stack([s.word_embs for s in samples])),
        torch.from_numpy(np.stack([s.pos_ohot for s in samples])),
        [s.caption for s in samples],
        torch.tensor([s.sent_len for s in samples], dtype=torch.int64),
        torch.from_numpy(np.stack([s.motion for s in samples])),
        torch.tensor([s.m_length for s in samples], dtype=torch.int64),
        [s.tokens for s in samples],
    )


class EvalLoader:
    """Shuffled batches with ``drop_last`` (a new order, captions and crops on every pass)."""

    def __init__(self, dataset: EvalDataset, batch_size: int = 32, seed: int = 0):
        if len(dataset) < batch_size:
            raise ValueError(f"{len(dataset)} evaluation items are fewer than one batch of {batch_size}")
        self.dataset, self.batch_size = dataset, batch_size
        self.rng = random.Random(seed + 1)

    def __len__(self) -> int:
        return len(self.dataset) // self.batch_size

    def __iter__(self) -> Iterator[EvalBatch]:
        order = list(range(len(self.dataset)))
        self.rng.shuffle(order)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield collate([self.dataset[i] for i in idx])
