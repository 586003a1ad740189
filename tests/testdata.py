"""Where the test data lives, for test modules at any depth (tests/ is on pytest's pythonpath)."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"  # the two Bandai BVH clips, golden tensors, the golden T2M evaluator
REPO = TESTS.parent
