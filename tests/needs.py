"""Required test dependencies (bpy, the shared folder): skip locally, fail in CI.

With CI=true the hooks in tests/conftest.py turn every skip into a failure unless its reason starts with
an ``OPTIONAL`` prefix, so a CI image without bpy or ../shared cannot pass by skipping.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
OPTIONAL = ("optional:",)  # e.g. pytest.skip("optional: needs CUDA"): allowed to skip in CI


def require(available: object, what: str) -> None:
    """Skip (locally) or fail (CI) the calling test when ``available`` is falsy; ``what`` names the need."""
    if not available:
        pytest.skip(f"required: {what}")


def require_module(name: str) -> ModuleType:
    """Import a required module (``bpy``); at module level this skips / fails the whole file."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"required: module {name!r} ({exc})", allow_module_level=True)
