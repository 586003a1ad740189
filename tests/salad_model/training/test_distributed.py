"""Data-parallel training: 2 CPU processes (gloo) launched by torchrun train the VAE and the denoiser for a few
steps on a tiny synthetic HumanML3D-layout dataset; both ranks must end with identical weights, equal to the
checkpoint rank 0 wrote, and rank 0 must be the only writer of logs.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from salad_model.training import distributed

DRIVER = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import torch
    from salad_model import distributed, train

    cfg_file, data, out = sys.argv[1:4]
    ctx = distributed.setup("cpu")
    torch.set_num_threads(1)
    cfg = json.loads(Path(cfg_file).read_text())
    vae = train.train_vae(cfg, Path(data), Path(out), iters=3)
    den = train.train_denoiser(cfg, Path(data), Path(out), iters=3)
    torch.save({"vae": vae.state_dict(), "denoiser": den.state_dict(), "world": ctx.world_size},
               Path(out) / f"rank{ctx.rank}.pt")
    distributed.cleanup()
''')


def tiny_config() -> dict:
    from salad_model.training import train

    cfg = train.load_config("t2m_reference")
    cfg["text_encoder"] = {"type": "tiny", "seed": 0, "dim": 16}
    cfg["vae"].update(latent_dim=8)
    cfg["denoiser"].update(latent_dim=32, n_heads=2, n_layers=3, ff_dim=64, text_dim=16, vae_dim=8)
    cfg["vae_train"].update(batch=4, window=16, warmup=2)
    cfg["denoiser_train"].update(batch=4, warmup=2)
    return cfg


def test_two_process_training_keeps_ranks_identical(tmp_path):
    from salad_model.training.data.humanml3d import write_synthetic

    data = tmp_path / "dataset" / "humanml3d"
    mean, std = write_synthetic(data, n_motions=16, seed=1)
    meta = tmp_path / "meta"
    meta.mkdir()
    import numpy as np

    np.save(meta / "mean.npy", mean)
    np.save(meta / "std.npy", std)
    cfg = {**tiny_config(), "stats_dir": str(meta)}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    (tmp_path / "driver.py").write_text(DRIVER)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(tmp_path / "driver.py"), str(tmp_path / "cfg.json"), str(data), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2
    for part in ("vae", "denoiser"):
        differ = [k for k in r0[part] if not torch.equal(r0[part][k], r1[part][k])]
        assert not differ, f"{part}: ranks diverged in {differ[:5]}"
        saved = torch.load(out / part / "latest.pt", weights_only=False)
        assert saved["iter"] == 3
        assert all(torch.equal(saved["model"][k], r0[part][k]) for k in r0[part])
        rows = (out / part / "log.csv").read_text().splitlines()
        assert rows[0].startswith("iter,loss") and [r.split(",")[0] for r in rows[1:]] == ["3"]  # rank 0 only
    # training moved the weights away from the shared initialisation
    torch.manual_seed(1234)
    from salad_model.runtime.vae import VAE, VAEConfig

    init = VAE(VAEConfig(**cfg["vae"])).state_dict()
    assert any(not torch.equal(init[k], r0["vae"][k]) for k in init)


def test_single_process_context_is_a_no_op():
    ctx = distributed.current()
    assert not ctx.enabled and ctx.is_main and ctx.shard(8) == slice(None)
    model = torch.nn.Linear(2, 2)
    assert ctx.wrap(model) is model and ctx.any(True) and not ctx.any(False)
    state = torch.get_rng_state()
    with ctx.rank_rng(5):
        pass
    assert torch.equal(state, torch.get_rng_state())
    ran = []
    with ctx.main_first():  # alone: the block runs once, and no barrier (there is no process group)
        ran.append(1)
    assert ran == [1]


def test_main_first_runs_rank_zero_before_the_others():
    """Two ranks in two threads, a thread barrier for the process group's: rank 1 enters the block only
    after rank 0 has left it (rank 0 writes a cache the others read)."""
    import threading

    barrier = threading.Barrier(2, timeout=120)  # a hang guard only
    log: list[str] = []

    class ThreadContext(distributed.Context):
        def barrier(self) -> None:
            barrier.wait()

    def rank(r: int, first_delay: threading.Event) -> None:
        with ThreadContext(rank=r, world_size=2).main_first():
            if r == 0:
                first_delay.wait(0.2)  # give rank 1 every chance to overtake if the order were wrong
            log.append(f"enter {r}")
            log.append(f"exit {r}")

    never = threading.Event()
    threads = [threading.Thread(target=rank, args=(r, never)) for r in (1, 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert log == ["enter 0", "exit 0", "enter 1", "exit 1"]


def test_context_sharding_and_rank_streams():
    ctx = distributed.Context(rank=1, world_size=2)
    assert ctx.shard(8) == slice(4, 8) and ctx.per_rank(8) == 4
    with pytest.raises(ValueError, match="divisible"):
        ctx.per_rank(7)
    before = torch.get_rng_state()
    with ctx.rank_rng(3):
        a = torch.rand(3)
    assert torch.equal(before, torch.get_rng_state())  # the shared stream is untouched
    with distributed.Context(rank=0, world_size=2).rank_rng(3):
        b = torch.rand(3)
    assert not torch.equal(a, b)
