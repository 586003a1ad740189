"""Zero-shot editing by attention control (SALAD_SPEC §5), as small controller objects.

The source and the edit are denoised side by side in ONE batched forward per step; rows of the batch:

====================  =====================================================================
``src_u``, ``src_c``  source prompt, unconditional / conditional (skipped on a cache hit)
``edit_u``            edit prompt, unconditional (never touched: control acts on the
                      conditional branch only)
``edit_c``            edit prompt, conditional; its attention probabilities are replaced
``edit_free``         edit prompt, conditional, un-injected: supplies ``edit_CA`` for modes
                      that need it (refine; word swap only while self-attention is injected)
====================  =====================================================================

Inside each attention call the :class:`EditController` takes the source row's probabilities (or the
cached ones), lets the mode build the cross-attention map, and writes it into the ``edit_c`` row. The
network itself knows nothing of this: the controller is installed through
:class:`~salad_model.runtime.attention.ControlledAttnProcessor`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..motion.skeleton import MIRROR_PART_PAIRS
from .attention import FUSED, ControlledAttnProcessor
from .denoiser import Denoiser, TextContext
from .sampling import DiffusionConfig, StepCallback, make_scheduler

if TYPE_CHECKING:
    from .guiders import CFG

NUM_PARTS = 7


# ----------------------------------------------------------------------------------------------
# Cross-attention edit modes: each builds CA* for one layer at one step.
# ``src``/``free``/``own`` are [H, T'·7, L] (queries time-major: index 7·t + part).


class CrossAttentionEdit:
    """Base mode: keep the source cross-attention map (pure injection)."""

    name = "inject"

    def needs_free(self, frac: float, injecting_self: bool) -> bool:
        return False

    def cross(self, src: torch.Tensor, free: torch.Tensor | None, own: torch.Tensor, frac: float
              ) -> torch.Tensor:
        return src

    def self_attention(self, src: torch.Tensor, kind: str) -> torch.Tensor:
        """The source's skeletal / temporal map to inject into the edit (default: unchanged)."""
        return src

    def describe(self) -> dict:
        return {"mode": self.name}


@dataclass
class WordSwap(CrossAttentionEdit):
    """Source map while ``frac < swap_src_proportion``, then the edit prompt's own map (no re-indexing)."""

    swap_src_proportion: float = 0.2
    name = "word_swap"

    def needs_free(self, frac: float, injecting_self: bool) -> bool:
        # Without self-attention injection the edit row with its own map IS the free pass, so no extra row.
        return frac >= self.swap_src_proportion and injecting_self

    def cross(self, src, free, own, frac):
        if frac < self.swap_src_proportion:
            return src
        return free if free is not None else own

    def describe(self) -> dict:
        return {"mode": self.name, "swap_src_proportion": self.swap_src_proportion}


@dataclass
class Refine(CrossAttentionEdit):
    """Prompt refinement: kept words keep their source attention, new words take the edit prompt's own.

    ``reindex=True`` (default, Prompt-to-Prompt and the paper): an edit token's column is the source
    column of the token it is aligned with, so inserting a word ("A person …" → "An elderly person …")
    leaves every later word its own map. ``reindex=False`` is the reference code (SALAD_SPEC §5: the
    re-indexing line is commented out there): the source column at the *same index*, which shifts the
    maps of all words after an insertion; kept for golden parity only.
    """

    mapper: list[int] = field(default_factory=list)  # per edit token: aligned source index or −1
    reindex: bool = True
    name = "refine"

    def __post_init__(self):  # index lists once, not per layer and step
        self.new = [j for j, m in enumerate(self.mapper) if m < 0]
        self.kept = [j for j, m in enumerate(self.mapper) if m >= 0]
        self.kept_src = [self.mapper[j] for j in self.kept]

    def needs_free(self, frac, injecting_self):
        return True

    def cross(self, src, free, own, frac):
        if self.reindex:
            out = torch.zeros_like(src)  # columns past the edit prompt are padding (masked: probability 0)
            out[..., self.kept] = src[..., self.kept_src]
        elif not self.new:
            return src
        else:
            out = src.clone()
        out[..., self.new] = free[..., self.new]
        return out

    def describe(self):
        return {"mode": self.name, "new_tokens": self.new, "reindex": self.reindex}


@dataclass
class Reweight(CrossAttentionEdit):
    """Source map with the target tokens' columns scaled (post-softmax, no renormalisation)."""

    token_indices: list[int] = field(default_factory=list)
    scale: float = 1.0
    name = "reweight"

    def cross(self, src, free, own, frac):
        out = src.clone()
        out[..., self.token_indices] = out[..., self.token_indices] * self.scale
        return out

    def describe(self):
        return {"mode": self.name, "token_indices": self.token_indices, "scale": self.scale}


@dataclass
class Mirror(CrossAttentionEdit):
    """Source map with the rows of left/right latent parts swapped (lower: legs, upper: arms, all).

    ``mirror_self=False`` is the paper (SALAD_SPEC §5): skeletal/temporal maps are injected unchanged.
    With ``mirror_self=True`` they are mirrored too (skeletal: both part axes; temporal: the part axis),
    so the injected body structure agrees with the mirrored cross attention.
    """

    which: str = "all"
    mirror_self: bool = False
    name = "mirror"

    def __post_init__(self):
        if self.which not in MIRROR_PART_PAIRS:
            raise ValueError(f"mirror mode must be one of {sorted(MIRROR_PART_PAIRS)}, got {self.which!r}")
        perm = list(range(NUM_PARTS))
        for a, b in MIRROR_PART_PAIRS[self.which]:
            perm[a], perm[b] = b, a
        self.perm = perm

    def cross(self, src, free, own, frac):
        h, q, k = src.shape
        return src.reshape(h, q // NUM_PARTS, NUM_PARTS, k)[:, :, self.perm].reshape(h, q, k)

    def self_attention(self, src, kind):
        if not self.mirror_self:
            return src
        if kind == "skel":  # [T', H, 7, 7]: query part and key part
            return src[..., self.perm, :][..., self.perm]
        return src[self.perm]  # temporal [7, H, T', T']: one map per part

    def describe(self):
        return {"mode": self.name, "which": self.which, "mirror_self": self.mirror_self}


# ----------------------------------------------------------------------------------------------
# Token alignment for refinement.


def align_tokens(src_ids: list[int], edit_ids: list[int]) -> list[int]:
    """Per edit token, the aligned source position or −1 (global alignment, SALAD_SPEC §5 'refine')."""
    n, m = len(src_ids), len(edit_ids)
    score = [[0] * (m + 1) for _ in range(n + 1)]
    trace = [[""] * (m + 1) for _ in range(n + 1)]
    for j in range(1, m + 1):
        trace[0][j] = "left"
    for i in range(1, n + 1):
        trace[i][0] = "up"
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            left, up = score[i][j - 1], score[i - 1][j]
            diag = score[i - 1][j - 1] + (1 if src_ids[i - 1] == edit_ids[j - 1] else -1)
            best = max(left, up, diag)
            score[i][j] = best
            trace[i][j] = "left" if best == left else "up" if best == up else "diag"
    mapper = [-1] * m
    i, j = n, m
    while i > 0 or j > 0:
        move = trace[i][j]
        if move == "diag":
            mapper[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif move == "left":
            mapper[j - 1] = -1
            j -= 1
        else:
            i -= 1
    return mapper


def choose_mode(src_ids: list[int], edit_ids: list[int]) -> tuple[str, str]:
    """Pick word swap or refinement for a prompt change, and say why (for the UI)."""
    if src_ids == edit_ids:
        return "word_swap", "the prompts are identical: the edit reproduces the source"
    mapper = align_tokens(src_ids, edit_ids)
    kept = sum(1 for m in mapper if m >= 0)
    if len(src_ids) == len(edit_ids):
        changed = sum(1 for a, b in zip(src_ids, edit_ids, strict=True) if a != b)
        return "word_swap", (f"same number of tokens, {changed} replaced: word swap keeps the structure "
                             "and swaps the attention of the changed word(s)")
    added = len(edit_ids) - kept
    return "refine", (f"{added} token(s) added or changed and {kept} kept: refinement keeps the source "
                      "attention for the kept words and adds the new ones")


# ----------------------------------------------------------------------------------------------
# Source maps and the controller.


@dataclass
class SourceMaps:
    """Conditional-pass attention of a source generation, per step; cross maps keep valid columns only."""

    key: tuple
    maps: list[dict[tuple[str, int], torch.Tensor]]
    text_len: int

    def get(self, step: int, kind: str, layer: int, full_len: int) -> torch.Tensor:
        p = self.maps[step][(kind, layer)]
        if kind == "cross" and p.shape[-1] < full_len:
            p = torch.nn.functional.pad(p, (0, full_len - p.shape[-1]))
        return p


class EditController:
    """Replaces the ``edit_c`` row's attention; records or reads the source's maps."""

    def __init__(self, mode: CrossAttentionEdit, rows: dict[str, int], n_rows: int,
                 src_proportion: float = 0.2, inject_temporal: bool = True,
                 source: SourceMaps | None = None, record: SourceMaps | None = None):
        self.mode = mode
        self.rows = rows
        self.n_rows = n_rows
        self.src_proportion = src_proportion
        self.inject_temporal = inject_temporal
        self.source = source
        self.record = record
        self.step = 0
        self.frac = 0.0

    def begin_step(self, i: int, n: int, rows: dict[str, int], n_rows: int) -> None:
        self.step, self.frac, self.rows, self.n_rows = i, i / n, rows, n_rows
        if self.record is not None:
            self.record.maps.append({})

    def injecting_self(self, frac: float) -> bool:
        return frac < self.src_proportion

    def __call__(self, probs: torch.Tensor, kind: str, layer: int) -> torch.Tensor:
        n, h, lq, lk = probs.shape
        grid = probs.view(self.n_rows, n // self.n_rows, h, lq, lk)
        if "src_c" in self.rows:
            src = grid[self.rows["src_c"]]
        else:
            src = self.source.get(self.step, kind, layer, lk)
        if self.record is not None:
            keep = src[..., : self.record.text_len] if kind == "cross" else src
            self.record.maps[-1][(kind, layer)] = keep.clone()
        e = self.rows["edit_c"]
        if kind == "cross":
            free = grid[self.rows["edit_free"]][0] if "edit_free" in self.rows else None
            new = self.mode.cross(src[0], free, grid[e][0], self.frac)[None]
        elif self.injecting_self(self.frac) and (kind == "skel" or self.inject_temporal):
            new = self.mode.self_attention(src, kind)
        else:
            return probs
        out = grid.clone()
        out[e] = new
        return out.view(n, h, lq, lk)


class MapRecorder:
    """Records one conditional row's maps at every step, in :class:`SourceMaps` form, during generation.

    Generating with it makes every later edit of that motion a cache hit (no source rows to recompute).
    """

    def __init__(self, n_rows: int, cond_row: int, record: SourceMaps):
        self.n_rows, self.cond_row, self.record = n_rows, cond_row, record

    def begin_step(self, i: int, n: int) -> None:
        self.record.maps.append({})

    def __call__(self, probs: torch.Tensor, kind: str, layer: int) -> torch.Tensor:
        grid = probs.view(self.n_rows, probs.shape[0] // self.n_rows, *probs.shape[1:])
        src = grid[self.cond_row]
        self.record.maps[-1][(kind, layer)] = (src[..., : self.record.text_len] if kind == "cross" else src).clone()
        return probs


@dataclass
class EditResult:
    z_source: torch.Tensor | None
    z_edit: torch.Tensor
    recorded: SourceMaps | None


def _guided(v: torch.Tensor, rows: dict[str, int], u: str, c: str, guidance: float, guider: CFG | None = None,
            z: torch.Tensor | None = None, alpha_bar: torch.Tensor | None = None, i: int = 0, n: int = 1
            ) -> torch.Tensor:
    vc = v[rows[c]:rows[c] + 1]
    if u not in rows:  # guidance has ended (guided_steps): the conditional prediction alone
        return vc
    vu = v[rows[u]:rows[u] + 1]
    if guider is not None:  # the model's guider (:mod:`guiders`), as the generation the user saw had it
        return guider(vu, vc, z, alpha_bar, i, n, None)
    return vu + guidance * (vc - vu)


@torch.no_grad()
def sample_edit(denoiser: Denoiser, z_T: torch.Tensor, src: TextContext, edit: TextContext,
                null: TextContext | list[TextContext], mode: CrossAttentionEdit, guidance: float = 7.5, steps: int = 50,
                scheduler: str = "ddim", src_proportion: float = 0.2, inject_temporal: bool = True,
                source_maps: SourceMaps | None = None, record_key: tuple | None = None,
                callback: StepCallback | None = None, diffusion: DiffusionConfig | None = None,
                guided_steps: int | None = None, edit_guided_steps: int | None = None,
                guider: CFG | None = None) -> EditResult:
    """Edit the generation of ``src`` (from noise ``z_T`` [1, T', 7, C]) towards ``edit``.

    With ``source_maps`` (from an earlier edit of the same source) the source rows are skipped; with
    ``record_key`` the source's maps are recorded for such reuse. ``null`` may be one context per step
    (null-text inversion of real motion). ``guided_steps``: the source's guidance on the first that many steps
    only (fast mode: the source is the fast generation the user saw, as :func:`sampling.sample` makes it);
    its unconditional row is left out after them. ``edit_guided_steps`` does the same for the edit rows; None
    (default) guides the edit on every step, whatever the source had: an edit sampled without guidance on the
    last steps drifts from its prompt's content (fast mode, 45% against 85% of "raises both hands" kept —
    docs/MODEL_CARD.md, "Edits in fast mode"), and a guided edit row costs one extra row, not a step.
    ``guider`` (:mod:`guiders`) combines both pairs of rows as :func:`sampling.sample` does with it (one copy
    each, so a stateful guider keeps one state per trajectory); None: plain CFG at ``guidance``.
    """
    cache_hit = source_maps is not None
    record = None
    if record_key is not None and not cache_hit:
        text_len = int((src.mask[0, 0, 0] == 0).sum()) if src.mask is not None else src.memory.shape[1]
        record = SourceMaps(record_key, [], text_len)
    s_src, s_edit = make_scheduler(scheduler, diffusion), make_scheduler(scheduler, diffusion)
    s_src.set_timesteps(steps)
    s_edit.set_timesteps(steps)
    ctrl = EditController(mode, {}, 0, src_proportion, inject_temporal, source_maps, record)
    denoiser.set_attn_processor(ControlledAttnProcessor(ctrl))
    z_src = None if cache_hit else z_T.clone()
    z_edit = z_T.clone()
    n = len(s_edit.timesteps)
    g_src, g_edit = (None, None) if guider is None else (copy.copy(guider), copy.copy(guider))
    for g in (g_src, g_edit):
        if g is not None:
            g.start()
    try:
        for i, t in enumerate(s_edit.timesteps):
            frac = i / n
            step_guided = guider is None or guider.guided(i, n)
            src_guided = (guided_steps is None or i < guided_steps) and step_guided
            edit_guided = (edit_guided_steps is None or i < edit_guided_steps) and step_guided
            roles = [] if cache_hit else (["src_u", "src_c"] if src_guided else ["src_c"])
            roles += ["edit_u", "edit_c"] if edit_guided else ["edit_c"]
            if mode.needs_free(frac, ctrl.injecting_self(frac)):
                roles.append("edit_free")
            rows = {r: k for k, r in enumerate(roles)}
            ctrl.begin_step(i, n, rows, len(roles))
            lat = {"src_u": z_src, "src_c": z_src, "edit_u": z_edit, "edit_c": z_edit, "edit_free": z_edit}
            nul = null[i] if isinstance(null, list) else null  # per-step nulls from null-text inversion
            txt = {"src_u": nul, "src_c": src, "edit_u": nul, "edit_c": edit, "edit_free": edit}
            x = torch.cat([lat[r] for r in roles])
            ctx = TextContext.cat([txt[r] for r in roles])
            v = denoiser(x, t, ctx, None)

            ab = None if guider is None else s_edit.alphas_cumprod[int(t)].to(z_edit)
            if not cache_hit:
                z_src = s_src.step(_guided(v, rows, "src_u", "src_c", guidance, g_src, z_src, ab, i, n), t,
                                   z_src).prev_sample
            z_edit = s_edit.step(_guided(v, rows, "edit_u", "edit_c", guidance, g_edit, z_edit, ab, i, n), t,
                                 z_edit).prev_sample
            if callback is not None:
                callback(i + 1, n)
    finally:
        denoiser.set_attn_processor(FUSED)
    return EditResult(z_src, z_edit, record)


# ----------------------------------------------------------------------------------------------
# Recording attention for people (heat maps) and for tests.


class AttentionRecorder:
    """Records the conditional rows' attention; ``average`` keeps a running mean of cross maps only."""

    def __init__(self, batch: int, cond_rows: slice, keep: set[str] | None = None,
                 average_cross: bool = False):
        self.batch = batch
        self.cond_rows = cond_rows
        self.keep = keep if keep is not None else {"skel", "temp", "cross"}
        self.maps: dict[tuple[str, int], torch.Tensor] = {}
        self.average_cross = average_cross
        self.cross_sum: torch.Tensor | None = None
        self.count = 0

    def __call__(self, probs: torch.Tensor, kind: str, layer: int) -> torch.Tensor:
        n = probs.shape[0]
        grid = probs.view(self.batch, n // self.batch, *probs.shape[1:])[self.cond_rows]
        if self.average_cross and kind == "cross":
            m = grid.mean(dim=(1, 2))  # over heads → [B_c, Lq, Lk]
            self.cross_sum = m if self.cross_sum is None else self.cross_sum + m
            self.count += 1
        elif kind in self.keep and not self.average_cross:
            self.maps[(kind, layer)] = grid.reshape(-1, *probs.shape[1:]).clone()
        return probs

    def cross_mean(self) -> torch.Tensor:
        """Mean cross attention over steps, layers and heads: [B_c, T'·7, L]."""
        return self.cross_sum / max(self.count, 1)


def recording_forward(denoiser: Denoiser, fn: Callable[[], torch.Tensor], recorder: AttentionRecorder
                      ) -> torch.Tensor:
    """Run ``fn`` with ``recorder`` installed, then restore fused attention."""
    denoiser.set_attn_processor(ControlledAttnProcessor(recorder))
    try:
        return fn()
    finally:
        denoiser.set_attn_processor(FUSED)
