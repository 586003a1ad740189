"""CPU settings shared by every entry point (CLI, worker, Python API): torch threads = physical cores, and
idle OpenMP threads that sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE).

Why: on a loaded machine (Blender, other processes) spinning OpenMP threads and hyper-thread oversubscription
made generation 2-3x slower. OMP_WAIT_POLICY is read once, when torch loads its OpenMP runtime, i.e. at
``import torch``: ``import salad_model`` sets it (if unset) before anything of ours imports torch, and
:func:`apply_cpu_settings` says so with a warning when torch got there first. Standard library only.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

OMP_WAIT_POLICY = "OMP_WAIT_POLICY"
PASSIVE = "PASSIVE"


# The policy torch's OpenMP runtime got (None: unset), as far as we can know: set by prefer_passive_omp().
TORCH_OMP_POLICY: str | None = None


def prefer_passive_omp() -> None:
    """``import salad_model`` calls this: OMP_WAIT_POLICY=PASSIVE unless the user chose a policy. If torch is
    already imported the change is too late to matter, and :func:`apply_cpu_settings` will warn."""
    global TORCH_OMP_POLICY
    if "torch" not in sys.modules:
        os.environ.setdefault(OMP_WAIT_POLICY, PASSIVE)
    TORCH_OMP_POLICY = os.environ.get(OMP_WAIT_POLICY)


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads share the FPU: more threads only contend)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = list(range(os.cpu_count() or 1))
    if sys.platform.startswith("linux"):
        cores = set()
        for c in cpus:
            topo = Path(f"/sys/devices/system/cpu/cpu{c}/topology")
            try:
                cores.add((topo.joinpath("physical_package_id").read_text().strip(),
                           topo.joinpath("core_id").read_text().strip()))
            except OSError:
                cores.add(("cpu", str(c)))
        return max(1, len(cores))
    if sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "hw.physicalcpu"], capture_output=True, text=True,
                                 timeout=2)
            return max(1, int(out.stdout.strip()))
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    return max(1, len(cpus))


def default_threads() -> int:
    """OMP_NUM_THREADS when the user set it to a positive number, else the physical cores."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        n = 0
    return n if n > 0 else physical_cores()


_warned = False


def apply_cpu_settings(threads: int | None = None) -> int:
    """Set torch's CPU threads (``threads``, else :func:`default_threads`) and warn once if OpenMP threads
    will spin because torch was imported before salad_model with no OMP_WAIT_POLICY. Returns the threads."""
    global _warned
    import torch

    n = threads or default_threads()
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if not _warned and TORCH_OMP_POLICY is None:
        _warned = True
        warnings.warn("torch was imported before salad_model while OMP_WAIT_POLICY was unset, so idle OpenMP "
                      "threads busy-wait (2-3x slower on a busy machine): import salad_model before torch, or "
                      "set OMP_WAIT_POLICY=PASSIVE in the environment", RuntimeWarning, stacklevel=3)
    return n
