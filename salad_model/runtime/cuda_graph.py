"""The GPU path (issue #18): the fixed-shape denoiser step captured in a CUDA graph, run under autocast.

A sampling loop calls the denoiser 10–50 times with the same shapes and the same text context; on a GPU the
per-kernel launch cost of ~300 small kernels dominates at batch 2. :class:`GraphedDenoiser` captures one
forward per shape (batch, frames, text length) the first time it sees it and replays it afterwards: the
latent, the timestep and — when the prompt changed — the text context are copied into static buffers, the
graph is replayed, the output copied out. The weights are read
in ``dtype`` (fp16 or bf16) through ``torch.autocast``; the result is returned in float32.

Not measured here: this machine has no GPU (docs/architecture.md says so); tests skip without CUDA. On the
CPU the pipeline never uses this module.
"""

from __future__ import annotations

import torch

from .denoiser import Denoiser, TextContext


class GraphedDenoiser:
    """Callable like a :class:`Denoiser` inside :func:`sampling.sample` (same arguments, float32 output)."""

    def __init__(self, denoiser: Denoiser, dtype: torch.dtype = torch.float16, warmup: int = 2):
        device = next(denoiser.parameters()).device
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need the denoiser on a CUDA device, it is on {device}")
        if dtype not in (torch.float16, torch.bfloat16, torch.float32):
            raise ValueError(f"autocast dtype must be float16, bfloat16 or float32, got {dtype}")
        self.denoiser = denoiser
        self.dtype = dtype
        self.warmup = warmup
        self.device = device
        self._graphs: dict[tuple, dict] = {}

    @staticmethod
    def _key(x: torch.Tensor, ctx: TextContext, len_mask: torch.Tensor | None) -> tuple:
        shapes = [tuple(ctx.memory.shape), None if ctx.mask is None else tuple(ctx.mask.shape)]
        shapes += [tuple(k.shape) for k, _ in ctx.kv]
        return (tuple(x.shape), tuple(shapes), None if len_mask is None else tuple(len_mask.shape))

    def _forward(self, x: torch.Tensor, t: torch.Tensor, ctx: TextContext, len_mask: torch.Tensor | None):
        with torch.autocast("cuda", dtype=self.dtype, enabled=self.dtype != torch.float32):
            return self.denoiser(x, t, ctx, len_mask).float()

    def _capture(self, x: torch.Tensor, t: torch.Tensor, ctx: TextContext, len_mask: torch.Tensor | None) -> dict:
        s = {"x": x.detach().clone(), "t": t.detach().clone(),
             "ctx": TextContext(ctx.memory.clone(), None if ctx.mask is None else ctx.mask.clone(),
                                [(k.clone(), v.clone()) for k, v in ctx.kv]),
             "len_mask": None if len_mask is None else len_mask.clone(), "seen": (ctx, len_mask)}
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm-up outside the graph: lazy caches (fused Q/K/V, FiLM) get built
            for _ in range(self.warmup):
                self._forward(s["x"], s["t"], s["ctx"], s["len_mask"])
        torch.cuda.current_stream(self.device).wait_stream(side)
        s["graph"] = torch.cuda.CUDAGraph()
        with torch.cuda.graph(s["graph"]):
            s["out"] = self._forward(s["x"], s["t"], s["ctx"], s["len_mask"])
        return s

    def __call__(self, x: torch.Tensor, timesteps, ctx: TextContext, len_mask: torch.Tensor | None = None
                 ) -> torch.Tensor:
        t = torch.as_tensor(timesteps, device=self.device).reshape(-1)
        if t.numel() != 1:
            raise ValueError("a captured step takes one timestep for the whole batch")
        key = self._key(x, ctx, len_mask)
        s = self._graphs.get(key)
        if s is None:
            s = self._graphs[key] = self._capture(x, t, ctx, len_mask)
        elif s["seen"][0] is not ctx or s["seen"][1] is not len_mask:  # a new prompt: refresh the static text
            s["ctx"].memory.copy_(ctx.memory)
            if ctx.mask is not None:
                s["ctx"].mask.copy_(ctx.mask)
            for (sk, sv), (k, v) in zip(s["ctx"].kv, ctx.kv, strict=True):
                sk.copy_(k)
                sv.copy_(v)
            if len_mask is not None:
                s["len_mask"].copy_(len_mask)
            s["seen"] = (ctx, len_mask)
        s["x"].copy_(x)
        s["t"].copy_(t)
        s["graph"].replay()
        return s["out"].clone()

    @property
    def captured(self) -> int:
        """How many distinct shapes / contexts have been captured (one per sampling run and batch)."""
        return len(self._graphs)
