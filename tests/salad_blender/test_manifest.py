"""The extension manifest passes Blender's own validation and claims no address the project does not have."""

import importlib.util
from pathlib import Path

import tomllib
from needs import require, require_module

MANIFEST = Path(__file__).resolve().parents[2] / "salad_blender" / "blender_manifest.toml"


def blender_ext():  # noqa: ANN201 - Blender's extension CLI module (ships with bpy)
    bpy = require_module("bpy")
    found = sorted(Path(bpy.utils.system_resource("SCRIPTS")).glob("addons_core/bl_pkg/cli/blender_ext.py"))
    require(found, "Blender's extension validator (bl_pkg/cli/blender_ext.py in the bpy package)")
    spec = importlib.util.spec_from_file_location("blender_ext_for_test", found[-1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_manifest_passes_blenders_validation():
    result = blender_ext().pkg_manifest_from_toml_and_validate_all_errors(str(MANIFEST), strict=True)
    assert not isinstance(result, list), result  # a list is the validator's error messages
    assert result.maintainer == "SALAD for Blender developers"


def test_manifest_values():
    data = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    assert data["blender_version_min"] == "4.2.0"  # what the tests run on (bpy 4.2.0 and 5.0.1)
    assert "@" not in data["maintainer"] and "http" not in data["maintainer"]  # no invented contact
    assert "website" not in data  # optional; the docs are not hosted anywhere yet
