"""scripts/test.sh takes the Blender versions it expects from pyproject.toml's bpy pins (one source)."""

import re
from pathlib import Path

import pytest
from bpy_suite import REPO, bpy_pin

import salad_blender


def test_test_sh_reads_the_expected_versions_from_the_pins() -> None:
    script = (REPO / "scripts" / "test.sh").read_text()
    assert not re.search(r"SALAD_EXPECT_BPY=['\"]?\d", script)  # no version written into the script
    assert "tests/bpy_suite.py --pin blender)" in script and "tests/bpy_suite.py --pin blender42)" in script


@pytest.mark.parametrize("extra", ["blender", "blender42"])
def test_the_pinned_blenders_are_ones_the_add_on_supports(extra: str) -> None:
    version = tuple(int(x) for x in bpy_pin(extra).split("."))
    assert len(version) == 3 and salad_blender.blender_version_problem(version) is None


def test_pin_parsing(tmp_path: Path) -> None:
    toml = tmp_path / "pyproject.toml"
    toml.write_text('[project]\nname = "x"\n[project.optional-dependencies]\n'
                    'a = ["numpy<2", "bpy == 4.2.1 "]\nb = ["bpy>=4.2"]\nc = ["numpy"]\n')
    assert bpy_pin("a", toml) == "4.2.1"
    for extra, message in (("b", "must pin bpy exactly once"), ("c", "must pin bpy exactly once"),
                           ("d", "no optional-dependency group 'd'")):
        with pytest.raises(SystemExit, match=message):
            bpy_pin(extra, toml)
