"""The add-on's package structure: pure modules import without bpy, no import circles."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "salad_blender"
# Everything but the Blender UI and the code that creates Blender data imports without bpy.
PURE = ("smpl22", "facing", "retarget", "rigs", "heatmap", "protocol", "client", "setup_env", "official_model",
        "inputs", "metadata", "real_motion", "worker_pool", "motion_job", "shot_inputs", "ui_state", "rigify", "loops")


def test_pure_modules_import_without_bpy():
    code = ("import sys\n" + "".join(f"import salad_blender.{m}\n" for m in PURE)
            + "assert 'bpy' not in sys.modules, 'bpy imported'\nassert 'salad_model' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def local_imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("salad_blender"):
            rest = node.module.split(".")[1:]
            out |= {rest[0]} if rest else {a.name for a in node.names}
    return {m.split(".")[0] for m in out}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def package_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {p.stem: local_imports(p) & modules - {p.stem} for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def test_no_import_circles():
    graph = package_graph()
    assert "preferences" in graph["operators"] and "runner" in graph["preferences"]  # the graph is read
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph))}"
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the finder finds one
