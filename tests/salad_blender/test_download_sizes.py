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


def test_every_gigabyte_figure_in_the_docs_is_a_download_size():
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    found = {(p.name, m.group(0)) for p in docs for m in GB_FIGURE.finditer(p.read_text())}
    assert {fig for _, fig in found} == set(DOWNLOAD_SIZES.values()), found


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
