"""One download size everywhere (issue #16): the environment set-up's size is spelled once
(setup_env.DOWNLOAD_SIZES) and the refusal message, the preferences and the docs quote exactly it."""

import re
from pathlib import Path

import pytest

from salad_blender import setup_env
from salad_blender.setup_env import DOWNLOAD_SIZES, SetupError

REPO = Path(__file__).resolve().parents[2]
GB_FIGURE = re.compile(r"(?:about |~|≈ ?)?\d[\d.,–-]*\s?GB\b")


def test_the_offline_refusal_quotes_both_sizes():
    with pytest.raises(SetupError) as err:
        setup_env.check_online(False)
    assert DOWNLOAD_SIZES["cpu"] in str(err.value) and DOWNLOAD_SIZES["default"] in str(err.value)


def test_every_environment_size_in_the_docs_is_the_one_figure():
    """Paragraphs about the model environment quote only DOWNLOAD_SIZES; the add-on guide's set-up step
    quotes both."""
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    paragraphs = [(p.name, para) for p in docs for para in re.split(r"\n\s*\n|\n\s*- ", p.read_text())]
    about_env = [(name, para) for name, para in paragraphs if "nvironment" in para and GB_FIGURE.search(para)]
    for name, para in about_env:
        assert set(GB_FIGURE.findall(para)) <= set(DOWNLOAD_SIZES.values()), (name, para)
    setup = [para for name, para in about_env if name == "blender_addon.md" and "Set Up Model Environment" in para]
    assert setup and all(size in setup[0] for size in DOWNLOAD_SIZES.values())


def test_the_torch_build_choices_quote_the_same_sizes():
    from needs import require_module

    require_module("bpy")
    from salad_blender import preferences

    prop = preferences.SALAD_AddonPreferences.__annotations__["torch_index"]
    if isinstance(prop, str):  # postponed annotations: Blender evaluates them in the module when registering
        prop = eval(prop, vars(preferences))
    items = prop.keywords["items"]
    descriptions = {key: description for key, _, description in items}
    assert set(descriptions) == set(DOWNLOAD_SIZES)
    for key, size in DOWNLOAD_SIZES.items():
        assert size in descriptions[key]
