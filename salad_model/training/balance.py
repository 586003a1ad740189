"""Weighted item sampling for the denoiser: rare actions are drawn more often than their clip count says.

Bandai dataset-2 has 140–360 training clips per action, dataset-1 one to 24, DeepMimic one take per
action. Drawn uniformly, a batch of 64 holds one dataset-1 clip and no DeepMimic clip in most batches, and
those actions are hardly learnt. Each item's probability is ``n_g ** -power`` for its group ``g`` (source
dataset, content) of ``n_g`` items, so a group's share of the batches grows as ``n_g ** (1 - power)``:
``power`` 0 is uniform over items, 1 gives every action the same share, 0.5 is in between.

Batches stay length-bucketed (padding is what the CPU pays for): an anchor item is drawn with these
weights, then the batch is drawn with the same weights from the ``pool`` items of the most similar length
around it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np


def group_key(item: dict) -> tuple:
    """Groups: (source dataset, content label); a mirrored copy belongs to its original's group."""
    return (item.get("dataset", ""), item["content"])


def item_weights(items: Sequence[dict], power: float, key: Callable[[dict], tuple] = group_key) -> np.ndarray:
    """Probability per item (sums to 1): ``n_g ** -power`` for an item of a group with ``n_g`` items."""
    if not items:
        raise ValueError("no items to weigh")
    if power < 0:
        raise ValueError(f"power must be >= 0, got {power}")
    keys = [key(it) for it in items]
    counts = Counter(keys)
    w = np.array([counts[k] ** -power for k in keys], dtype=np.float64)
    return w / w.sum()


def with_dataset_shares(items: Sequence[dict], weights: np.ndarray, shares: dict[str, float]) -> np.ndarray:
    """Rescale ``weights`` so each named source dataset gets exactly its share of the draws.

    Why: ``power`` alone also lifts every small action of a big dataset (Bandai dataset-1 rose from 5% to 20%
    of the draws at power 0.5) and the fine-tune forgot dataset-2 contents; fixed shares per dataset keep the
    rare-action lift inside a dataset while the datasets' mix stays chosen. Datasets not named share the rest
    in proportion to their weight under ``weights``.
    """
    w = np.asarray(weights, dtype=np.float64).copy()
    names = np.array([str(it.get("dataset", "")) for it in items])
    unknown = sorted(set(shares) - set(names.tolist()))
    if unknown:
        raise ValueError(f"dataset_shares names datasets with no items: {', '.join(unknown)}")
    if any(v <= 0 for v in shares.values()) or sum(shares.values()) >= 1:
        raise ValueError(f"dataset_shares must be positive and sum to less than 1, got {shares}")
    rest = ~np.isin(names, list(shares))
    if not rest.any():
        raise ValueError("dataset_shares leaves no dataset for the remaining share")
    for name, share in shares.items():
        m = names == name
        w[m] *= share / w[m].sum()
    w[rest] *= (1.0 - sum(shares.values())) / w[rest].sum()
    return w / w.sum()


def with_group_boost(items: Sequence[dict], weights: np.ndarray, boost: dict[str, float]) -> np.ndarray:
    """Multiply the weight of each group named ``"dataset:content"`` by its factor (then renormalise).

    Why: inside DeepMimic every action is one take, so power and shares give crawl, roll and spin the same
    draws as walk or jog, yet those three were never generated at any checkpoint of the fine-tune; a boost
    gives chosen actions more of their dataset's share (apply before ``with_dataset_shares``, which keeps
    the dataset's total).
    """
    w = np.asarray(weights, dtype=np.float64).copy()
    keys = [":".join(map(str, group_key(it))) for it in items]
    unknown = sorted(set(boost) - set(keys))
    if unknown:
        raise ValueError(f"group_boost names groups with no items: {', '.join(unknown)}")
    if any(not v > 0 for v in boost.values()):
        raise ValueError(f"group_boost factors must be positive, got {boost}")
    for k, key in enumerate(keys):
        w[k] *= boost.get(key, 1.0)
    return w / w.sum()


def group_shares(items: Sequence[dict], weights: np.ndarray, key: Callable[[dict], tuple] = group_key
                 ) -> dict[tuple, float]:
    """Expected fraction of draws per group under ``weights``."""
    out: dict[tuple, float] = {}
    for it, w in zip(items, weights, strict=True):
        out[key(it)] = out.get(key(it), 0.0) + float(w)
    return out


class LengthBatches:
    """Weighted, length-bucketed batches of item indices (see the module docstring)."""

    def __init__(self, lengths: Sequence[int], weights: np.ndarray, pool: int):
        if len(lengths) != len(weights):
            raise ValueError("one weight per item")
        self.order = sorted(range(len(lengths)), key=lambda k: lengths[k])
        self.rank = {k: r for r, k in enumerate(self.order)}
        self.weights = np.asarray(weights, dtype=np.float64)
        self.pool = max(1, min(int(pool), len(self.order)))
        self._cum = np.cumsum(self.weights).tolist()

    def draw(self, batch: int, rng: random.Random) -> list[int]:
        anchor = rng.choices(range(len(self.weights)), cum_weights=self._cum, k=1)[0]
        lo = min(max(0, self.rank[anchor] - self.pool // 2), len(self.order) - self.pool)
        window = self.order[lo:lo + self.pool]
        return rng.choices(window, weights=[self.weights[k] for k in window], k=batch)


def draw_weights(items: Sequence[dict], train_cfg: dict) -> np.ndarray | None:
    """The denoiser's draw probability per item from its training config, or None for length-bucketed
    uniform draws: ``balance_power`` lifts rare actions, ``group_boost`` lifts chosen ones, then ``dataset_shares``
    fixes the datasets' mix."""
    if train_cfg.get("balance_power", 0.0) <= 0:
        if train_cfg.get("dataset_shares") or train_cfg.get("group_boost"):
            raise ValueError("dataset_shares and group_boost need balance_power > 0 "
                             "(they rescale the balanced weights)")
        return None
    w = item_weights(items, train_cfg["balance_power"])
    if train_cfg.get("group_boost"):
        w = with_group_boost(items, w, train_cfg["group_boost"])
    if train_cfg.get("dataset_shares"):
        w = with_dataset_shares(items, w, train_cfg["dataset_shares"])
    return w
