"""Blender older than 4.2 (issue #16): installing the extension zip as a legacy add-on must end in "needs
Blender 4.2 or newer", not in loose files in the add-ons folder. Blender 3.x-4.1 unpack an add-on zip into
their add-ons folder as it is and read ``bl_info`` without importing; tools/build_extension.py therefore
keeps the whole zip in one ``salad_motion/`` folder and ``salad_blender/__init__.py`` has a ``bl_info`` and
a version check in ``register()``."""

import importlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

import salad_blender

REPO = Path(__file__).resolve().parents[2]
MESSAGE = "needs Blender 4.2 or newer"


@pytest.mark.parametrize("version", [(2, 93, 18), (3, 4, 1), (3, 6, 9), (4, 0, 2), (4, 1, 1)])
def test_blender_before_4_2_is_refused_with_its_version(version):
    problem = salad_blender.blender_version_problem(version)
    assert MESSAGE in problem and f"this is Blender {'.'.join(map(str, version))}" in problem


@pytest.mark.parametrize("version", [(4, 2, 0), (4, 2, 3), (4, 5, 0), (5, 0, 1), (10, 0, 0)])
def test_blender_4_2_and_newer_is_accepted(version):
    assert salad_blender.blender_version_problem(version) is None


def test_bl_info_agrees_with_the_manifest():
    with open(REPO / "salad_blender" / "blender_manifest.toml", "rb") as fh:
        manifest = tomllib.load(fh)
    info = salad_blender.bl_info
    assert info["blender"] == salad_blender.MIN_BLENDER
    assert ".".join(map(str, info["blender"])) == manifest["blender_version_min"]
    assert ".".join(map(str, info["version"])) == manifest["version"] == salad_blender.__version__
    assert info["name"] == manifest["name"] and info["warning"] == "Needs Blender 4.2 or newer"


def test_old_blenders_parser_reads_bl_info_without_importing(tmp_path):
    """addon_utils._fake_module is how every Blender since 2.8 lists a legacy add-on (a line scan from
    ``bl_info`` to the first blank line, then literal_eval): it must find the whole dict."""
    from needs import require_module

    require_module("bpy")
    import addon_utils

    mod = addon_utils._fake_module("salad_motion", str(REPO / "salad_blender" / "__init__.py"), speedy=True)
    assert mod is not None and mod.bl_info == salad_blender.bl_info


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory):
    """The extension zip without the model wheel (the add-on files are what an old Blender unpacks)."""
    from needs import require_module

    require_module("bpy")  # tools/build_extension.py uses the bpy module's blender_ext.py
    sys.path.insert(0, str(REPO / "tools"))
    try:
        build_extension = importlib.import_module("build_extension")
    finally:
        sys.path.remove(str(REPO / "tools"))
    return build_extension.build(tmp_path_factory.mktemp("dist"), model_wheel=False)


def test_zip_unpacks_as_one_package_that_refuses_old_blender(addon_zip, tmp_path):
    addons = tmp_path / "addons"
    with zipfile.ZipFile(addon_zip) as z:  # what Blender 3.x-4.1's "Install add-on" does with a zip
        z.extractall(addons)
    assert sorted(os.listdir(addons)) == ["salad_motion"]
    assert (addons / "salad_motion" / "__init__.py").is_file()
    # register() under a stand-in bpy that reports Blender 4.1.1: the message, and no other module imported
    code = (
        "import sys, types\n"
        "bpy = types.ModuleType('bpy'); bpy.app = types.SimpleNamespace(version=(4, 1, 1))\n"
        f"sys.modules['bpy'] = bpy; sys.path.insert(0, {str(addons)!r})\n"
        "import salad_motion\n"
        "try:\n    salad_motion.register()\n"
        "except RuntimeError as exc:\n    print('REFUSED', exc)\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith('salad_motion.')))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                         check=True).stdout
    assert f"REFUSED SALAD Motion {MESSAGE} (this is Blender 4.1.1)" in out
    assert "LOADED []" in out


TRY_OLD_BLENDER = """
import sys, bpy, addon_utils
zip_path = sys.argv[sys.argv.index("--") + 1]
print("INSTALL", bpy.ops.preferences.addon_install(filepath=zip_path))
try:
    print("ENABLE", bpy.ops.preferences.addon_enable(module="salad_motion"))
except RuntimeError as exc:
    print("ENABLE FAILED", exc)
print("ENABLED", "salad_motion" in bpy.context.preferences.addons)
"""


def _old_blender() -> str | None:
    exe = shutil.which("blender")
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"Blender (\d+)\.(\d+)", out)
    return exe if m and (int(m[1]), int(m[2])) < (4, 2) else None


def test_real_old_blender_installs_the_zip_and_says_it_needs_4_2(addon_zip, tmp_path):
    """The real thing, where a Blender < 4.2 is installed (Debian's `apt-get install blender` is 3.4)."""
    exe = _old_blender()
    if exe is None:
        pytest.skip("optional: no Blender older than 4.2 on PATH (e.g. Debian's `apt-get install blender`)")
    script = tmp_path / "try_install.py"
    script.write_text(TRY_OLD_BLENDER)
    env = {**os.environ, "BLENDER_USER_SCRIPTS": str(tmp_path / "user_scripts"),
           "BLENDER_USER_CONFIG": str(tmp_path / "user_config")}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([exe, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(script),
                           "--", str(addon_zip)], capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "INSTALL {'FINISHED'}" in out
    assert sorted(os.listdir(tmp_path / "user_scripts" / "addons")) == ["salad_motion"]
    assert f"SALAD Motion {MESSAGE}" in out and "ENABLED False" in out
