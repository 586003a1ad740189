"""Operators on an armature linked from another .blend (a library): it cannot be keyed here (audit2, part 5)."""

import pytest
from needs import require_module

bpy = require_module("bpy")

from test_operators import addon  # noqa: E402, F401 - the fixture

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, armature  # noqa: E402


@pytest.fixture
def linked(addon, tmp_path):  # noqa: F811 - the fixture
    """The active object: an SMPL-22 armature playing a walk, linked from a saved library file."""
    walk = synthetic_walk(60)
    arm = armature.create_smpl22_armature("Lib Rig", walk, with_mesh=False)
    actions.apply_motion(arm, walk, prompt="a person walks", bone_map="smpl22")
    lib = tmp_path / "rig_library.blend"
    bpy.data.libraries.write(str(lib), {arm}, fake_user=True)
    for a in list(bpy.data.actions):
        bpy.data.actions.remove(a)
    bpy.data.objects.remove(arm)
    with bpy.data.libraries.load(str(lib), link=True) as (src, dst):
        dst.objects = ["Lib Rig"]
    obj = dst.objects[0]
    bpy.context.scene.collection.objects.link(obj)
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    assert obj.library is not None
    return obj


@pytest.mark.parametrize("op", ["generate", "edit_real", "continue_action", "regenerate_parts"])
def test_operators_refuse_a_linked_armature(linked, op):
    """Before: each operator FINISHED and assigned its new Action to the linked armature, an assignment the file
    does not keep (linked data is read from the library again on load), so the result was lost on reload.
    Now each reports why (an ERROR report: bpy.ops raises it in background mode) and changes nothing."""
    s = bpy.context.scene.salad
    s.prompt, s.target, s.pin_feet, s.real_caption = "a person walks forward", "SELECTED", False, "a person walks"
    shot = bpy.context.scene.salad_shot
    shot.continue_prompt, shot.parts_prompt, shot.parts = "a person sits", "a person waves", {"left_arm"}
    before = (linked.animation_data.action, sorted(a.name for a in bpy.data.actions))
    with pytest.raises(RuntimeError, match="'Lib Rig' is linked from the library 'rig_library.blend'.*override"):
        getattr(bpy.ops.salad, op)(blocking=True)
    assert (linked.animation_data.action, sorted(a.name for a in bpy.data.actions)) == before


def test_a_library_override_of_the_armature_is_edited(linked):
    """What the error advises works: an override is local data, so Continue makes and keeps its new Action."""
    over = linked.override_hierarchy_create(bpy.context.scene, bpy.context.view_layer)
    over = over if over.type == "ARMATURE" else next(o for o in bpy.data.objects if o.override_library)
    assert over.library is None and over.override_library is not None
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    over.select_set(True)
    bpy.context.view_layer.objects.active = over
    bpy.context.scene.salad.pin_feet = False
    bpy.context.scene.salad_shot.continue_prompt = "a person sits"
    assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
    assert over.animation_data.action.name == "SALAD: a person walks + a person sits"


def test_the_panels_say_a_linked_armature_cannot_take_a_motion_before_a_click(linked):
    """ui5: the Text to Motion panel showed 'Lib Rig: SMPL-22 rig' and Continue, Regenerate Parts, Edit Animation with
    Text and the prompt edits were enabled; only the click said the rig is linked. Now the rig line says so and those
    buttons are greyed out with the reason."""
    from types import SimpleNamespace

    from fake_ui import FakeLayout

    from salad_blender import panels, ui_state

    s = bpy.context.scene.salad
    s.target, s.rig_preset = "SELECTED", "AUTO"
    bpy.context.scene.salad_shot.parts = {"left_arm"}
    calls = []
    panels.SALAD_PT_generate.draw(SimpleNamespace(layout=FakeLayout(calls)), bpy.context)
    text = " ".join(c[1] for c in calls if c[0] == "label")
    assert "linked from the library" in text and "override" in text and "SMPL-22 rig" not in text
    for op in ("continue_action", "regenerate_parts", "edit_real", "edit_prompt", "mirror"):
        assert not getattr(bpy.ops.salad, op).poll(), op
    assert "library override" in ui_state.edit_blocker(linked)
    calls = []
    panels.SALAD_PT_edit_real.draw(SimpleNamespace(layout=FakeLayout(calls)), bpy.context)
    lines = [c[1] for c in calls if c[0] == "label"]
    assert " ".join(lines) == ui_state.real_edit_blocker(linked) and len(lines) > 1  # wrapped, not cut with '…'
