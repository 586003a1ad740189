"""Operators driven from a script in headless bpy with unusual scene and object settings (audit2, part 5).

Scene fps_base != 1 with frame_step, an armature with a parent and a non-identity transform. Tolerances: world
positions 1e-4 m where nothing may move (float32 features through FK and retargeting), as test_operators.py.
"""

import numpy as np
import pytest
from needs import require_module

bpy = require_module("bpy")

from blender_state import world_heads  # noqa: E402
from test_operators import addon  # noqa: E402, F401 - the fixture

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, jobs, smpl22  # noqa: E402

NAMES = smpl22.JOINT_NAMES
ARMS = [j for j, n in enumerate(NAMES) if n.startswith(("left_", "right_"))
        and n.split("_", 1)[1] in ("collar", "shoulder", "elbow", "wrist")]
BELOW_NECK = [j for j in range(smpl22.INDEX["neck"]) if j not in ARMS]


def _body(plain: bool, parented: bool) -> bpy.types.Object:
    """A SALAD body playing a generation, or (``plain``) plain animation of a smooth walk, optionally parented."""
    s = bpy.context.scene.salad
    s.prompt, s.pin_feet, s.mirror_method = "a person walks forward", False, "geometric"
    assert bpy.ops.salad.generate(blocking=True) == {"FINISHED"}
    arm = bpy.data.objects["SALAD Body"]
    if plain:
        act = actions.apply_motion(arm, synthetic_walk(80), prompt="walk", bone_map="smpl22")
        for key in [k for k in act.keys() if k.startswith("salad_")]:
            del act[key]
        act.name = "Mocap"
    if parented:
        parent = bpy.data.objects.new("Rig Parent", None)
        bpy.context.scene.collection.objects.link(parent)
        parent.location, parent.rotation_euler, parent.scale = (5.0, -2.0, 0.5), (0.0, 0.0, 1.1), (1.5, 1.5, 1.5)
        arm.parent = parent
        arm.location, arm.rotation_euler = (0.3, 0.7, 0.0), (0.0, 0.0, -0.4)
    bpy.context.view_layer.update()
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    arm.select_set(True)
    bpy.context.view_layer.objects.active = arm
    return arm


@pytest.mark.parametrize("parented", [False, True], ids=["unparented", "parented"])
@pytest.mark.parametrize("plain", [False, True], ids=["generated", "animation"])
def test_mirror_arms_in_an_odd_scene(addon, plain, parented):  # noqa: F811 - the fixture
    """Mirror (arms) in a 60 / 2 = 30 fps scene with frame_step 2, of a generation (Mirror) and of plain
    animation (Edit Animation with Text): the arms swap, nothing below the neck moves in world space, the
    result starts where the source does.

    Compared at the instants shared by the scene and the model (every 3rd scene frame): in between, plain
    animation is resampled twice (keys at 30 fps → 20 fps model frames → keys at 30 fps), which moves a fast
    walk's joints by centimetres.
    """
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base, scene.frame_step = 60, 2.0, 2
    arm = _body(plain, parented)
    source = arm.animation_data.action
    lo, hi = (int(round(v)) for v in source.frame_range)
    frames = range(lo, hi + 1, 3)

    def pose(action) -> np.ndarray:  # noqa: ANN001 - a bpy Action
        arm.animation_data.action = action
        return np.stack([world_heads(arm, NAMES, f) for f in frames])

    before = pose(source)
    if plain:
        s = scene.salad
        s.real_edit, s.real_mirror, s.real_mirror_method = "MIRROR", "upper", "geometric"
        assert bpy.ops.salad.edit_real(blocking=True) == {"FINISHED"}
    else:
        assert bpy.ops.salad.mirror(side="upper", blocking=True) == {"FINISHED"}
    result = arm.animation_data.action
    edit = jobs.action_meta(result)["salad_edits"][-1]
    assert result != source and edit["mirror" if plain else "which"] == "upper"
    first, last = (int(round(v)) for v in result.frame_range)
    # every frame is kept: a generation's, and an edit of animation's (N poses → N model frames,
    # runtime/pose_count.py; the add-on keys exactly the source's scene frames)
    assert first == lo and last == hi
    after = pose(result)
    n = len(range(lo, last + 1, 3))
    assert np.abs(after[:n, BELOW_NECK] - before[:n, BELOW_NECK]).max() < 1e-4
    assert np.abs(after[:n, ARMS] - before[:n, ARMS]).max() > 0.05



def test_generate_onto_a_parented_moved_armature(addon):  # noqa: F811 - the fixture
    """Generate onto the selected armature under a rotated, scaled, moved parent in a 60 / 2 fps scene: the new
    motion starts where the armature's pelvis stands (1 cm), its bones keep their world lengths (1e-4 relative),
    and the armature's own animation is kept."""
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base, scene.frame_step = 60, 2.0, 2
    arm = _body(plain=True, parented=True)
    old = arm.animation_data.action
    scene.frame_set(scene.frame_start)
    pelvis_before = world_heads(arm, ["pelvis"], scene.frame_start)[0]
    rest = {b.name: b.length for b in arm.data.bones}
    s = scene.salad
    s.target, s.prompt = "SELECTED", "a person jumps"
    assert bpy.ops.salad.generate(blocking=True) == {"FINISHED"}
    new = arm.animation_data.action
    assert new != old and bpy.data.actions.get(old.name) == old
    lo, hi = (int(round(v)) for v in new.frame_range)
    pelvis = world_heads(arm, ["pelvis"], lo)[0]
    assert np.linalg.norm(pelvis[:2] - pelvis_before[:2]) < 0.01
    scale = float(np.cbrt(abs(np.linalg.det(np.array(arm.matrix_world)[:3, :3]))))
    for f in (lo, (lo + hi) // 2, hi):
        scene.frame_set(f)
        ev = arm.evaluated_get(bpy.context.evaluated_depsgraph_get())
        for b in ("left_knee", "spine2", "right_elbow"):
            pb = ev.pose.bones[b]
            length = np.linalg.norm(np.array(arm.matrix_world.to_3x3() @ (pb.tail - pb.head)))
            assert abs(length / (rest[b] * scale) - 1.0) < 1e-4, (b, f)
