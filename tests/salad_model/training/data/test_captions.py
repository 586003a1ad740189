"""Captions from Bandai and DeepMimic labels: coverage, determinism, correct hands, held-out wording and
sentence shapes, the plain prompts of the new actions, left/right swap."""

from __future__ import annotations

import random
import re

import pytest

from salad_model.training.data import captions as C

# Label lists of the dataset (content_label-{1,2}.txt / style_label-{1,2}.txt, without the prefix).
CONTENTS_1 = ["walk", "run", "dash", "walk-back", "walk-left", "walk-right", "bow", "bye", "guide", "byebye",
              "respond", "call", "punch", "kick", "slash", "dance-long", "dance-short"]
CONTENTS_2 = ["walk", "walk-turn-left", "walk-turn-right", "run", "wave-both-hands", "wave-left-hand",
              "wave-right-hand", "raise-up-both-hands", "raise-up-left-hand", "raise-up-right-hand"]
STYLES_1 = ["normal", "happy", "sad", "angry", "proud", "not-confident", "masculinity", "feminine",
            "childish", "old", "tired", "active", "musical", "giant", "chimpira"]
STYLES_2 = ["active", "elderly", "exhausted", "feminine", "masculine", "normal", "youthful"]
# DeepMimic actions (training/data/deepmimic.py), style "normal"
CONTENTS_DM = ["jump", "backflip", "sideflip", "cartwheel", "roll", "crawl", "jog", "dance", "dance-spin", "spin",
               "spin-kick", "getup-facedown", "getup-faceup", "sneak", "zombie-walk", "walk", "run", "kick", "punch"]
SIDED = [c for c in CONTENTS_1 + CONTENTS_2 if "left" in c or "right" in c]
NO_HAND = ["bow", "bye", "byebye", "guide", "respond", "call", "punch", "kick", "slash", "dance-long",
           "dance-short", "walk", "run", "dash", "walk-back"]
WORD = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def test_every_label_has_captions():
    from salad_model.training.data.deepmimic import CLIP_LABELS

    assert {c for c, _ in CLIP_LABELS.values()} == set(CONTENTS_DM)
    for content in CONTENTS_1 + CONTENTS_2 + CONTENTS_DM:
        for style in STYLES_1 + STYLES_2:
            caps = C.make_captions(content, style, 6, seed=1)
            assert len(caps) == 6 and len(set(caps)) == 6, (content, style)
            held = C.make_captions(content, style, 3, seed=1, heldout=True)
            assert len(held) == 3
            for seed in range(2, 5):
                caps += C.make_captions(content, style, 4, seed)
                caps += C.make_captions(content, style, 2, seed, heldout=True)
            for c in caps + held:
                assert c[0].isupper() and c.endswith(".")
                assert "  " not in c and " ," not in c and ",," not in c and ",." not in c


def test_deterministic_given_seed():
    a = C.make_captions("wave-left-hand", "elderly", 8, seed=42)
    assert a == C.make_captions("wave-left-hand", "elderly", 8, seed=42)
    assert a != C.make_captions("wave-left-hand", "elderly", 8, seed=43)
    assert C.clip_seed("dataset-2_walk_active_001") == C.clip_seed("dataset-2_walk_active_001")


def test_sided_contents_name_the_correct_hand():
    for content in SIDED:
        side = "left" if "left" in content else "right"
        other = "right" if side == "left" else "left"
        for seed in range(20):
            caps = C.make_captions(content, "normal", 5, seed)
            caps += C.make_captions(content, "sad", 3, seed, heldout=True)
            for cap in caps:
                words = {w.lower() for w in WORD.findall(cap)}
                assert words == {side}, (content, cap)
                assert other not in cap.lower()


def test_unsided_contents_never_name_a_side():
    for content in NO_HAND + CONTENTS_DM + ["wave-both-hands", "raise-up-both-hands"]:
        for seed in range(20):
            caps = C.make_captions(content, "happy", 5, seed) + C.make_captions(content, "old", 3, seed, True)
            for cap in caps:
                assert not WORD.search(cap), (content, cap)


def test_style_words_reach_the_caption():
    caps = " ".join(C.make_captions("walk", "elderly", 10, seed=0)).lower()
    assert any(w in caps for w in ("elderly", "old"))
    caps = " ".join(C.make_captions("run", "chimpira", 10, seed=0)).lower()
    assert any(w in caps for w in ("thug", "punk", "delinquent", "gangster"))


def _heldout_phrases() -> list[str]:
    out = [v for _, (_, held) in C._PLAIN_CONTENT.items() for v, _ in held]
    for _, (_, held) in C._SIDED_CONTENT.items():
        out += [v.format(side=s) for v, _ in held for s in ("left", "right")]
    for sw in C.STYLES.values():
        out += list(sw.heldout_subjects) + list(sw.heldout_manners)
    out += list(C.PLAIN_SUBJECTS_HELDOUT)
    return [p.lower() for p in out]


def test_training_captions_never_use_heldout_wording():
    held = _heldout_phrases()
    rng = random.Random(0)
    for _ in range(3000):
        content = rng.choice(CONTENTS_1 + CONTENTS_2 + CONTENTS_DM)
        style = rng.choice(STYLES_1 + STYLES_2)
        cap = C.make_caption(content, style, rng).lower()
        assert not any(h in cap for h in held), cap
        assert not C.uses_heldout_template(cap), cap


def test_heldout_captions_always_contain_something_new():
    held = _heldout_phrases()
    rng = random.Random(1)
    for _ in range(2000):
        content = rng.choice(CONTENTS_2 + CONTENTS_DM)
        cap = C.make_caption(content, rng.choice(STYLES_2), rng, heldout=True).lower()
        assert C.uses_heldout_template(cap) or any(h in cap for h in held), cap


def test_heldout_set_has_every_kind_of_paraphrase():
    """Held-out captions of one label include new sentence shapes, new verbs with train shapes, new subjects."""
    held_verbs = [v.lower() for v, _ in C._PLAIN_CONTENT["walk"][1]]
    caps = [c.lower() for c in C.make_captions("walk", "normal", 60, seed=3, heldout=True)]
    shapes = {m for c in caps for m in C.HELDOUT_MARKERS if c.startswith(m) or f" {m}" in c}
    assert len(shapes) >= 4
    assert any(not C.uses_heldout_template(c) and any(v in c for v in held_verbs) for c in caps)
    assert any(s in c for c in caps for s in C.PLAIN_SUBJECTS_HELDOUT)
    assert len(held_verbs) >= 2  # more than one held-out paraphrase of the commonest action


def test_plain_prompts_of_the_new_actions_are_training_captions():
    """The issue's prompts are exactly what the generator makes for the DeepMimic labels (seen in training)."""
    wanted = {"jump": "A person jumps.", "cartwheel": "Someone does a cartwheel.", "crawl": "A person crawls forward.",
              "backflip": "A person does a backflip.", "roll": "A person rolls forward."}
    for content, sentence in wanted.items():
        rng = random.Random(0)
        seen = {C.make_caption(content, "normal", rng) for _ in range(4000)}
        assert sentence in seen, content


def test_training_wording_is_broader_than_before():
    """More train sentence shapes and subjects than the first generator (7 templates, 6 plain subjects)."""
    assert len(C.TRAIN_TEMPLATES) >= 12 and len(C.PLAIN_SUBJECTS) >= 10
    rng = random.Random(5)
    caps = {C.make_caption("jump", "normal", rng) for _ in range(3000)}
    assert len(caps) > 300


def test_train_and_heldout_style_words_are_disjoint():
    for name, sw in C.STYLES.items():
        assert len(sw.subjects) >= 3 and len(sw.manners) >= 3, name
        assert not set(sw.subjects) & set(sw.heldout_subjects)
        assert not set(sw.manners) & set(sw.heldout_manners)


@pytest.mark.parametrize(("text", "expected"), [
    ("a person waves with the left hand", "a person waves with the right hand"),
    ("Left hand up, then the right one", "Right hand up, then the left one"),
    ("raises the LEFT arm", "raises the RIGHT arm"),
    ("a left-hand wave", "a right-hand wave"),
    ("walks leftward and turns rightwards", "walks rightward and turns leftwards"),
    ("stands upright in bright light", "stands upright in bright light"),
    ("wave-left-hand", "wave-right-hand"),
])
def test_swap_left_right(text, expected):
    assert C.swap_left_right(text) == expected
    assert C.swap_left_right(expected) == text


def test_swap_matches_mirrored_label_with_same_seed():
    for content in SIDED:
        mirrored = C.mirror_content(content)
        assert mirrored != content and C.mirror_content(mirrored) == content
        for seed in range(10):
            for held in (False, True):
                a = C.make_captions(content, "youthful", 4, seed, held)
                b = C.make_captions(mirrored, "youthful", 4, seed, held)
                assert [C.swap_left_right(x) for x in a] == b
