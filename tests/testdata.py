"""Where the test data lives, for test modules at any depth (tests/ is on pytest's pythonpath)."""

from pathlib import Path

from salad_model.training.data.shared import locate_shared  # standard library only: no torch, no numpy

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"  # the two Bandai BVH clips, golden tensors, the golden T2M evaluator
REPO = TESTS.parent

# The project's shared folder (spec, golden, Bandai archives): $SALAD_SHARED, else the nearest ``shared/``
# beside the checkout or beside one of its parents (a git worktree under /work/wt/<name> finds /work/shared);
# None when there is none. One rule with the data builders' defaults (salad_model/training/data/shared.py).
SHARED = locate_shared(REPO)
