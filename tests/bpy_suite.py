"""The tests scripts/test.sh runs a second time on Blender 4.2 LTS (``.venv-bpy42``, bpy 4.2.0): the add-on
(tests/salad_blender), batch (tests/tools) and every other test file that imports bpy.

    python tests/bpy_suite.py              # one path per line, relative to the checkout
    python tests/bpy_suite.py --pin blender42  # the bpy version an extra of pyproject.toml pins (4.2.0)

scripts/test.sh takes each run's ``SALAD_EXPECT_BPY`` from ``--pin`` so pyproject.toml is the one source.
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


def bpy_pin(extra: str, pyproject: Path = REPO / "pyproject.toml") -> str:
    """The exact ``bpy==X`` version that the optional-dependency group ``extra`` of pyproject.toml pins."""
    import tomllib

    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"].get("optional-dependencies", {})
    if extra not in extras:
        raise SystemExit(f"{pyproject} has no optional-dependency group {extra!r} (have: {', '.join(extras)})")
    pins = [m.group(1) for req in extras[extra] if (m := re.fullmatch(r"\s*bpy\s*==\s*([\w.]+)\s*", req))]
    if len(pins) != 1:
        raise SystemExit(f"{pyproject}: the {extra!r} group must pin bpy exactly once (bpy==X), found {extras[extra]}")
    return pins[0]


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
    if sys.argv[1:2] == ["--pin"] and len(sys.argv) == 3:
        print(bpy_pin(sys.argv[2]))
    else:
        sys.stdout.write("".join(p + "\n" for p in bpy_test_paths()))
