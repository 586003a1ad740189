"""SALAD denoiser (SALAD_SPEC §3): a skip-connected transformer over the (T/4 × 7) latent grid.

Per block: temporal attention → skeletal attention → cross attention to words → FFN, each branch output
modulated by FiLM from the diffusion timestep. The network predicts v. Text-dependent work (word
projection, per-layer key/value projections of the text memory) is done once per prompt by
:meth:`Denoiser.encode_text` and reused at every step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import cross_fold, halves, packed
from .attention import MASK_VALUE, Attention, AttnProcessor, padding_to_additive


@dataclass
class DenoiserConfig:
    """Denoiser hyper-parameters (defaults = the released t2m model)."""

    latent_dim: int = 256
    n_heads: int = 8
    n_layers: int = 5
    ff_dim: int = 1024
    activation: str = "gelu"
    dropout: float = 0.1
    text_dim: int = 512
    vae_dim: int = 32
    num_parts: int = 7
    max_len: int = 5000
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def timestep_sinusoid(t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """[cos, sin] embedding of integer timesteps (GLIDE/DiT order), frequencies exp(−ln(1e4)·i/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def sinusoid_table(max_len: int, dim: int) -> torch.Tensor:
    """Standard 1-D positional table [1, max_len, dim]: sin on even, cos on odd channels."""
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(max_len, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe[None]


class TimestepEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_sinusoid(t, 256))


class PositionalEncoding(nn.Module):
    def __init__(self, dim: int, max_len: int, dropout: float):
        super().__init__()
        self.register_buffer("pe", sinusoid_table(max_len, dim))
        self.dropout = nn.Dropout(dropout)


class MLP(nn.Module):
    """``layers`` Sequential so checkpoint keys read ``input_process.layers.0.weight`` etc."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return packed.sequential(self.layers, x)


class FiLM(nn.Module):
    """``h·(1 + scale) + shift`` with (scale, shift) = Linear(SiLU(c))."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def params(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift = self.linear(c).chunk(2, dim=-1)
        return scale, shift


class STTransformerLayer(nn.Module):
    def __init__(self, cfg: DenoiserConfig, layer: int):
        super().__init__()
        d, h, p = cfg.latent_dim, cfg.n_heads, cfg.dropout
        self.temp_attn = Attention(d, h, p, "temp", layer)
        self.skel_attn = Attention(d, h, p, "skel", layer)
        self.cross_attn = Attention(d, h, p, "cross", layer)
        self.temp_norm = nn.LayerNorm(d)
        self.skel_norm = nn.LayerNorm(d)
        self.cross_src_norm = nn.LayerNorm(d)
        self.cross_tgt_norm = nn.LayerNorm(d)
        self.ffn_norm = nn.LayerNorm(d)
        self.ffn_linear1 = nn.Linear(d, cfg.ff_dim)
        self.ffn_linear2 = nn.Linear(cfg.ff_dim, d)
        self.act = {"gelu": nn.GELU(), "relu": nn.ReLU()}[cfg.activation]
        self.temp_film = FiLM(d)
        self.skel_film = FiLM(d)
        self.cross_film = FiLM(d)
        self.ffn_film = FiLM(d)
        self.drop = nn.Dropout(p)

    def text_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cross_attn.project_kv(self.cross_tgt_norm(memory))

    def forward(self, x: torch.Tensor, c: torch.Tensor | list[tuple[torch.Tensor, torch.Tensor]],
                text_kv: tuple[torch.Tensor, torch.Tensor],
                temp_mask: torch.Tensor | None, text_mask: torch.Tensor | None,
                folds: dict | None = None) -> torch.Tensor:
        """``c`` is the timestep condition [B, d], or this layer's four FiLM (1 + scale, shift) pairs already
        computed (:meth:`Denoiser.film_params`: one GEMM for every FiLM of the network). ``folds``: the text
        context's cache of folded cross attention (:mod:`cross_fold`; used where it applies)."""
        b, t, p, d = x.shape
        films = c if isinstance(c, list) else [(1 + s, sh) for s, sh in (m.params(c) for m in self.films())]
        inplace = not torch.is_grad_enabled()

        def add_film(x: torch.Tensor, i: int, h: torch.Tensor, fresh: bool) -> torch.Tensor:
            """``x + h·(1 + scale) + shift``; in place on x when x is this block's own tensor (inference)."""
            scale1, shift = films[i]
            scale1, shift = scale1[:, None, None], shift[:, None, None]
            if not inplace:
                return x + (h * scale1 + shift)
            out = x.addcmul_(h, scale1) if fresh else torch.addcmul(x, h, scale1)
            return out.add_(shift)

        # Temporal attention over frames, one sequence per (sample, part).
        h = self.temp_attn.grid_self_attention(self.temp_norm(x), 1, temp_mask)
        x = add_film(x, 0, self.drop(h), fresh=False)  # x is the caller's (a skip input): never in place
        # Skeletal attention over parts, one sequence per (sample, frame).
        h = self.skel_attn.grid_self_attention(self.skel_norm(x), 2)
        x = add_film(x, 1, self.drop(h), fresh=True)
        # Cross attention from all T·7 tokens (time-major) to the words.
        xn = self.cross_src_norm(x).reshape(b, t * p, d)
        if folds is not None and cross_fold.usable(self.cross_attn, x):
            fold = cross_fold.cached_fold(folds, self.cross_attn.layer, self.cross_attn, *text_kv)
            h = cross_fold.attend(fold, xn, text_mask)
        else:
            h = self.cross_attn(xn, kv=text_kv, mask=text_mask)
        x = add_film(x, 2, self.drop(h).view(b, t, p, d), fresh=True)
        # Feed-forward.
        act = packed.activation_name(self.act)
        if act is not None and packed.applies(x):  # oneDNN: activation inside the first GEMM
            h = packed.module_linear(self.ffn_linear1, self.ffn_norm(x), act)
            h = packed.module_linear(self.ffn_linear2, h)
        else:
            h = self.ffn_linear2(self.act(self.ffn_linear1(self.ffn_norm(x))))
        return add_film(x, 3, self.drop(h), fresh=True)

    def films(self) -> list[FiLM]:
        return [self.temp_film, self.skel_film, self.cross_film, self.ffn_film]


class SkipTransformer(nn.Module):
    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        if cfg.n_layers % 2 != 1:
            raise ValueError("n_layers must be odd (input blocks, one middle block, output blocks)")
        n = cfg.n_layers // 2
        d = cfg.latent_dim
        self.input_blocks = nn.ModuleList(STTransformerLayer(cfg, i) for i in range(n))
        self.middle_block = STTransformerLayer(cfg, n)
        self.output_blocks = nn.ModuleList(STTransformerLayer(cfg, n + 1 + i) for i in range(n))
        self.skip_blocks = nn.ModuleList(nn.Linear(2 * d, d) for _ in range(n))

    def layers(self) -> list[STTransformerLayer]:
        return [*self.input_blocks, self.middle_block, *self.output_blocks]


@dataclass
class TextContext:
    """Per-prompt tensors reused at every denoising step."""

    memory: torch.Tensor  # [B, L, d] projected words
    mask: torch.Tensor | None  # additive [B, 1, 1, L]
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer, [B, H, L, d_h] each
    # per layer, built at the first step that uses them (cross_fold: text folded into Wq / Wo)
    folds: dict = field(default_factory=dict, repr=False, compare=False)
    _halves: list = field(default_factory=list, repr=False, compare=False)
    _padded: dict = field(default_factory=dict, repr=False, compare=False)

    def halves(self) -> tuple[TextContext, TextContext]:
        """The first and second half of the batch, kept (each with its own fold cache) for the next steps."""
        if not self._halves:
            h = self.memory.shape[0] // 2
            self._halves.extend(self.select(list(r)) for r in (range(h), range(h, 2 * h)))
        return self._halves[0], self._halves[1]

    def select(self, index: torch.Tensor | list[int]) -> TextContext:
        idx = torch.as_tensor(index, device=self.memory.device)
        return TextContext(self.memory[idx], None if self.mask is None else self.mask[idx],
                           [(k[idx], v[idx]) for k, v in self.kv])

    @property
    def length(self) -> int:
        return self.memory.shape[1]

    def padded(self, length: int) -> TextContext:
        """Extend to ``length`` text positions with masked zeros (exactly neutral: probability 0)."""
        extra = length - self.length
        if extra <= 0:
            return self
        mask = self.mask
        if mask is None:
            mask = torch.zeros(self.memory.shape[0], 1, 1, self.length, dtype=self.memory.dtype,
                               device=self.memory.device)
        mask = F.pad(mask, (0, extra), value=MASK_VALUE)
        kv = [(F.pad(k, (0, 0, 0, extra)), F.pad(v, (0, 0, 0, extra))) for k, v in self.kv]
        return TextContext(F.pad(self.memory, (0, 0, 0, extra)), mask, kv)

    def padded_kept(self, length: int) -> TextContext:
        """:meth:`padded`, kept (with its own fold cache) for the next steps."""
        if length <= self.length:
            return self
        if length not in self._padded:
            self._padded[length] = self.padded(length)
        return self._padded[length]

    @staticmethod
    def cat(parts: list[TextContext]) -> TextContext:
        """Stack contexts along the batch, padding them to a common text length."""
        n = max(p.length for p in parts)
        parts = [p.padded(n) for p in parts]
        mask = None if any(p.mask is None for p in parts) else torch.cat([p.mask for p in parts])
        kv = [(torch.cat([p.kv[i][0] for p in parts]), torch.cat([p.kv[i][1] for p in parts]))
              for i in range(len(parts[0].kv))]
        return TextContext(torch.cat([p.memory for p in parts]), mask, kv)


class Denoiser(nn.Module):
    """v-prediction network: (z_t [B,T',7,C], t, text) → v̂ [B,T',7,C]."""

    def __init__(self, config: DenoiserConfig | None = None):
        super().__init__()
        cfg = config or DenoiserConfig()
        self.config = cfg
        d = cfg.latent_dim
        self.input_process = MLP([nn.Linear(cfg.vae_dim, d), nn.ReLU(), nn.Linear(d, d)])
        self.output_process = MLP([nn.LayerNorm(d), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, cfg.vae_dim)])
        self.timestep_emb = TimestepEmbedding(d)
        self.word_emb = nn.Linear(cfg.text_dim, d)
        self.pos_emb = PositionalEncoding(d, cfg.max_len, cfg.dropout)
        self.transformer = SkipTransformer(cfg)
        self._films: tuple[tuple, torch.Tensor, torch.Tensor] | None = None
        self._film_table: dict[int, list] | None = None  # timestep → FiLM pairs, inside timestep_table()

    def film_params(self, c: torch.Tensor) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        """Every layer's four FiLM (1 + scale, shift) pairs from ``c`` [B, d] in one GEMM (20 small GEMMs
        otherwise; on a busy CPU each costs a thread wake-up). Stacked weights cached until one changes."""
        films = [f.linear[1] for layer in self.transformer.layers() for f in layer.films()]
        params = [t for f in films for t in (f.weight, f.bias)]
        key = tuple((t.data_ptr(), t._version) for t in params)
        if self._films is None or self._films[0] != key:
            with torch.no_grad():
                self._films = (key, torch.cat([f.weight for f in films]), torch.cat([f.bias for f in films]))
        out = F.linear(F.silu(c), self._films[1], self._films[2])  # [B, n·2d]
        d = self.config.latent_dim
        out = out.view(c.shape[0], len(films), 2, d)
        out[:, :, 0] += 1  # (1 + scale, shift)
        pairs = [(ch[:, 0], ch[:, 1]) for ch in out.unbind(1)]
        return [pairs[i : i + 4] for i in range(0, len(pairs), 4)]

    @contextmanager
    def timestep_table(self, timesteps: torch.Tensor | list[int]) -> Iterator[None]:
        """Inside: the FiLM parameters of these timesteps (a sampler's schedule) come from one GEMM for all of
        them, computed on entry. Per step that GEMM is [1, d] × [d, 20·2d]: it only re-reads its 10 MB weight
        (~0.8 ms at the official size, once per CFG half). CPU inference only; elsewhere a no-op."""
        ts = torch.as_tensor(timesteps).reshape(-1)
        p = next(self.parameters())
        if torch.is_grad_enabled() or p.device.type != "cpu" or ts.numel() == 0:
            yield
            return
        films = self.film_params(self.timestep_emb(ts.to(p.device)))
        table = {t: [[(s[i : i + 1], sh[i : i + 1]) for s, sh in layer] for layer in films]
                 for i, t in enumerate(ts.tolist())}
        before, self._film_table = self._film_table, table
        try:
            yield
        finally:
            self._film_table = before

    def set_attn_processor(self, processor: AttnProcessor) -> None:
        """Install one processor on every attention module (pass ``attention.FUSED`` to reset)."""
        for m in self.modules():
            if isinstance(m, Attention):
                m.processor = processor

    def encode_text(self, word_emb: torch.Tensor, word_valid: torch.Tensor | None,
                    trim: bool = True) -> TextContext:
        """Project text-encoder features [B, L, text_dim] once; cache per-layer keys/values.

        With ``trim``, padding beyond the longest valid prefix is dropped: masked keys get probability
        exactly 0 (exp(−1e9) underflows), so the output is unchanged while cross attention reads ~12
        keys instead of 77.
        """
        if trim and word_valid is not None:
            count = word_valid.sum(-1)
            n = int(count.max())
            prefix = torch.arange(word_valid.shape[-1], device=word_valid.device) < count[:, None]
            if n > 0 and torch.equal(prefix, word_valid.bool()):  # padding only at the end
                word_emb, word_valid = word_emb[:, :n], word_valid[:, :n]
        memory = self.word_emb(word_emb)
        mask = padding_to_additive(word_valid, memory.dtype)
        kv = [layer.text_kv(memory) for layer in self.transformer.layers()]
        return TextContext(memory, mask, kv)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor | int, text: TextContext,
                len_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T', P, C]; timesteps [B], [1] or scalar; len_mask [B, T'] (True = valid frame)."""
        if halves.applies(self, x, text):  # CFG's two halves at once, one per core
            from . import traced  # each half as a TorchScript graph: no Python dispatch, no GIL to take turns on

            forward = traced.forward_of(self) if traced.applies(self, x) else self._forward
            return halves.run(forward, x, timesteps, text, len_mask)
        if packed.applies(x):
            with packed.gemm_threads_only():
                return self._forward(x, timesteps, text, len_mask)
        return self._forward(x, timesteps, text, len_mask)

    def step_films(self, ts: torch.Tensor) -> list | None:
        """This step's FiLM pairs from :meth:`timestep_table` (one shared timestep, inference), else None."""
        if ts.numel() != 1 or torch.is_grad_enabled() or self._film_table is None:
            return None
        return self._film_table.get(int(ts))

    def _forward(self, x: torch.Tensor, timesteps: torch.Tensor | int, text: TextContext,
                 len_mask: torch.Tensor | None, films: list | None = None) -> torch.Tensor:
        """``films``: this step's FiLM pairs, already looked up (runtime/traced.py: the traced graph takes
        them as inputs instead of a Python lookup by timestep)."""
        b, t, p, _ = x.shape
        ts = torch.as_tensor(timesteps, device=x.device)
        shared = ts.numel() == 1  # one timestep for the whole batch (CFG): condition computed once, broadcast
        ts = ts.reshape(1) if shared else ts
        if films is None:
            films = self.step_films(ts)
        c = None
        if films is None:
            c = self.timestep_emb(ts)
            films = self.film_params(c) if not torch.is_grad_enabled() else None
        h = self.input_process(x)
        h = h.reshape(b, t * p, -1) + self.pos_emb.pe[:, : t * p]
        h = self.pos_emb.dropout(h).view(b, t, p, -1)
        temp_mask = None
        if len_mask is not None:
            temp_mask = padding_to_additive(len_mask.repeat_interleave(p, dim=0), h.dtype)
        tr = self.transformer
        layers = tr.layers()
        n = len(tr.input_blocks)
        skips = []
        for i, block in enumerate(tr.input_blocks):
            h = block(h, films[i] if films else c, text.kv[i], temp_mask, text.mask, text.folds)
            skips.append(h)
        h = tr.middle_block(h, films[n] if films else c, text.kv[n], temp_mask, text.mask, text.folds)
        for i, block in enumerate(tr.output_blocks):
            h = packed.module_linear(tr.skip_blocks[i], torch.cat([h, skips.pop()], dim=-1))
            h = block(h, films[n + 1 + i] if films else c, text.kv[n + 1 + i], temp_mask, text.mask, text.folds)
        assert len(layers) == 2 * n + 1
        return self.output_process(h)


def strip_clip_keys(state: dict) -> dict:
    """Drop keys the reference strips when saving (``clip_model.*``, ``*_cache_*``)."""
    return {k: v for k, v in state.items() if "clip_model." not in k and "_cache_" not in k}


__all__ = ["Denoiser", "DenoiserConfig", "TextContext", "strip_clip_keys"]
