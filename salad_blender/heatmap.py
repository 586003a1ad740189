"""Cross-attention heat map as an RGBA pixel buffer (numpy only; Blender image helper imports bpy lazily).

The worker's ``attention`` request returns one map per prompt *token* ([L, 7 body parts, T' latent
frames], sub-word pieces and special tokens included). People think in words, so tokens are grouped
into the prompt's words (pieces summed: their attention adds up), one panel per word stacked top to
bottom: 7 rows (root, legs, torso, arms, head) over time, left to right. Words are labelled in the
image itself with a tiny pixel font, so the image explains itself in Blender's Image Editor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

IMAGE_NAME = "SALAD attention"
WORD_RE = re.compile(r"[\w]+(?:['\u2019-][\w]+)*")
SPECIAL_RE = re.compile(r"^(\[[A-Z]+\]|<\|[a-z]+\|>|<[a-z/]+>)$")
PART_LABELS = ("root", "l leg", "r leg", "torso", "l arm", "r arm", "head")

# Anchor colours of a perceptually ordered dark-blue -> teal -> green -> yellow ramp (viridis-like).
_RAMP = np.array([
    (0.267, 0.005, 0.329), (0.283, 0.141, 0.458), (0.254, 0.265, 0.530), (0.207, 0.372, 0.553),
    (0.164, 0.471, 0.558), (0.128, 0.567, 0.551), (0.135, 0.659, 0.518), (0.267, 0.749, 0.441),
    (0.478, 0.821, 0.318), (0.741, 0.873, 0.150), (0.993, 0.906, 0.144),
])

# 3x5 pixel font, rows top to bottom; letters drawn as capitals for legibility at this size.
_GLYPHS: dict[str, tuple[str, ...]] = {
    "a": (".#.", "#.#", "###", "#.#", "#.#"), "b": ("##.", "#.#", "##.", "#.#", "##."),
    "c": (".##", "#..", "#..", "#..", ".##"), "d": ("##.", "#.#", "#.#", "#.#", "##."),
    "e": ("###", "#..", "##.", "#..", "###"), "f": ("###", "#..", "##.", "#..", "#.."),
    "g": (".##", "#..", "#.#", "#.#", ".##"), "h": ("#.#", "#.#", "###", "#.#", "#.#"),
    "i": ("###", ".#.", ".#.", ".#.", "###"), "j": ("..#", "..#", "..#", "#.#", ".#."),
    "k": ("#.#", "#.#", "##.", "#.#", "#.#"), "l": ("#..", "#..", "#..", "#..", "###"),
    "m": ("#.#", "###", "###", "#.#", "#.#"), "n": ("##.", "#.#", "#.#", "#.#", "#.#"),
    "o": (".#.", "#.#", "#.#", "#.#", ".#."), "p": ("##.", "#.#", "##.", "#..", "#.."),
    "q": (".#.", "#.#", "#.#", "##.", ".##"), "r": ("##.", "#.#", "##.", "#.#", "#.#"),
    "s": (".##", "#..", ".#.", "..#", "##."), "t": ("###", ".#.", ".#.", ".#.", ".#."),
    "u": ("#.#", "#.#", "#.#", "#.#", "###"), "v": ("#.#", "#.#", "#.#", "#.#", ".#."),
    "w": ("#.#", "#.#", "###", "###", "#.#"), "x": ("#.#", "#.#", ".#.", "#.#", "#.#"),
    "y": ("#.#", "#.#", ".#.", ".#.", ".#."), "z": ("###", "..#", ".#.", "#..", "###"),
    "0": ("###", "#.#", "#.#", "#.#", "###"), "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("##.", "..#", ".#.", "#..", "###"), "3": ("##.", "..#", ".#.", "..#", "##."),
    "4": ("#.#", "#.#", "###", "..#", "..#"), "5": ("###", "#..", "##.", "..#", "##."),
    "6": (".##", "#..", "###", "#.#", "###"), "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"), "9": ("###", "#.#", "###", "..#", "##."),
    "-": ("...", "...", "###", "...", "..."), "'": (".#.", ".#.", "...", "...", "..."),
    ".": ("...", "...", "...", "...", ".#."), ",": ("...", "...", "...", ".#.", "#.."),
    "?": ("##.", "..#", ".#.", "...", ".#."), "!": (".#.", ".#.", ".#.", "...", ".#."),
    " ": ("...", "...", "...", "...", "..."),
}
_UNKNOWN = ("###", "#.#", "#.#", "#.#", "###")
_FONT: dict[str, np.ndarray] = {}


def _glyph(ch: str) -> np.ndarray:
    g = _FONT.get(ch)
    if g is None:
        rows = _GLYPHS.get(ch.lower(), _UNKNOWN)
        g = _FONT[ch] = np.array([[c == "#" for c in row] for row in rows], dtype=bool)
    return g


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """Boolean pixels [5*scale, 4*len*scale] of ``text`` in the 3x5 font (1 px spacing), top row first."""
    if not text:
        return np.zeros((5 * scale, 0), dtype=bool)
    cols = [np.pad(_glyph(c), ((0, 0), (0, 1))) for c in text]
    mask = np.concatenate(cols, axis=1)[:, :-1]
    return np.kron(mask, np.ones((scale, scale), dtype=bool)).astype(bool)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (clipped) -> RGB [..., 3] on the ramp above (linear interpolation)."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0.0, 1.0) * (len(_RAMP) - 1)
    lo = np.floor(v).astype(int).clip(0, len(_RAMP) - 2)
    t = (v - lo)[..., None]
    return _RAMP[lo] * (1.0 - t) + _RAMP[lo + 1] * t


def split_words(prompt: str) -> list[str]:
    """The words of a prompt as a user reads them (punctuation dropped, hyphen/apostrophe words kept)."""
    return WORD_RE.findall(prompt or "")


def word_groups(prompt: str, tokens: Sequence[str]) -> list[tuple[str, list[int]]]:
    """[(word, token indices)] in prompt order; special and punctuation tokens belong to no word.

    The worker's tokens are surface pieces of the prompt (special tokens by name), so each piece is
    found in the prompt left to right (case-insensitively, ignoring BERT's "##" and CLIP's "</w>")
    and assigned to the word whose character span it overlaps.
    """
    spans = [(m.group(0), m.start(), m.end()) for m in WORD_RE.finditer(prompt or "")]
    groups: list[tuple[str, list[int]]] = [(w, []) for w, _, _ in spans]
    low = (prompt or "").lower()
    cursor = 0
    for i, tok in enumerate(tokens):
        if SPECIAL_RE.match(tok):
            continue
        piece = tok.replace("</w>", "").removeprefix("##").strip().lower()
        if not piece:
            continue
        at = low.find(piece, cursor)
        if at < 0:
            continue
        end = at + len(piece)
        cursor = end
        for k, (_, s, e) in enumerate(spans):
            if at < e and end > s:
                groups[k][1].append(i)
                break
    return [(w, idx) for w, idx in groups if idx]


def word_maps(maps: np.ndarray, groups: Sequence[tuple[str, Sequence[int]]]) -> np.ndarray:
    """Per-word maps [W, 7, T'] = sum of the word's token maps."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"attention maps must be [tokens, parts, frames], got shape {list(maps.shape)}")
    if not groups:
        return np.zeros((0, *maps.shape[1:]))
    return np.stack([maps[list(idx)].sum(axis=0) for _, idx in groups])


def render(maps: np.ndarray, labels: Sequence[str], *, parts: Sequence[str] = PART_LABELS,
           width: int = 480, row_px: int = 8, gap: int = 6, normalize: str = "global") -> np.ndarray:
    """Stacked per-word panels as RGBA float32 [H, W', 4], row 0 at the *top* (image convention).

    ``maps`` [W, P, T']; ``normalize``: "global" (one scale for all words, so words compare) or
    "word" (each panel stretched to its own range, to see where a weak word looks).
    """
    maps = np.asarray(maps, dtype=np.float64)
    n_words, n_parts, n_t = maps.shape if maps.ndim == 3 else (0, len(parts), 1)
    if n_words == 0:
        raise ValueError("no words to draw (the prompt has no word tokens)")
    cell_w = max(2, int(np.ceil(width / max(n_t, 1))))
    label_w = max(len(s) for s in labels) * 8 + 6  # scale-2 font: 8 px per character
    part_w = max(len(p) for p in parts) * 4 + 4
    left = label_w + part_w
    panel_h = n_parts * row_px
    h = n_words * panel_h + (n_words - 1) * gap + 2 * gap
    w = left + n_t * cell_w + gap
    img = np.zeros((h, w, 4), dtype=np.float32)
    img[..., :3] = 0.08
    img[..., 3] = 1.0
    if normalize == "word":
        lo = maps.min(axis=(1, 2), keepdims=True)
        hi = maps.max(axis=(1, 2), keepdims=True)
    else:
        lo = np.full((n_words, 1, 1), maps.min())
        hi = np.full((n_words, 1, 1), maps.max())
    norm = (maps - lo) / np.maximum(hi - lo, 1e-12)
    for k in range(n_words):
        top = gap + k * (panel_h + gap)
        cells = colormap(norm[k])  # [P, T', 3]
        block = np.repeat(np.repeat(cells, row_px, axis=0), cell_w, axis=1)
        img[top:top + panel_h, left:left + n_t * cell_w, :3] = block
        lab = text_mask(labels[k], 2)
        ly = top + max(0, (panel_h - lab.shape[0]) // 2)
        _stamp(img, lab, ly, 2, (1.0, 1.0, 1.0))
        for p, name in enumerate(parts):
            pm = text_mask(name, 1)
            _stamp(img, pm, top + p * row_px + max(0, (row_px - 5) // 2), label_w, (0.65, 0.65, 0.65))
    return img


def _stamp(img: np.ndarray, mask: np.ndarray, y: int, x: int, rgb: tuple[float, float, float]) -> None:
    h = min(mask.shape[0], img.shape[0] - y)
    w = min(mask.shape[1], img.shape[1] - x)
    if h <= 0 or w <= 0:
        return
    region = img[y:y + h, x:x + w, :3]
    region[mask[:h, :w]] = rgb


def heatmap_pixels(prompt: str, tokens: Sequence[str], maps: np.ndarray, *, normalize: str = "global",
                   parts: Sequence[str] = PART_LABELS) -> tuple[np.ndarray, list[str]]:
    """Worker attention result -> (RGBA [H, W, 4] top row first, the words drawn, in order)."""
    groups = word_groups(prompt, tokens)
    if not groups:  # nothing aligned (unexpected tokenizer): one panel per non-special token
        groups = [(t, [i]) for i, t in enumerate(tokens) if not SPECIAL_RE.match(t)]
    labels = [w for w, _ in groups]
    return render(word_maps(maps, groups), labels, parts=parts, normalize=normalize), labels


def to_blender_image(rgba: np.ndarray, name: str = IMAGE_NAME):  # noqa: ANN201 - bpy type
    """Create or update the image datablock ``name`` with these pixels (Blender stores bottom row first)."""
    import bpy

    h, w = rgba.shape[:2]
    img = bpy.data.images.get(name)
    created = img is None
    if created:
        img = bpy.data.images.new(name, width=w, height=h, alpha=True)
    try:
        if tuple(img.size) != (w, h):
            img.scale(w, h)
        img.pixels.foreach_set(np.ascontiguousarray(rgba[::-1], dtype=np.float32).ravel())
        img.update()
        try:
            img.pack()  # generated pixels would be lost when the .blend is saved and reopened
        except RuntimeError:
            pass
    except BaseException:
        if created:
            bpy.data.images.remove(img)
        raise
    return img
