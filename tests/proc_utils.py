"""Process helpers shared by the worker and client tests."""

import os
from pathlib import Path


def pid_gone(pid: int) -> bool:
    """No such process, or only a zombie left for someone else to reap (init reaps it when it can)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
