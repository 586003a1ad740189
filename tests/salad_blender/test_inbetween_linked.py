"""In-between with an A or B action linked from a library (another .blend): it is only read, on bpy 4.2 and 5.0.

Measured first on bpy 5.0 (session 10); the same test runs on 4.2 LTS in scripts/test.sh's second run. The linked
actions are library data: nothing of them may change (keys, slots, the action the linked rig plays)."""

import pytest
from needs import require_module

bpy = require_module("bpy")

from test_ui_conventions import addon  # noqa: E402, F401 - the fixture (scripted shot worker)

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, armature  # noqa: E402


def snapshot(action: bpy.types.Action) -> tuple:
    """Everything of ``action`` an in-between could touch: its slots and every key of every F-curve."""
    slots = tuple(s.identifier for s in getattr(action, "slots", ()))
    curves = tuple((fc.data_path, fc.array_index, tuple(tuple(k.co) for k in fc.keyframe_points))
                   for fc in actions.action_fcurves(action))
    return slots, curves, action.users


@pytest.mark.parametrize("linked_side", ["a", "b", "both"])
def test_inbetween_reads_linked_actions_and_changes_none_of_them(addon, tmp_path, linked_side):  # noqa: F811
    rig = armature.create_smpl22_armature("Hero", synthetic_walk(8), with_mesh=False)
    walk = actions.apply_motion(rig, synthetic_walk(40), prompt="a person walks", bone_map="smpl22")
    run = actions.apply_motion(rig, synthetic_walk(40), prompt="a person runs", bone_map="smpl22")
    lib_path = tmp_path / "moves.blend"
    bpy.data.libraries.write(str(lib_path), {walk, run}, fake_user=True)
    names = {"a": walk.name, "b": run.name}
    with bpy.data.libraries.load(str(lib_path), link=True) as (_src, dst):
        dst.actions = [names[side] for side in ("a", "b") if linked_side in (side, "both")]
    lib = {a.name: a for a in bpy.data.actions if a.library is not None}
    pick = {side: lib.get(names[side]) if linked_side in (side, "both") else {"a": walk, "b": run}[side]
            for side in ("a", "b")}
    assert all(pick[s].library is not None for s in ("a", "b") if linked_side in (s, "both"))
    playing = rig.animation_data.action
    bpy.context.view_layer.objects.active = rig
    sh = bpy.context.scene.salad_shot
    sh.action_a, sh.action_b, sh.inbetween_prompt, sh.inbetween_seconds = pick["a"], pick["b"], "a person turns", 1.0
    before = {name: snapshot(act) for name, act in lib.items()}  # users: A/B fields count as one each
    had = set(bpy.data.actions)
    assert bpy.ops.salad.inbetween.poll()
    assert bpy.ops.salad.inbetween(blocking=True) == {"FINISHED"}
    result = rig.animation_data.action
    assert result not in (playing, pick["a"], pick["b"]) and result.library is None
    assert set(bpy.data.actions) == had | {result}  # no local copy of a linked action left behind
    assert result.name.startswith("SALAD: ") and " > " in result.name
    assert {name: snapshot(act) for name, act in lib.items()} == before
    assert not any(a.is_library_indirect for a in lib.values())  # still linked directly, not made local
