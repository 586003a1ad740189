"""tools/batch.py imported as a module (it is a script, not a package member), for tests of its functions."""

import importlib.util
from pathlib import Path
from types import ModuleType

BATCH = Path(__file__).resolve().parents[2] / "tools" / "batch.py"


def load_batch(name: str = "salad_batch") -> ModuleType:
    """A fresh module object of tools/batch.py (fresh so monkeypatching one test cannot leak into another)."""
    spec = importlib.util.spec_from_file_location(name, BATCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
