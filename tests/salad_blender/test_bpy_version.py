"""The Blender these tests run on is the one the run claims (scripts/test.sh: 5.0.1 in .venv, 4.2 LTS in
.venv-bpy42, told by SALAD_EXPECT_BPY) and one the add-on supports."""

import importlib.metadata
import os

from needs import require_module

import salad_blender


def test_bpy_is_the_expected_supported_blender():
    bpy = require_module("bpy")
    version = tuple(bpy.app.version)
    assert salad_blender.blender_version_problem(version) is None, version
    assert importlib.metadata.version("bpy") == ".".join(map(str, version))  # the header's figure is the one running
    expected = os.environ.get("SALAD_EXPECT_BPY")
    if expected:
        assert ".".join(map(str, version)).startswith(expected), f"SALAD_EXPECT_BPY={expected}, running {version}"
