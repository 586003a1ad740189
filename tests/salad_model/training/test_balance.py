"""Weighted sampling: group shares follow n_g ** (1 - power), batches stay length-bucketed, and the
training loop draws rare actions as often as the weights say."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from salad_model.training.balance import (
    LengthBatches,
    draw_weights,
    group_shares,
    item_weights,
    with_dataset_shares,
    with_group_boost,
)
from salad_model.training.train import load_config


def _items() -> list[dict]:
    # 400 items of a common action, 16 of a mid one, 1 of a rare one (Bandai dataset-2 / dataset-1 / DeepMimic)
    out = [{"dataset": 2, "content": "walk", "len": 20 + i % 30} for i in range(400)]
    out += [{"dataset": 1, "content": "bow", "len": 25 + i} for i in range(16)]
    out += [{"dataset": "deepmimic", "content": "jump", "len": 45}]
    return out


def test_group_shares_follow_the_power():
    items = _items()
    uniform = group_shares(items, item_weights(items, 0.0))
    assert uniform[("deepmimic", "jump")] == pytest.approx(1 / 417)
    equal = group_shares(items, item_weights(items, 1.0))
    assert all(v == pytest.approx(1 / 3) for v in equal.values())
    half = group_shares(items, item_weights(items, 0.5))
    assert half[(2, "walk")] / half[("deepmimic", "jump")] == pytest.approx(np.sqrt(400))
    assert half[(1, "bow")] / half[("deepmimic", "jump")] == pytest.approx(4.0)
    assert sum(half.values()) == pytest.approx(1.0)


def test_bad_inputs_are_refused():
    # the messages word for word: a config mistake is reported as it is (re.search would accept any wrapping)
    with pytest.raises(ValueError, match=r"^no items to weigh$"):
        item_weights([], 0.5)
    with pytest.raises(ValueError, match=r"^power must be >= 0, got -1$"):
        item_weights(_items(), -1)
    with pytest.raises(ValueError, match=r"^one weight per item$"):
        LengthBatches([1, 2], np.array([1.0]), 4)
    with pytest.raises(ValueError, match="zip"):  # one weight per item here too
        group_shares(_items(), item_weights(_items(), 0.5)[:-1])


def test_length_batches_draw_groups_at_their_weighted_share_from_similar_lengths():
    items = _items()
    w = item_weights(items, 0.5)
    batches = LengthBatches([it["len"] for it in items], w, pool=64)
    rng = random.Random(0)
    counts: Counter = Counter()
    spreads = []
    for _ in range(3000):
        b = batches.draw(32, rng)
        counts.update((items[k]["dataset"], items[k]["content"]) for k in b)
        lens = [items[k]["len"] for k in b]
        spreads.append(max(lens) - min(lens))
    total = sum(counts.values())
    for g, share in group_shares(items, w).items():
        # the length windows bend the shares a little (measured: rare 5.2% for 4.0%, walk within 3%)
        assert counts[g] / total == pytest.approx(share, rel=0.35), g
    # the rare item is drawn about sqrt(400) times less than walk in total, not 400 times
    assert counts[("deepmimic", "jump")] > 0.03 * total
    assert np.median(spreads) < 30  # the batch comes from a window of similar lengths (all: 0–49)


def test_dataset_shares_fix_the_mix_and_keep_the_lift_inside_a_dataset():
    items = _items() + [{"dataset": "deepmimic", "content": "crawl", "len": 40} for _ in range(4)]
    w = item_weights(items, 0.5)
    fixed = with_dataset_shares(items, w, {"deepmimic": 0.1, "1": 0.05})
    assert fixed.sum() == pytest.approx(1.0)
    by_ds = Counter()
    for it, p in zip(items, fixed, strict=True):
        by_ds[str(it["dataset"])] += p
    assert by_ds["deepmimic"] == pytest.approx(0.1) and by_ds["1"] == pytest.approx(0.05)
    assert by_ds["2"] == pytest.approx(0.85)
    # inside DeepMimic the single-take jump keeps its lift over the 4-take crawl (power 0.5: 2x per item)
    jump, crawl = fixed[416], fixed[417]
    assert jump / crawl == pytest.approx(2.0)


@pytest.mark.parametrize("shares, msg", [
    ({"kit": 0.1}, r"^dataset_shares names datasets with no items: kit$"),
    ({"kit": 0.1, "amass": 0.1, "1": 0.1}, r"^dataset_shares names datasets with no items: amass, kit$"),
    ({"deepmimic": 0.6, "1": 0.5}, "sum to less than 1"),
    ({"deepmimic": 0.5, "1": 0.5}, "sum to less than 1"),  # exactly 1 leaves nothing for dataset 2
    ({"deepmimic": 0.0}, "positive"),
    ({"deepmimic": 0.1, "1": 0.1, "2": 0.1}, r"^dataset_shares leaves no dataset for the remaining share$"),
])
def test_dataset_shares_refuse_a_mix_that_cannot_hold(shares, msg):
    items = _items()
    with pytest.raises(ValueError, match=msg):
        with_dataset_shares(items, item_weights(items, 0.5), shares)


def test_the_fine_tune_config_draws_its_datasets_at_their_shares():
    """The weights train_denoiser draws with come from the config: the DeepMimic fine-tune's shares hold."""
    tc = load_config("demo_deepmimic")["denoiser_train"]
    items = _items() + [{"dataset": "deepmimic", "content": c, "len": 40} for c in ("crawl", "roll", "spin")]
    w = draw_weights(items, tc)
    by_ds = Counter()
    for it, p in zip(items, w, strict=True):
        by_ds[str(it["dataset"])] += p
    for name, share in tc["dataset_shares"].items():
        assert by_ds[name] == pytest.approx(share, abs=1e-12)
    assert draw_weights(items, {**tc, "dataset_shares": {}, "group_boost": {}}) == pytest.approx(
        item_weights(items, tc["balance_power"]))
    for key, factor in tc.get("group_boost", {}).items():  # boosted inside DeepMimic's share, against its jump
        k = next(i for i, it in enumerate(items) if f"{it['dataset']}:{it['content']}" == key)
        assert w[k] / w[416] == pytest.approx(factor)
    assert draw_weights(items, load_config("demo")["denoiser_train"]) is None  # the demo: uniform length buckets
    with pytest.raises(ValueError,
                       match=r"^dataset_shares and group_boost need balance_power > 0 "
                             r"\(they rescale the balanced weights\)$"):
        draw_weights(items, {"balance_power": 0.0, "dataset_shares": {"deepmimic": 0.1}})


def test_group_boost_lifts_named_groups_and_dataset_shares_keep_the_dataset_total():
    items = _items() + [{"dataset": "deepmimic", "content": "crawl", "len": 40} for _ in range(4)]
    w = item_weights(items, 0.5)
    boosted = with_group_boost(items, w, {"deepmimic:crawl": 4.0})
    assert boosted.sum() == pytest.approx(1.0)
    # per item: crawl had half of jump's weight (4 takes vs 1 at power 0.5), now twice
    assert boosted[417] / boosted[416] == pytest.approx(2.0)
    assert boosted[0] / boosted[416] == pytest.approx(w[0] / w[416])  # other groups keep their ratios
    fixed = with_dataset_shares(items, boosted, {"deepmimic": 0.1})
    dm = [k for k, it in enumerate(items) if it["dataset"] == "deepmimic"]
    assert fixed[dm].sum() == pytest.approx(0.1)
    assert fixed[417:].sum() / fixed[dm].sum() == pytest.approx(8 / 9)  # crawl: 4 takes x 2, jump 1
    with pytest.raises(ValueError, match=r"^group_boost names groups with no items: deepmimic:roll$"):
        with_group_boost(items, w, {"deepmimic:roll": 2.0})
    with pytest.raises(ValueError, match=r"^group_boost factors must be positive"):
        with_group_boost(items, w, {"deepmimic:crawl": 0.0})


def test_each_batch_is_one_full_window_of_neighbouring_lengths_and_every_item_can_be_drawn():
    """A window is always ``pool`` items of neighbouring lengths, also at the shortest and longest ends, so
    every item is reachable; ``pool`` 1 gives batches of the anchor alone."""
    lengths = [(37 * k) % 100 for k in range(100)]  # 0..99, shuffled
    batches = LengthBatches(lengths, np.full(100, 0.01), pool=8)
    rng = random.Random(1)
    drawn = set()
    for _ in range(300):
        b = batches.draw(400, rng)
        ls = sorted({lengths[k] for k in b})
        assert len(ls) == 8 and ls[-1] - ls[0] == 7, ls  # 8 neighbours (missing one in 400 draws: p < 1e-21)
        drawn.update(b)
    assert drawn == set(range(100))
    single = LengthBatches(lengths, np.full(100, 0.01), pool=1)
    assert all(len(set(single.draw(16, rng))) == 1 for _ in range(50))


def test_the_anchor_is_drawn_with_the_weights():
    """Ten short items hold 90% of the weight, ninety long ones 10%: 90% of the batches are short ones."""
    lengths = list(range(10)) + list(range(100, 190))
    w = np.array([0.09] * 10 + [0.1 / 90] * 90)
    batches = LengthBatches(lengths, w, pool=10)
    rng = random.Random(2)
    short = sum(all(k < 10 for k in batches.draw(4, rng)) for _ in range(2000))
    assert short / 2000 == pytest.approx(0.9, abs=0.03)  # uniform anchors would give 0.1
