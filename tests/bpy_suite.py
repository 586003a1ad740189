"""The tests scripts/test.sh runs a second time on Blender 4.2 LTS (``.venv-bpy42``, bpy 4.2.0): the add-on
(tests/salad_blender), batch (tests/tools) and every other test file that imports bpy.

    python tests/bpy_suite.py      # one path per line, relative to the checkout
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALWAYS = ("tests/salad_blender", "tests/tools")
# `import bpy`, `from bpy… import`, or the suite's own `require_module("bpy")` (tests/needs.py)
USES_BPY = re.compile(r"^\s*(?:import bpy\b|from bpy[\s.])|require_module\(\s*[\"']bpy[\"']", re.MULTILINE)


def bpy_test_paths(repo: Path = REPO) -> list[str]:
    """ALWAYS, then the test files outside them whose source imports bpy (sorted)."""
    extra = []
    for path in sorted((repo / "tests").rglob("test_*.py")):
        rel = path.relative_to(repo).as_posix()
        if not rel.startswith(tuple(d + "/" for d in ALWAYS)) and USES_BPY.search(path.read_text()):
            extra.append(rel)
    return [*ALWAYS, *extra]


def bpy_header() -> str:
    """pytest's header line: which bpy (Blender as a module) this run's bpy tests use, without importing it."""
    import importlib.metadata
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None:
        return "bpy: not installed (the Blender tests skip; with CI=true they fail)"
    try:
        version = importlib.metadata.version("bpy")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown version"
    return f"bpy {version} (Blender as a module) from {Path(spec.origin or '?').parent}"


if __name__ == "__main__":
    sys.stdout.write("".join(p + "\n" for p in bpy_test_paths()))
