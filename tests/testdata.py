"""Where the test data lives, for test modules at any depth (tests/ is on pytest's pythonpath)."""

import os
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"  # the two Bandai BVH clips, golden tensors, the golden T2M evaluator
REPO = TESTS.parent


def find_shared() -> Path | None:
    """The project's shared folder (spec, golden, Bandai archives): $SALAD_SHARED, else the nearest
    ``shared/`` beside the checkout or beside one of its parents (a git worktree under /work/wt/<name>
    finds /work/shared)."""
    env = os.environ.get("SALAD_SHARED")
    if env:
        return Path(env)
    for parent in REPO.parents:
        cand = parent / "shared"
        if (cand / "spec").is_dir() or (cand / "data").is_dir():
            return cand
    return None


SHARED = find_shared()
