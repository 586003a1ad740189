"""An animator's pass in a real Blender 4.3 window (session 11, polish8): what surprised, driven here headless."""

import pytest
from needs import require_module

bpy = require_module("bpy")

from test_ui_conventions import addon, panel_calls  # noqa: E402, F401 - the fixture (scripted shot worker)

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, armature, panels  # noqa: E402


def labels(panel_cls) -> str:
    return " ".join(c[1] for c in panel_calls(panel_cls) if c[0] == "label")


def test_an_armature_whose_action_was_pushed_to_the_nla_is_told_so(addon):  # noqa: F811
    """Seen in Blender 4.3: after Push Down the selected rig's Edit Motion panel said "Select an armature that
    plays an action" (it was selected) and Continue / Regenerate Parts said only that it plays no action."""
    rig = armature.create_smpl22_armature("Rig", synthetic_walk(8), with_mesh=False)
    bpy.context.view_layer.objects.active = rig
    assert "'Rig' plays no action: generate a motion first" in labels(panels.SALAD_PT_edit)
    actions.apply_motion(rig, synthetic_walk(40), prompt="a person walks", bone_map="smpl22")
    actions.push_to_nla(rig)
    assert rig.animation_data.action is None
    text = labels(panels.SALAD_PT_edit)
    assert "Select an armature" not in text
    assert "'Rig' plays no action to edit: its motion is in the NLA; pick a strip's action in the Action " \
           "Editor" in text
    sh = bpy.context.scene.salad_shot
    sh.parts, sh.continue_prompt, sh.parts_prompt = {"left_arm"}, "a person sits", "a person waves"
    for op, what in (("continue_action", "continue"), ("regenerate_parts", "regenerate")):
        assert not getattr(bpy.ops.salad, op).poll()
        with pytest.raises(RuntimeError, match=f"'Rig' plays no action to {what}: its motion is in the NLA"):
            getattr(bpy.ops.salad, op)(blocking=True)
    bpy.context.view_layer.objects.active = None
    assert "Select an armature that plays an action" in labels(panels.SALAD_PT_edit)  # nothing selected
