"""Build the installable Blender extension: ``dist/salad_motion-<version>.zip``.

Uses Blender's own builder, ``blender_ext.py build`` (it validates the manifest the way Blender's
installer does), found inside the Blender installation or the ``bpy`` wheel. The extension source is
``salad_blender/`` itself — the manifest sits next to ``__init__.py`` — and ``[build]
paths_exclude_pattern`` in the manifest keeps benchmarks and caches out. The built zip is then re-packed
with everything inside one ``salad_motion/`` folder (Blender 4.2+ finds a manifest in a single top
folder): Blender 3.x-4.1 unpack an add-on zip into their add-ons folder as it is, so this way they get one
package whose ``bl_info`` and ``register()`` say "needs Blender 4.2 or newer" instead of loose files.
The model package travels as ONE wheel, ``model/salad_blender-<version>-py3-none-any.whl`` (built here
with ``pip wheel``; it holds salad_model and the demo weights): Blender never imports it, the
"Set up model environment" button pip-installs it into the worker's own environment, so an animator
who installs only the zip gets a working set-up.

    python tools/build_extension.py                 # -> dist/salad_motion-0.1.0.zip
    python tools/build_extension.py --blender-ext /path/to/blender_ext.py --out-dir /tmp
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "salad_blender"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from salad_blender.setup_env import BUNDLED_WHEEL_DIR as WHEEL_DIR  # noqa: E402 - where the add-on looks
from salad_blender.setup_env import BUNDLED_WHEEL_GLOB  # noqa: E402

EXT_REL = Path("addons_core") / "bl_pkg" / "cli" / "blender_ext.py"


def find_blender_ext() -> Path | None:
    """blender_ext.py from a running Blender, else from the installed bpy wheel."""
    try:
        import bpy  # noqa: F401 - only to ask Blender where its scripts are

        p = Path(bpy.utils.system_resource("SCRIPTS")) / EXT_REL
        if p.is_file():
            return p
    except ImportError:
        pass
    spec = importlib.util.find_spec("bpy")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        hits = sorted(Path(root).glob(f"*/scripts/{EXT_REL.as_posix()}"))
        if hits:
            return hits[-1]
    return None


def manifest(source: Path = SOURCE) -> dict:
    with open(source / "blender_manifest.toml", "rb") as fh:
        return tomllib.load(fh)


def build_model_wheel(out_dir: Path, python: str | None = None, project: Path = REPO) -> Path:
    """``pip wheel`` of the project (no dependencies, no build isolation: works offline)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    had_build_dir = (project / "build").exists()
    proc = subprocess.run([python or sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--quiet", "-w", str(out_dir), str(project)], capture_output=True, text=True, timeout=600)
    wheels = sorted(out_dir.glob(BUNDLED_WHEEL_GLOB))
    if proc.returncode != 0 or len(wheels) != 1:
        raise RuntimeError(f"pip wheel failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    if not had_build_dir:
        shutil.rmtree(project / "build", ignore_errors=True)  # setuptools' in-tree leftovers
    return wheels[0]


def build(out_dir: Path, blender_ext: Path | None = None, source: Path = SOURCE,
          python: str | None = None, model_wheel: bool = True) -> Path:
    """Validate and build; returns the zip path. Raises RuntimeError with the builder's output."""
    tool = blender_ext or find_blender_ext()
    if tool is None or not Path(tool).is_file():
        raise RuntimeError("blender_ext.py not found: install the bpy module (pip install bpy) or pass "
                           "--blender-ext <blender>/<version>/scripts/addons_core/bl_pkg/cli/blender_ext.py")
    m = manifest(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{m['id']}-{m['version']}.zip"
    if out.exists():
        out.unlink()
    py = python or sys.executable
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "salad_motion"
        shutil.copytree(source, stage, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", WHEEL_DIR))
        if model_wheel:
            wheel = build_model_wheel(stage / WHEEL_DIR, py)
            if f"-{m['version']}-" not in wheel.name:
                raise RuntimeError(f"model wheel {wheel.name} does not match the add-on version {m['version']}: "
                                   "keep pyproject.toml and blender_manifest.toml in step")
        for cmd in (["validate", str(stage)],
                    ["build", "--source-dir", str(stage), "--output-filepath", str(out)]):
            proc = subprocess.run([py, str(tool), *cmd], capture_output=True, text=True, env=env, timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"blender_ext.py {cmd[0]} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    nest_in_folder(out, m["id"])
    check_zip(out, model_wheel)
    return out


def nest_in_folder(path: Path, folder: str) -> None:
    """Re-pack ``path`` in place with every entry under ``folder/`` (entries and their compression kept)."""
    tmp = path.with_suffix(".nesting")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            info.filename = f"{folder}/{info.filename}"
            dst.writestr(info, data)
    tmp.replace(path)


def check_zip(path: Path, model_wheel: bool = True) -> list[str]:
    """Everything in one top folder named for the extension id; the model side only inside the one wheel
    (never importable by Blender). Returns the names inside that folder."""
    folder = manifest()["id"] + "/"
    with zipfile.ZipFile(path) as z:
        full = z.namelist()
        loose = [n for n in full if not n.startswith(folder)]
        if loose:
            raise RuntimeError(f"{path.name} has entries outside {folder} (Blender < 4.2 would install them as "
                               f"loose files): {loose[:5]}")
        names = [n.removeprefix(folder) for n in full]
        wheels = [n for n in names if n.startswith(f"{WHEEL_DIR}/") and n.endswith(".whl")]
        inside = zipfile.ZipFile(z.open(folder + wheels[0])).namelist() if len(wheels) == 1 else []
    required = {"blender_manifest.toml", "__init__.py", "jobs.py", "client.py", "operators.py"}
    missing = required - set(names)
    if missing:
        raise RuntimeError(f"{path.name} lacks {sorted(missing)} in {folder}")
    bad = [n for n in names if n.startswith(("salad_model", "tests", "bench_")) or "__pycache__" in n
           or n.endswith((".pyc", ".pt", ".tar", ".safetensors"))]
    if bad:
        raise RuntimeError(f"{path.name} contains files that must not ship: {bad}")
    if model_wheel:
        needed = {"salad_model/__init__.py", "salad_model/serving/worker.py", "salad_model/assets/demo/LICENSE"}
        if len(wheels) != 1 or needed - set(inside):
            raise RuntimeError(f"{path.name} must carry one model wheel in {WHEEL_DIR}/ with {sorted(needed)}; "
                               f"found {wheels} holding {len(inside)} files")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", type=Path, default=REPO / "dist")
    p.add_argument("--blender-ext", type=Path, default=None, help="path of blender_ext.py")
    p.add_argument("--no-model-wheel", action="store_true", help="the add-on only (users install the model)")
    a = p.parse_args(argv)
    try:
        out = build(a.out_dir, a.blender_ext, model_wheel=not a.no_model_wheel)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(out) as z:
        print(f"{out} ({out.stat().st_size / 1024:.0f} KiB): {', '.join(sorted(z.namelist()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
