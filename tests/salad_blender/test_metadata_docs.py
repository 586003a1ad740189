"""Every ``salad_*`` key the one writer (salad_blender/metadata.py) can put on an Action is documented in
docs/blender_addon.md's *Action metadata* table, and the table lists no key it never writes (issue #16)."""

import inspect
import re
from pathlib import Path

from salad_blender import metadata

DOC = Path(__file__).resolve().parents[2] / "docs" / "blender_addon.md"


def every_written_key() -> set[str]:
    """The writer called with every optional field set (None leaves a key out)."""
    optional = {name: p for name, p in inspect.signature(metadata.make_metadata).parameters.items()
                if p.default is None}
    values = {"rig": {"pelvis": "hips"}, "pin_feet": True, "in_place": True, "shot": {"kind": "compose"},
              "to_metres": 1.0, "cyclic": 8, "video": {"path": "clip.mp4"}, "guided_steps": 4}
    fields = {name: values.get(name, "x") for name in optional}
    return set(metadata.make_metadata(prompt="a person walks", seed=0, frames=40, **fields))


def documented_keys() -> set[str]:
    text = DOC.read_text()
    section = text.split("## Action metadata", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(salad_[a-z_]+)` \|", section, re.MULTILINE))


def test_every_key_the_writer_can_write_is_in_the_docs_table():
    written = every_written_key()
    assert {"salad_source_fps", "salad_model_name", "salad_shot", "salad_in_place"} <= written
    assert written - documented_keys() == set()


def test_the_docs_table_lists_only_keys_the_writer_writes():
    assert documented_keys() - every_written_key() == set()
