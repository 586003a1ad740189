"""The preferences' Official Model choice in bpy: the button, and the worker only ever gets a verified model."""

import json
import sys
from types import SimpleNamespace

import pytest
from fake_ui import FakeLayout
from needs import require_module

bpy = require_module("bpy")

import salad_blender  # noqa: E402
from salad_blender import official_model, preferences  # noqa: E402
from salad_blender.inputs import JobError  # noqa: E402


@pytest.fixture
def registered(scene):
    salad_blender.register()
    yield
    salad_blender.unregister()


def test_official_model_choice(registered, tmp_path, monkeypatch):
    monkeypatch.setattr(official_model, "official_root", lambda package, create=False: str(tmp_path))

    class Prefs(SimpleNamespace):
        pass

    prefs = Prefs(python_path=sys.executable, model_source="OFFICIAL", model_folder="", device="cpu", threads=0,
                  package_spec="salad", torch_index="cpu", show_advanced=False, official_dataset="t2m")
    prefs.bl_rna = preferences.SALAD_AddonPreferences.bl_rna
    calls = []
    prefs.layout = FakeLayout(calls)
    preferences.SALAD_AddonPreferences.draw(prefs, bpy.context)
    assert ("op", "salad.get_official_model") in calls and ("prop", "official_dataset") in calls
    assert any("Not downloaded yet" in c[1] for c in calls if c[0] == "label")

    monkeypatch.setattr(preferences, "get_prefs", lambda context=None: prefs)
    with pytest.raises(JobError, match="not downloaded yet.*Get Official Model"):
        preferences.worker_config(bpy.context)
    (tmp_path / "t2m.partial" / "checkpoints").mkdir(parents=True)  # an unfinished download is not offered
    with pytest.raises(JobError, match="not downloaded yet"):
        preferences.worker_config(bpy.context)
    model = tmp_path / "t2m" / "checkpoints" / "t2m" / "den"
    model.mkdir(parents=True)
    (tmp_path / "t2m" / official_model.MARKER).write_text(json.dumps({"model": "checkpoints/t2m/den"}))
    assert preferences.worker_config(bpy.context).model == str(model)
    assert bpy.ops.salad.get_official_model.poll()


def test_get_official_model_operator_refuses_offline(registered, tmp_path, monkeypatch):
    monkeypatch.setattr(official_model, "official_root", lambda package, create=False: str(tmp_path / "o"))
    assert bpy.app.online_access is False  # the bpy module starts offline
    with pytest.raises(RuntimeError, match="Online access is disabled"):
        bpy.ops.salad.get_official_model()
    assert salad_blender.runner.RUNNER.download is None and not (tmp_path / "o").exists()
