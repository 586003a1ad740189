"""Captions from Bandai labels: coverage, determinism, correct hands, held-out wording, left/right swap."""

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
SIDED = [c for c in CONTENTS_1 + CONTENTS_2 if "left" in c or "right" in c]
NO_HAND = ["bow", "bye", "byebye", "guide", "respond", "call", "punch", "kick", "slash", "dance-long",
           "dance-short", "walk", "run", "dash", "walk-back"]
WORD = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def test_every_label_has_captions():
    for content in CONTENTS_1 + CONTENTS_2:
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
    for content in NO_HAND + ["wave-both-hands", "raise-up-both-hands"]:
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
        content = rng.choice(CONTENTS_1 + CONTENTS_2)
        style = rng.choice(STYLES_1 + STYLES_2)
        cap = C.make_caption(content, style, rng).lower()
        assert not any(h in cap for h in held), cap
        assert not cap.startswith(("here,", "we see")) and "can be seen" not in cap


def test_heldout_captions_always_contain_something_new():
    held = _heldout_phrases()
    rng = random.Random(1)
    for _ in range(2000):
        cap = C.make_caption(rng.choice(CONTENTS_2), rng.choice(STYLES_2), rng, heldout=True).lower()
        new_template = cap.startswith(("here,", "we see")) or "can be seen" in cap
        assert new_template or any(h in cap for h in held), cap


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
