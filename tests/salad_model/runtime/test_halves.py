"""The batch's two halves on two threads (runtime/halves.py): the same numbers as one batched forward, really
split, and never split while an editing controller watches the attention calls."""

import os
import signal
import threading

import pytest
import torch

from salad_model.runtime import halves, packed, traced
from salad_model.runtime.attention import ControlledAttnProcessor
from salad_model.runtime.denoiser import Denoiser, DenoiserConfig

pytestmark = pytest.mark.skipif(not packed.available(), reason="torch without oneDNN's packed linear")

TOL = 1e-5  # GEMMs over half the rows: float rounding only (measured ≤ 6e-7 per step at the official size)


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    halves.ENABLED, work = True, halves.MIN_WORK
    halves.MIN_WORK = 0  # the tiny test network splits too
    traced.ENABLED = False  # the eager halves (spied on through _forward); the traced ones: test_traced.py
    yield
    traced.ENABLED = True
    halves.MIN_WORK = work
    halves.ENABLED = True
    torch.set_num_threads(before)


def _setup(batch: int = 4):
    torch.manual_seed(0)
    cfg = DenoiserConfig(latent_dim=32, n_heads=4, n_layers=3, ff_dim=64, text_dim=16, vae_dim=8)
    den = Denoiser(cfg).eval()
    z = torch.randn(batch, 6, 7, 8)
    valid = torch.arange(5)[None] < torch.tensor([5, 2, 4, 3])[:batch, None]  # prompts of different lengths
    frames = torch.arange(6)[None] < torch.tensor([6, 4, 5, 3])[:batch, None]
    with torch.inference_mode():
        ctx = den.encode_text(torch.randn(batch, 5, 16), valid)
    return den, z, ctx, frames


def test_halves_give_the_batched_forward_and_really_run_on_two_threads(monkeypatch) -> None:
    den, z, ctx, frames = _setup()
    ts = torch.tensor([300, 300, 700, 700])  # per-row timesteps are split with their rows
    with torch.inference_mode():
        halves.ENABLED = False
        batched = den(z, ts, ctx, frames)
        halves.ENABLED = True
        calls = []
        real = den._forward

        def spy(x, t, text, len_mask):
            calls.append((threading.current_thread() is threading.main_thread(), x.shape[0], text.memory.shape[0]))
            return real(x, t, text, len_mask)

        monkeypatch.setattr(den, "_forward", spy)
        split = den(z, ts, ctx, frames)
        again = den(z, ts, ctx, frames)  # the halves' text contexts (and their folds) are kept
    assert sorted(calls[:2]) == [(False, 2, 2), (True, 2, 2)]
    assert (split - batched).abs().max().item() <= TOL
    assert torch.equal(split, again)
    assert ctx.halves()[0] is ctx.halves()[0] and len(ctx.halves()[1].folds) > 0
    assert torch.get_num_threads() == 2


def test_an_attention_controller_keeps_one_batched_forward_on_the_calling_thread() -> None:
    den, z, ctx, frames = _setup()
    seen = []

    def controller(probs, kind, layer):
        seen.append((threading.current_thread() is threading.main_thread(), probs.shape[0]))
        return probs

    den.set_attn_processor(ControlledAttnProcessor(controller))
    with torch.inference_mode():
        den(z, torch.tensor(300), ctx, frames)
    assert seen and all(main for main, _ in seen)
    assert {n for kind, n in seen} >= {4}  # cross attention saw the whole batch in one call


def test_a_failing_half_restores_the_threads_and_raises(monkeypatch) -> None:
    den, z, ctx, frames = _setup()
    real = den._forward

    def fails_on_worker(x, t, text, len_mask):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("worker half failed")
        return real(x, t, text, len_mask)

    monkeypatch.setattr(den, "_forward", fails_on_worker)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="worker half failed"):
        den(z, torch.tensor(300), ctx, frames)
    assert torch.get_num_threads() == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork only")
def test_a_forked_child_runs_its_own_halves() -> None:
    """A child forked after a split forward has no worker thread: without a fresh pool its half would wait
    forever (seen: the child killed by the alarm)."""
    den, z, ctx, frames = _setup()
    with torch.inference_mode():
        parent = den(z, torch.tensor(300), ctx, frames)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status only
        signal.alarm(20)
        with torch.inference_mode():
            child = den(z, torch.tensor(300), ctx, frames)
        os._exit(0 if torch.equal(child, parent) else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_small_step_stays_one_batched_forward(monkeypatch) -> None:
    """Below MIN_WORK the halves would mostly repeat Python dispatch under one GIL (demo model: 1.42x CPU for
    0.96x wall): one forward on the calling thread."""
    den, z, ctx, frames = _setup()
    halves.MIN_WORK = 2 * 6 * 7 * 32 * 64 + 1  # one more than this step's half: 2 rows x 6 frames x 7 parts
    calls = []
    real = den._forward
    monkeypatch.setattr(den, "_forward", lambda *a: calls.append(a[0].shape[0]) or real(*a))
    with torch.inference_mode():
        den(z, torch.tensor(300), ctx, frames)
        halves.MIN_WORK -= 1
        den(z, torch.tensor(300), ctx, frames)
    assert calls == [4, 2, 2]


@pytest.mark.parametrize("batch,rows", [(2, 2), (4, 1)])
def test_one_cfg_pair_a_shared_text_context_and_no_frame_mask(monkeypatch, batch, rows) -> None:
    """The usual step (one sample: an unconditional and a conditional row), a text context shared by every row,
    no frame mask: each half gets its own rows (mutants that kept the whole context for a batch of 2, split a
    shared one, or sliced a missing mask survived the batch-of-4 test above)."""
    den, z, _, _ = _setup(batch)
    with torch.inference_mode():
        ctx = den.encode_text(torch.randn(rows, 5, 16), None)
        halves.ENABLED = False
        batched = den(z, torch.tensor(300), ctx, None)
        halves.ENABLED = True
        calls = []
        real = den._forward
        monkeypatch.setattr(den, "_forward", lambda x, *a: calls.append(x.shape[0]) or real(x, *a))
        split = den(z, torch.tensor(300), ctx, None)
    assert calls == [batch // 2] * 2
    assert (split - batched).abs().max().item() <= TOL


def test_each_half_gets_half_the_threads(monkeypatch) -> None:
    den, z, ctx, frames = _setup()
    torch.set_num_threads(4)
    seen = []
    real = den._forward
    monkeypatch.setattr(den, "_forward", lambda *a: seen.append(torch.get_num_threads()) or real(*a))
    with torch.inference_mode():
        den(z, torch.tensor(300), ctx, frames)
    assert seen == [2, 2] and torch.get_num_threads() == 4


def test_the_attention_list_is_cached_but_sees_new_processors_and_new_modules(monkeypatch) -> None:
    """halves.applies runs on every forward: it lists the model's attention modules once (walking ~230 modules
    cost ~0.18 ms a step at the official size), yet a controller installed later, or an attention module with
    a controller added to the tree after the first forward, still keeps the batched forward."""
    from salad_model.runtime.attention import FUSED, Attention

    den, z, ctx, _ = _setup()
    watched = Attention(32, 4, 0.0, "extra", 9)
    watched.processor = ControlledAttnProcessor(lambda p, kind, layer: p)
    with torch.inference_mode():
        assert halves.applies(den, z, ctx)
        walks = []
        real = type(den).modules
        monkeypatch.setattr(type(den), "modules", lambda self: walks.append(1) or real(self))
        assert halves.applies(den, z, ctx) and not walks  # cached: no walk of the tree
        den.transformer.middle_block.skel_attn.processor = ControlledAttnProcessor(lambda p, kind, layer: p)
        assert not halves.applies(den, z, ctx)
        den.set_attn_processor(FUSED)
        assert halves.applies(den, z, ctx)
        den.transformer.output_blocks[0].extra = watched  # registered after the list was made
        assert not halves.applies(den, z, ctx)
