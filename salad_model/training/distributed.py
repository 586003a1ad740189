"""Data-parallel training across processes, GPUs and machines (torch.distributed, launched by ``torchrun``).

Off unless the process was started by ``torchrun`` with more than one process (``WORLD_SIZE`` > 1): plain
``python -m salad_model.training.train`` keeps the single-process path unchanged, byte for byte.

How the training loop uses it (`salad_model.training.train`):

* every rank draws the *same* global batch from identically seeded RNGs and keeps its own contiguous slice
  (`Context.shard`) — a DistributedSampler for random draws. The RNG streams therefore stay identical on all
  ranks, so the checkpoint rank 0 writes (with its RNG states) resumes every rank correctly;
* the model is wrapped in DistributedDataParallel (`Context.wrap`): gradients are averaged, so with equal
  slices one step equals a single-process step on the global batch (the config's ``batch`` is the global batch);
* dropout and the VAE's posterior sampling run inside `Context.rank_rng`, a per-rank fork of the RNG that leaves
  the shared stream untouched, so ranks do not reuse each other's random masks;
* only rank 0 writes checkpoints, logs and caches (`Context.is_main`, `Context.main_first`); a stop request
  (SIGTERM) on any rank stops all ranks at the same iteration (`Context.any`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    seed: int = 1234

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def per_rank(self, batch: int) -> int:
        """This rank's share of a global batch (must divide evenly so every rank weighs the same)."""
        if batch % self.world_size:
            raise ValueError(f"global batch {batch} is not divisible by the {self.world_size} processes")
        return batch // self.world_size

    def shard(self, n: int) -> slice:
        """This rank's contiguous slice of a global batch of ``n`` rows (everything when not distributed)."""
        if not self.enabled:
            return slice(None)
        k = self.per_rank(n)
        return slice(self.rank * k, (self.rank + 1) * k)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel around ``model`` when distributed, else ``model`` itself."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def rank_rng(self, step: int) -> contextlib.AbstractContextManager:
        """A per-rank random stream for one forward pass; the shared global stream is restored afterwards."""
        if not self.enabled:
            return contextlib.nullcontext()
        return _forked_seed(self.seed * 1_000_003 + step * 7919 + self.rank, self.device)

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any rank (a collective: all ranks must call it)."""
        if not self.enabled:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. writes a cache), the others after it, reading what it wrote."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()


@contextlib.contextmanager
def _forked_seed(seed: int, device: torch.device) -> Iterator[None]:
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed % (2**63))
        yield


_CURRENT = Context()


def current() -> Context:
    """The process's context (single-process CPU unless `setup` found a torchrun launch)."""
    return _CURRENT


def setup(device: str = "cpu", backend: str | None = None, quiet: bool = True) -> Context:
    """Join the process group when launched by torchrun; pick the device (``cuda:LOCAL_RANK`` for GPU runs).

    ``device``: ``cpu``, ``cuda`` or ``auto`` (cuda if available). Backend: NCCL on CUDA, gloo on CPU.
    ``quiet`` silences stdout of ranks other than 0 so logs are printed once.
    """
    global _CURRENT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(f"cuda:{local}" if device == "cuda" else device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if dev.type == "cuda" else "gloo"))
    _CURRENT = Context(rank=rank, world_size=world, local_rank=local, device=dev)
    if quiet and rank != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    return _CURRENT


def cleanup() -> None:
    """Leave the process group (call at the end of a distributed run)."""
    global _CURRENT
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _CURRENT = Context()
