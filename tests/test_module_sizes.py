"""Small modules (issue #17): no Python module of the model, the add-on or tools/ is over 600 lines."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 600


def module_sizes(package: str) -> dict[str, int]:
    """Line count of every module in ``package``, subpackages included, by path relative to the repository."""
    return {p.relative_to(REPO).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
            for p in sorted((REPO / package).rglob("*.py"))}


@pytest.mark.parametrize("package, known", [("salad_model", "salad_model/serving/worker.py"),
                                            ("salad_blender", "salad_blender/client.py"),
                                            ("tools", "tools/batch.py")])  # audit10: batch.py was 625
def test_no_module_over_600_lines(package: str, known: str) -> None:
    sizes = module_sizes(package)
    assert known in sizes and sizes[known] > 0  # the walk reaches subpackages and reads the files
    over = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them along a real seam): {over}"
