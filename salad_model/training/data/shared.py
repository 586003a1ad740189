"""Where the project's shared folder is, for the data builders' defaults.

One rule, also used by the tests (tests/testdata.py): ``$SALAD_SHARED``, else the nearest ``shared/``
beside the checkout or beside one of its parents, so a git worktree in ``/work/wt/<name>`` finds
``/work/shared`` instead of assuming ``../shared``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def locate_shared(start: Path = REPO_ROOT) -> Path | None:
    """``$SALAD_SHARED``, else the nearest ``shared/`` with a ``data/`` or ``spec/`` folder beside ``start``
    or one of its parents; None when there is none (tests/testdata.py uses this: standard library only)."""
    env = os.environ.get("SALAD_SHARED")
    if env:
        return Path(env)
    for parent in start.parents:
        cand = parent / "shared"
        if (cand / "data").is_dir() or (cand / "spec").is_dir():
            return cand
    return None


def find_shared(start: Path = REPO_ROOT) -> Path:
    """:func:`locate_shared`, falling back to ``start.parent / "shared"`` (named in the not-found errors)."""
    return locate_shared(start) or start.parent / "shared"


def shared_data(name: str) -> Path:
    """``<shared>/data/<name>`` (e.g. ``bandai-namco``, ``deepmimic``)."""
    return find_shared() / "data" / name
