"""Natural-language captions from Bandai-Namco content and style labels.

The dataset only has categorical labels, so captions are generated: several sentence templates,
several verb phrases per content and several subject / manner phrases per style. One part of every
list (templates, verb phrases, subjects, manners) is held out: training captions never use it, so
evaluation can ask whether the model generalises to unseen wording.

Hands: contents that name a hand (wave-left-hand, raise-up-right-hand, …) always name the correct
one; dataset-1 gestures whose hand is not labelled (bye, call, guide, …) never name a hand. Left and
right phrases are generated from one side-neutral pattern, so ``swap_left_right`` of a caption is
exactly the caption of the mirrored label with the same seed (tested).
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass

# --- contents -----------------------------------------------------------------------------------
# Each phrase is (third-person present, present participle). "{side}" is "left" or "right".

_SIDED_CONTENT: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    # content pattern: (train phrases, held-out phrases)
    "walk-turn-{side}": (
        [("walks and turns {side}", "walking and turning {side}"),
         ("walks forward and turns to the {side}", "walking forward and turning to the {side}"),
         ("makes a {side} turn while walking", "making a {side} turn while walking"),
         ("walks, then turns {side}", "walking, then turning {side}")],
        [("walks in a curve to the {side}", "walking in a curve to the {side}")],
    ),
    "walk-{side}": (
        [("walks to the {side}", "walking to the {side}"),
         ("walks toward the {side}", "walking toward the {side}"),
         ("walks sideways to the {side}", "walking sideways to the {side}")],
        [("moves to the {side} on foot", "moving to the {side} on foot")],
    ),
    "wave-{side}-hand": (
        [("waves with the {side} hand", "waving with the {side} hand"),
         ("waves the {side} hand", "waving the {side} hand"),
         ("waves hello with the {side} hand", "waving hello with the {side} hand"),
         ("raises the {side} hand and waves", "raising the {side} hand and waving")],
        [("greets someone by waving the {side} hand", "greeting someone by waving the {side} hand")],
    ),
    "raise-up-{side}-hand": (
        [("raises the {side} hand", "raising the {side} hand"),
         ("lifts the {side} arm up", "lifting the {side} arm up"),
         ("puts the {side} hand up", "putting the {side} hand up"),
         ("raises the {side} arm above the head", "raising the {side} arm above the head")],
        [("holds the {side} hand up high", "holding the {side} hand up high")],
    ),
}

_PLAIN_CONTENT: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    "walk": (
        [("walks forward", "walking forward"), ("walks", "walking"),
         ("walks straight ahead", "walking straight ahead"),
         ("takes a few steps forward", "taking a few steps forward"),
         ("walks ahead", "walking ahead"), ("moves forward on foot", "moving forward on foot"),
         ("goes for a walk", "going for a walk")],
        [("strolls forward", "strolling forward"), ("ambles along", "ambling along"),
         ("paces ahead", "pacing ahead")],
    ),
    "run": (
        [("runs forward", "running forward"), ("runs", "running"), ("jogs forward", "jogging forward"),
         ("runs straight ahead", "running straight ahead"), ("runs ahead", "running ahead")],
        [("goes for a run", "going for a run"), ("races along", "racing along")],
    ),
    "dash": (
        [("sprints forward", "sprinting forward"), ("dashes forward", "dashing forward"),
         ("runs very fast", "running very fast")],
        [("rushes ahead at full speed", "rushing ahead at full speed")],
    ),
    "walk-back": (
        [("walks backward", "walking backward"), ("walks backwards", "walking backwards"),
         ("steps back", "stepping back")],
        [("retreats step by step", "retreating step by step")],
    ),
    "bow": (
        [("bows", "bowing"), ("takes a bow", "taking a bow"), ("bows politely", "bowing politely"),
         ("bends forward in a bow", "bending forward in a bow")],
        [("greets someone with a bow", "greeting someone with a bow")],
    ),
    "bye": (
        [("waves goodbye", "waving goodbye"), ("says goodbye with a wave", "saying goodbye with a wave"),
         ("waves farewell", "waving farewell")],
        [("bids farewell with a hand gesture", "bidding farewell with a hand gesture")],
    ),
    "byebye": (
        [("waves bye-bye", "waving bye-bye"), ("waves goodbye eagerly", "waving goodbye eagerly"),
         ("waves to say bye-bye", "waving to say bye-bye")],
        [("keeps waving goodbye", "waving goodbye again and again")],
    ),
    "guide": (
        [("shows someone the way", "showing someone the way"),
         ("gestures to guide someone", "gesturing to guide someone"),
         ("points out the direction to go", "pointing out the direction to go")],
        [("leads someone with a guiding gesture", "leading someone with a guiding gesture")],
    ),
    "respond": (
        [("raises a hand to respond", "raising a hand to respond"),
         ("responds by raising a hand", "responding by raising a hand"),
         ("answers with a raised hand", "answering with a raised hand")],
        [("puts a hand up to answer", "putting a hand up to answer")],
    ),
    "call": (
        [("calls someone over", "calling someone over"), ("beckons someone", "beckoning someone"),
         ("calls out to someone", "calling out to someone")],
        [("signals someone to come closer", "signalling someone to come closer")],
    ),
    "punch": (
        [("throws a punch", "throwing a punch"), ("punches", "punching"),
         ("punches forward", "punching forward"), ("throws a jab", "throwing a jab")],
        [("strikes with a fist", "striking with a fist"), ("hits the air with a fist", "hitting the air with a fist")],
    ),
    "kick": (
        [("kicks", "kicking"), ("throws a kick", "throwing a kick"), ("kicks forward", "kicking forward"),
         ("kicks with one leg", "kicking with one leg")],
        [("strikes with a leg", "striking with a leg"), ("lashes out with a foot", "lashing out with a foot")],
    ),
    "slash": (
        [("slashes with a sword", "slashing with a sword"),
         ("makes a slashing motion", "making a slashing motion"),
         ("swings a sword", "swinging a sword")],
        [("cuts through the air with a blade", "cutting through the air with a blade")],
    ),
    "dance-long": (
        [("dances", "dancing"), ("performs a dance", "performing a dance"),
         ("dances energetically", "dancing")],
        [("moves to music", "moving to music")],
    ),
    "dance-short": (
        [("dances", "dancing"), ("performs a dance", "performing a dance"),
         ("does a dance routine", "doing a dance routine")],
        [("moves to music", "moving to music")],
    ),
    "wave-both-hands": (
        [("waves both hands", "waving both hands"), ("waves with both hands", "waving with both hands"),
         ("raises both hands and waves", "raising both hands and waving")],
        [("greets someone by waving both arms", "greeting someone by waving both arms")],
    ),
    "raise-up-both-hands": (
        [("raises both hands", "raising both hands"), ("lifts both arms up", "lifting both arms up"),
         ("puts both hands up", "putting both hands up"),
         ("raises both arms above the head", "raising both arms above the head")],
        [("holds both hands up high", "holding both hands up high")],
    ),
}


# Actions of the DeepMimic clips (training.data.deepmimic): no sides, one take each.
_PLAIN_CONTENT.update({
    "jump": (
        [("jumps", "jumping"), ("jumps forward", "jumping forward"), ("jumps up", "jumping up"),
         ("leaps forward", "leaping forward"), ("jumps with both feet", "jumping with both feet"),
         ("jumps into the air", "jumping into the air")],
        [("springs into the air", "springing into the air"), ("makes a big leap", "making a big leap")],
    ),
    "backflip": (
        [("does a backflip", "doing a backflip"), ("does a back flip", "doing a back flip"),
         ("flips backward", "flipping backward"), ("performs a backflip", "performing a backflip"),
         ("does a backward somersault", "doing a backward somersault")],
        [("somersaults backwards", "somersaulting backwards"),
         ("jumps and turns over backwards", "jumping and turning over backwards")],
    ),
    "sideflip": (
        [("does a side flip", "doing a side flip"), ("does a sideflip", "doing a sideflip"),
         ("flips sideways", "flipping sideways"), ("performs a side flip", "performing a side flip")],
        [("somersaults sideways", "somersaulting sideways"),
         ("jumps and turns over sideways", "jumping and turning over sideways")],
    ),
    "cartwheel": (
        [("does a cartwheel", "doing a cartwheel"), ("performs a cartwheel", "performing a cartwheel"),
         ("turns a cartwheel", "turning a cartwheel"), ("cartwheels", "cartwheeling"),
         ("does a cartwheel to the side", "doing a cartwheel to the side")],
        [("wheels sideways over the hands", "wheeling sideways over the hands")],
    ),
    "roll": (
        [("rolls forward", "rolling forward"), ("does a forward roll", "doing a forward roll"),
         ("rolls on the ground", "rolling on the ground"), ("does a roll", "doing a roll")],
        [("tumbles head over heels", "tumbling head over heels")],
    ),
    "crawl": (
        [("crawls forward", "crawling forward"), ("crawls", "crawling"),
         ("crawls on all fours", "crawling on all fours"), ("crawls along the floor", "crawling along the floor"),
         ("moves forward on hands and knees", "moving forward on hands and knees")],
        [("creeps along the ground", "creeping along the ground")],
    ),
    "jog": (
        [("jogs", "jogging"), ("jogs forward", "jogging forward"), ("runs at an easy pace", "running at an easy pace"),
         ("goes jogging", "going jogging")],
        [("trots along", "trotting along")],
    ),
    "dance": (
        [("dances", "dancing"), ("performs a dance", "performing a dance"),
         ("does a little dance", "doing a little dance"), ("dances in place", "dancing in place")],
        [("moves to music", "moving to music"), ("grooves to a beat", "grooving to a beat")],
    ),
    "dance-spin": (
        [("spins while dancing", "spinning while dancing"), ("does a dance spin", "doing a dance spin"),
         ("dances and turns around", "dancing and turning around")],
        [("pirouettes", "doing a pirouette")],
    ),
    "spin": (
        [("spins around", "spinning around"), ("turns around in place", "turning around in place"),
         ("spins in a circle", "spinning in a circle"), ("turns all the way around", "turning all the way around")],
        [("twirls around", "twirling around")],
    ),
    "spin-kick": (
        [("does a spin kick", "doing a spin kick"), ("does a spinning kick", "doing a spinning kick"),
         ("spins and kicks", "spinning and kicking"), ("kicks while spinning", "kicking while spinning")],
        [("performs a roundhouse kick", "performing a roundhouse kick")],
    ),
    "getup-facedown": (
        [("gets up from lying face down", "getting up from lying face down"),
         ("stands up from lying on the stomach", "standing up from lying on the stomach"),
         ("gets up off the floor", "getting up off the floor"),
         ("pushes up from the ground and stands", "pushing up from the ground and standing")],
        [("rises to the feet after lying prone", "rising to the feet after lying prone")],
    ),
    "getup-faceup": (
        [("gets up from lying on the back", "getting up from lying on the back"),
         ("stands up from lying face up", "standing up from lying face up"),
         ("gets up off the floor", "getting up off the floor"),
         ("sits up and stands", "sitting up and standing")],
        [("rises to the feet after lying supine", "rising to the feet after lying supine")],
    ),
    "sneak": (
        [("sneaks forward", "sneaking forward"), ("walks stealthily", "walking stealthily"),
         ("tiptoes forward", "tiptoeing forward"), ("sneaks along quietly", "sneaking along quietly")],
        [("prowls forward without a sound", "prowling forward without a sound")],
    ),
    "zombie-walk": (
        [("walks like a zombie", "walking like a zombie"),
         ("shuffles forward like a zombie", "shuffling forward like a zombie"),
         ("walks with arms stretched out like a zombie", "walking with arms stretched out like a zombie")],
        [("lurches forward like the undead", "lurching forward like the undead")],
    ),
})


def _content_phrases(content: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    if content in _PLAIN_CONTENT:
        return _PLAIN_CONTENT[content]
    for pattern, (train, held) in _SIDED_CONTENT.items():
        for side in ("left", "right"):
            if pattern.format(side=side) == content:
                def fill(ps: list[tuple[str, str]], side: str = side) -> list[tuple[str, str]]:
                    return [(a.format(side=side), b.format(side=side)) for a, b in ps]
                return fill(train), fill(held)
    raise KeyError(f"no caption phrases for content {content!r}")


CONTENTS: tuple[str, ...] = tuple(_PLAIN_CONTENT) + tuple(
    p.format(side=s) for p in _SIDED_CONTENT for s in ("left", "right"))

# --- styles -------------------------------------------------------------------------------------
# subjects: noun phrases that carry the style; manners: adverbial phrases ("" = plain).


@dataclass(frozen=True)
class StyleWords:
    subjects: tuple[str, ...]
    manners: tuple[str, ...]
    heldout_subjects: tuple[str, ...]
    heldout_manners: tuple[str, ...]


_OLD = StyleWords(
    ("an elderly person", "an old person", "an old man", "an old woman"),
    ("like an old person", "slowly, like an elderly person", "in an elderly way",
     "with the stiffness of old age"),
    ("a senior citizen",), ("the way an aged person would",))
_TIRED = StyleWords(
    ("a tired person", "an exhausted person", "a weary person"),
    ("tiredly", "wearily", "in an exhausted way", "with no energy left"),
    ("a worn-out person",), ("as if completely drained",))

STYLES: dict[str, StyleWords] = {
    "normal": StyleWords(
        ("a person", "someone", "a man", "a woman", "somebody", "a guy", "a lady"),
        ("", "normally", "in a neutral way", "casually"),
        ("an individual",), ("in an ordinary way",)),
    "happy": StyleWords(
        ("a happy person", "a cheerful person", "a joyful person"),
        ("happily", "cheerfully", "in a happy mood", "joyfully"),
        ("a delighted person",), ("with obvious delight",)),
    "sad": StyleWords(
        ("a sad person", "an unhappy person", "a gloomy person"),
        ("sadly", "in a sad way", "gloomily", "dejectedly"),
        ("a sorrowful person",), ("with a heavy heart",)),
    "angry": StyleWords(
        ("an angry person", "a furious person", "an annoyed person"),
        ("angrily", "furiously", "in an angry manner", "in a rage"),
        ("an irritated person",), ("with obvious irritation",)),
    "proud": StyleWords(
        ("a proud person", "a confident person", "a self-assured person"),
        ("proudly", "confidently", "with pride", "with chest out"),
        ("a haughty person",), ("in a self-important way",)),
    "not-confident": StyleWords(
        ("a timid person", "an insecure person", "a shy person"),
        ("timidly", "hesitantly", "without confidence", "shyly"),
        ("an unsure person",), ("in an uncertain, nervous way",)),
    "masculinity": StyleWords(
        ("a manly person", "a masculine person", "a macho person"),
        ("in a masculine way", "in a manly style", "with masculine movements", "in a macho manner"),
        ("a tough guy",), ("with a broad, manly posture",)),
    "feminine": StyleWords(
        ("a feminine person", "a graceful woman", "a ladylike person"),
        ("in a feminine way", "in a feminine manner", "gracefully", "in a ladylike way"),
        ("an elegant lady",), ("with delicate, feminine movements",)),
    "childish": StyleWords(
        ("a child", "a kid", "a childish person", "a little kid"),
        ("childishly", "like a child", "in a childlike way", "like a little kid"),
        ("a young child",), ("in a playful, childish way",)),
    "old": _OLD,
    "elderly": _OLD,
    "tired": _TIRED,
    "exhausted": _TIRED,
    "active": StyleWords(
        ("an energetic person", "an active person", "a lively person"),
        ("energetically", "actively", "with lots of energy", "vigorously"),
        ("a spirited person",), ("full of vigour",)),
    "musical": StyleWords(
        ("a musical performer", "a theatrical performer", "a stage actor"),
        ("theatrically", "like in a musical", "in a musical-theatre style", "with theatrical flair"),
        ("a Broadway performer",), ("as if performing on stage",)),
    "giant": StyleWords(
        ("a giant", "a huge person", "a giant creature"),
        ("like a giant", "heavily, like a giant", "with big, heavy movements", "like a lumbering giant"),
        ("an enormous figure",), ("with the heavy gait of a giant",)),
    "chimpira": StyleWords(
        ("a thug", "a street punk", "a delinquent", "a small-time gangster"),
        ("like a thug", "in a thuggish way", "with a punk's swagger", "like a street delinquent"),
        ("a hoodlum",), ("with a menacing swagger",)),
    "masculine": StyleWords(
        ("a manly person", "a masculine person", "a macho person"),
        ("in a masculine way", "in a manly style", "with masculine movements", "in a macho manner"),
        ("a tough guy",), ("with a broad, manly posture",)),
    "youthful": StyleWords(
        ("a young person", "a youthful person", "a teenager"),
        ("youthfully", "in a youthful way", "with youthful energy", "like a young person"),
        ("a young adult",), ("with the bounce of youth",)),
}

# Style-neutral subjects for templates that express the style as a manner.
PLAIN_SUBJECTS = ("a person", "someone", "a man", "a woman", "the person", "a human", "somebody", "a guy",
                  "a lady", "the man", "the woman")
PLAIN_SUBJECTS_HELDOUT = ("an individual", "a character", "a figure")

# --- templates ----------------------------------------------------------------------------------
# {ss}: styled subject, {s}: plain subject, {v}: verb phrase, {vg}: participle, {m}: manner.
TRAIN_TEMPLATES = (
    "{ss} {v}.",
    "{s} {v} {m}.",
    "{M}, {s} {v}.",
    "{s} {v}, {m}.",
    "{ss} is {vg}.",
    "{s} is {vg} {m}.",
    "{ss} {v} {m}.",
    "this is {ss} {vg}.",
    "{ss} {v} for a while.",
    "{ss} starts {vg}.",
    "{s} is {vg}, {m}.",
    "the motion of {ss} {vg}.",
)
# Other sentence shapes, never trained on; each starts with or contains one of HELDOUT_MARKERS.
HELDOUT_TEMPLATES = (
    "{s} can be seen {vg} {m}.",
    "here, {ss} {v}.",
    "we see {ss} {vg}.",
    "there is {ss} {vg}.",
    "in this clip, {ss} {v}.",
    "watch {ss} as they keep {vg}.",
)
HELDOUT_MARKERS = ("can be seen", "here,", "we see", "there is", "in this clip", "watch ")


def uses_heldout_template(caption: str) -> bool:
    """Whether a caption was made from a held-out sentence shape."""
    c = caption.lower()
    return any(c.startswith(m) or f" {m}" in c for m in HELDOUT_MARKERS)


def _needs_manner(template: str) -> bool:
    return "{m}" in template or "{M}" in template


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.])", r"\1", text)
    text = re.sub(r",+\.", ".", text).lstrip(", ")  # an empty manner leaves ", ." or a leading ", "
    return text[0].upper() + text[1:]


def make_caption(content: str, style: str, rng: random.Random, heldout: bool = False) -> str:
    """One caption for a (content, style) label; ``heldout`` draws only from the held-out parts."""
    c_train, c_held = _content_phrases(content)
    sw = STYLES[style]
    if heldout:
        # At least one held-out ingredient: held-out template, or train template + held-out words.
        templates = list(HELDOUT_TEMPLATES) + list(TRAIN_TEMPLATES)
        template = rng.choice(templates)
        use_held_words = template in TRAIN_TEMPLATES or rng.random() < 0.5
        verbs = c_held if use_held_words else c_train + c_held
        subjects = sw.heldout_subjects if use_held_words else sw.subjects + sw.heldout_subjects
        manners = sw.heldout_manners if use_held_words else sw.manners + sw.heldout_manners
        plain = PLAIN_SUBJECTS_HELDOUT if use_held_words else PLAIN_SUBJECTS + PLAIN_SUBJECTS_HELDOUT
    else:
        template = rng.choice(TRAIN_TEMPLATES)
        verbs, subjects, manners, plain = c_train, sw.subjects, sw.manners, PLAIN_SUBJECTS
    v, vg = rng.choice(verbs)
    m = rng.choice([x for x in manners if x]) if _needs_manner(template) else ""
    if style == "normal" and "{ss}" not in template and rng.random() < 0.5:
        m = ""  # plain style: often no manner at all
    text = template.format(ss=rng.choice(subjects), s=rng.choice(plain), v=v, vg=vg, m=m,
                           M=m[:1].upper() + m[1:] if m else "")
    return _sentence(text.lstrip(", "))


def clip_seed(name: str, seed: int = 0) -> int:
    """Stable per-clip seed (crc32 of the clip name, mixed with a global seed)."""
    return zlib.crc32(f"{seed}:{name}".encode())


def make_captions(content: str, style: str, n: int, seed: int, heldout: bool = False) -> list[str]:
    """``n`` distinct-where-possible captions, deterministic given ``seed``."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n * 8):
        c = make_caption(content, style, rng, heldout)
        if c not in out:
            out.append(c)
        if len(out) == n:
            break
    return out


_LR = re.compile(r"\b(left|right)(?=\b|wards?\b)", re.IGNORECASE)


def swap_left_right(caption: str) -> str:
    """Swap the words left ↔ right (any case, also in "left-hand", "leftward") for mirrored motion."""

    def repl(mt: re.Match[str]) -> str:
        w = mt.group(1)
        new = "right" if w.lower() == "left" else "left"
        if w.isupper():
            return new.upper()
        if w[0].isupper():
            return new.capitalize()
        return new

    return _LR.sub(repl, caption)


def mirror_content(content: str) -> str:
    """The content label of the left/right mirrored motion (wave-left-hand ↔ wave-right-hand, …)."""
    return swap_left_right(content)
