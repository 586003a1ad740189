"""Generated Rigify rigs: the motion goes onto the control rig and plays (checked after depsgraph evaluation).

The fixture tests/data/rigify_human.blend is Rigify's Human metarig generated in Blender 4.3.2 (see
tests/data/README.md). What the mesh follows are the DEF bones; they are driven by constraints from the
controls, so these tests read the *evaluated* DEF/ORG bones, never the keys.

Tolerances: segment directions 0.05 degrees and the hips' midpoint 1 mm (measured: 0.00 degrees and
< 0.001 mm; float32 keys and Blender's float32 constraint maths are the only error sources). The motion
is compared at 24 fps scene frames that fall on the model's 20 fps frames (every 6th), so no
interpolation enters the comparison.
"""

import numpy as np
import pytest
from needs import require_module
from testdata import DATA

from salad_blender import rigify, rigs, smpl22

RIG_FILE = DATA / "rigify_human.blend"

# (name, DEF bone at the segment's start, DEF bone at its end, SMPL-22 joints of the segment)
SEGMENTS = [
    ("left thigh", "DEF-thigh.L", "DEF-shin.L", "left_hip", "left_knee"),
    ("right shin", "DEF-shin.R", "DEF-foot.R", "right_knee", "right_ankle"),
    ("left foot", "DEF-foot.L", "DEF-toe.L", "left_ankle", "left_foot"),
    ("left upper arm", "DEF-upper_arm.L", "DEF-forearm.L", "left_shoulder", "left_elbow"),
    ("right forearm", "DEF-forearm.R", "DEF-hand.R", "right_elbow", "right_wrist"),
    ("left collar", "DEF-shoulder.L", "DEF-upper_arm.L", "left_collar", "left_shoulder"),
    ("lower spine", "DEF-spine.001", "DEF-spine.002", "spine1", "spine2"),
    ("chest", "DEF-spine.003", "DEF-spine.004", "spine3", "neck"),
    ("neck", "DEF-spine.004", "DEF-spine.006", "neck", "head"),
    ("hips", "DEF-thigh.R", "DEF-thigh.L", "right_hip", "left_hip"),
]


def test_detection_needs_controls_and_org_bones():
    """Auto-detect picks the control rig for a generated rig; a metarig or a deform-only export is not one."""
    generated = [*rigify.ORG_MAP.values(), *rigify.control_bones(), *rigs.RIGIFY_MAP.values(), "root", "MCH-x"]
    assert rigs.resolve_bone_map(generated) == (rigify.RIGIFY_CONTROL, rigify.ORG_MAP)
    assert rigs.resolve_bone_map(generated, "rigify")[0] == "rigify"  # the deform preset still on request
    assert rigify.is_generated_rigify(generated) and not rigify.missing_bones(generated)
    deform_only = list(rigs.RIGIFY_MAP.values())
    assert rigs.resolve_bone_map(deform_only)[0] == "rigify"
    assert not rigify.is_generated_rigify(deform_only)
    no_fk = [b for b in generated if b != "forearm_fk.L"]
    assert rigify.missing_bones(no_fk) == ["forearm_fk.L"]
    with pytest.raises(rigs.RigError, match="forearm_fk.L"):
        rigs.resolve_bone_map(no_fk, rigify.RIGIFY_CONTROL)
    # auto-detect fell back to the DEF preset: keys its constraints override (the Action played nothing)
    with pytest.raises(rigs.RigError, match=r"generated Rigify rig but lacks the control\(s\) \['forearm_fk.L'\]"):
        rigs.resolve_bone_map(no_fk)
    assert rigs.resolve_bone_map(no_fk, "rigify")[0] == "rigify"  # on request it still goes onto the DEF bones
    assert rigify.is_generated_rigify(["torso", "spine"], rig_id="abc123")  # Rigify's own mark


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, -1), -1.0, 1.0)))


@pytest.fixture
def rigify_rig():
    bpy = require_module("bpy")
    bpy.ops.wm.open_mainfile(filepath=str(RIG_FILE))
    rig = bpy.data.objects["rig"]
    assert rig.data.get("rig_id"), "the fixture is a generated Rigify rig"
    return rig


def evaluated_heads(rig, names: list[str], frame: int) -> np.ndarray:  # noqa: ANN001
    """World heads [k, 3] of bones after a depsgraph evaluation at ``frame`` (constraints and drivers run)."""
    import bpy

    bpy.context.scene.frame_set(frame)
    ev = rig.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mw = np.array(ev.matrix_world)
    return np.array([tuple(ev.pose.bones[n].head) for n in names]) @ mw[:3, :3].T + mw[:3, 3]


def check_plays(rig, walk: np.ndarray, action, start: int = 1) -> None:  # noqa: ANN001
    """The DEF bones reproduce the motion: segment directions and the hips' midpoint path."""
    from salad_blender import actions

    res = actions.prepare_retarget(rig, walk, fps=20.0)  # placement of the same motion on the same rig
    target = res.placement.apply(smpl22.model_to_blender(walk))  # world, model frames
    assert rig.animation_data.action == action
    names = sorted({n for s in SEGMENTS for n in s[1:3]})
    idx = {n: i for i, n in enumerate(names)}
    j = smpl22.INDEX
    worst = {s[0]: 0.0 for s in SEGMENTS}
    hips = []
    for model_frame in range(0, len(walk), 5):
        h = evaluated_heads(rig, names, start + model_frame * 6 // 5)  # 24 fps frame at the same time
        t = target[model_frame]
        for name, b0, b1, j0, j1 in SEGMENTS:
            worst[name] = max(worst[name], float(_angle(h[idx[b1]] - h[idx[b0]], t[j[j1]] - t[j[j0]])))
        hips.append(np.linalg.norm(0.5 * (h[idx["DEF-thigh.L"]] + h[idx["DEF-thigh.R"]])
                                   - 0.5 * (t[j["left_hip"]] + t[j["right_hip"]])))
    assert max(worst.values()) < 0.05, worst
    assert max(hips) < 1e-3


def test_motion_plays_on_the_control_rig(rigify_rig, walk):
    """Auto-detect → control rig; after evaluation the DEF bones follow the walk; the old action survives."""
    import bpy

    from salad_blender import actions, jobs

    rig = rigify_rig
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    assert jobs.check_rig(rig, "auto")[0] == rigify.RIGIFY_CONTROL
    mine = bpy.data.actions.new("my keys")
    rig.animation_data_create().action = mine
    walk = walk[:96]
    act = actions.apply_motion(rig, walk, prompt="walk", scene=scene, meta={"rig": rigify.RIGIFY_CONTROL})
    assert act.get("salad_rig") == rigify.RIGIFY_CONTROL and act != mine and mine.use_fake_user
    paths = {fc.data_path for fc in actions.action_fcurves(act)}
    for control in ("torso", "spine_fk", "thigh_fk.L", "upper_arm_fk.R", "head"):
        assert f'pose.bones["{control}"].rotation_quaternion' in paths
    assert 'pose.bones["torso"].location' in paths
    assert not any('"DEF-' in p or '"ORG-' in p or '"MCH-' in p for p in paths)  # never the driven bones
    assert 'pose.bones["upper_arm_parent.L"]["IK_FK"]' in paths and 'pose.bones["torso"]["head_follow"]' in paths
    check_plays(rig, walk, act)
    # The property keys live in the new action only: the rig's stored switches are what the action plays.
    assert rig.pose.bones["thigh_parent.R"]["IK_FK"] == pytest.approx(1.0)


def test_a_posed_rig_in_ik_mode_still_plays(rigify_rig, walk):
    """Stale poses on the unkeyed hips/chest/tweak/root controls and IK mode do not leak into the result."""
    import bpy

    from salad_blender import actions

    rig = rigify_rig
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    pb = rig.pose.bones
    pb["hips"].rotation_quaternion = (0.9, 0.3, 0.2, 0.1)
    pb["chest"].rotation_quaternion = (0.9, -0.2, 0.3, 0.0)
    pb["tweak_spine.003"].location = (0.02, 0.03, 0.0)
    pb["root"].location = (0.5, 0.0, 0.0)
    pb["upper_arm_parent.L"]["IK_FK"] = 0.0  # IK mode, as a rig starts
    pb["torso"]["head_follow"] = 0.0
    before = {n: tuple(pb[n].rotation_quaternion) for n in ("hips", "chest")}
    act = actions.apply_motion(rig, walk[:60], prompt="walk", scene=scene)
    assert {n: tuple(pb[n].rotation_quaternion) for n in ("hips", "chest")} == before  # pose not reset
    check_plays(rig, walk[:60], act)


# (limb, DEF bone at the hip/shoulder, at the knee/elbow, at the ankle/wrist)
LIMB_JOINTS = [(f"{limb}.{s}", f"DEF-{a}.{s}", f"DEF-{b}.{s}", f"DEF-{c}.{s}")
               for s in ("L", "R") for limb, a, b, c in (("arm", "upper_arm", "forearm", "hand"),
                                                          ("leg", "thigh", "shin", "foot"))]


def _limb_heads(rig, frames: list[int]) -> np.ndarray:  # noqa: ANN001
    """World heads [frames, limbs, 3 joints, 3] of the DEF limb bones after evaluation."""
    names = [n for limb in LIMB_JOINTS for n in limb[1:]]
    return np.stack([evaluated_heads(rig, names, f).reshape(len(LIMB_JOINTS), 3, 3) for f in frames])


def _bend(h: np.ndarray) -> np.ndarray:
    """The knee/elbow's offset from the hip→ankle line [..., 3] (which way the joint bends)."""
    chord = h[..., 2, :] - h[..., 0, :]
    chord = chord / np.linalg.norm(chord, axis=-1, keepdims=True)
    off = h[..., 1, :] - h[..., 0, :]
    return off - chord * np.sum(off * chord, axis=-1, keepdims=True)


@pytest.mark.parametrize("cyclic", [0, 6])
def test_flipping_the_limbs_to_ik_keeps_the_pose(rigify_rig, walk, cyclic):
    """The IK controls are keyed where FK puts the hands and feet: switching IK_FK to IK keeps the pose.

    Tolerances: hands and feet 1 cm (measured 0.2 mm); the knee/elbow bend direction 1 degree (measured
    0.0004; a flipped knee is ~180); knees and elbows 3 cm (measured 2.1 cm at a near-straight knee:
    the rig's IK bones have IK Stretch 0.1 and Blender's solver shortens them ~1 % instead of bending,
    the same for any IK pose, so the knee sits a little straighter than in FK). A loop (Make Cyclic)
    is checked on into its second cycle, where the IK controls' Cycles modifiers carry the travel.
    """
    import bpy

    from salad_blender import actions

    rig = rigify_rig
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    act = actions.apply_motion(rig, walk[:96], prompt="walk", scene=scene, cyclic_blend=cyclic)
    paths = {fc.data_path for fc in actions.action_fcurves(act)}
    for bone in ("hand_ik.L", "foot_ik.R", "thigh_ik_target.L", "upper_arm_ik_target.R"):
        assert f'pose.bones["{bone}"].location' in paths
    frames = list(range(1, 221 if cyclic else 111, 11))
    fk = _limb_heads(rig, frames)
    switched = 0
    for fc in actions.action_fcurves(act):
        if fc.data_path.endswith('["IK_FK"]'):
            fc.keyframe_points[0].co.y = 0.0  # what the animator does: the limb to IK
            switched += 1
    assert switched == 4
    ik = _limb_heads(rig, frames)
    assert rig.pose.bones["thigh_parent.L"]["IK_FK"] == pytest.approx(0.0)
    err = np.linalg.norm(ik - fk, axis=-1)  # [frames, limbs, joints]
    worst = {LIMB_JOINTS[i][0]: err[:, i].max(axis=0).round(4).tolist() for i in range(len(LIMB_JOINTS))}
    assert err[..., 2].max() < 0.01, worst  # hands and feet
    assert err[..., 1].max() < 0.03, worst  # knees and elbows
    assert float(_angle(_bend(ik), _bend(fk)).max()) < 1.0


def test_ik_limbs_are_found_by_the_rigs_pole_names():
    """Pole targets are detected under the current and the 0.5x names; a limb lacking a control is skipped."""
    from salad_blender import rigify_ik

    def limb_bones(upper: str, mid: str, end: str, s: str, pole: str) -> list[str]:
        return [f"{upper}_fk.{s}", f"{mid}_fk.{s}", f"{end}_fk.{s}", f"ORG-{end}.{s}", f"{end}_ik.{s}",
                f"{upper}_parent.{s}", pole]

    names = (limb_bones("thigh", "shin", "foot", "L", "thigh_ik_target.L")
             + limb_bones("thigh", "shin", "foot", "R", "knee_target.ik.R")
             + limb_bones("upper_arm", "forearm", "hand", "L", "upper_arm_ik_target.L")[:-2])  # no pole, no switch
    limbs = rigify_ik.find_limbs(names)
    assert [(lb.end_ik, lb.pole) for lb in limbs] == [("foot_ik.L", "thigh_ik_target.L"),
                                                       ("foot_ik.R", "knee_target.ik.R")]
    assert ("thigh_parent.R", "pole_vector", 1.0) in rigify_ik.switches(limbs)


def test_cropping_a_result_crops_its_ik_keys():
    """An edited real clip is cropped to its scene frames: the IK keys must stop where the FK keys stop."""
    from salad_blender import retarget as rt

    rng = np.random.default_rng(0)
    q = rng.normal(size=(10, 2, 4))
    ik = {"hand_ik.L": (rng.normal(size=(10, 4)), rng.normal(size=(10, 3)))}
    res = rt.RetargetResult(["a", "b"], q, "a", np.zeros((10, 3)), 24.0, rt.Placement(), ik_keys=ik)
    cut = res.cropped(4)
    assert cut.num_frames == 4
    np.testing.assert_array_equal(cut.ik_keys["hand_ik.L"][0], ik["hand_ik.L"][0][:4])
    np.testing.assert_array_equal(cut.ik_keys["hand_ik.L"][1], ik["hand_ik.L"][1][:4])


def test_a_stale_pose_on_the_ik_side_does_not_leak_into_the_flipped_limbs(rigify_rig, walk):
    """A scaled or moved ``thigh_ik`` / ``upper_arm_ik`` and a scaled ``foot_ik`` (a left-over pose or an
    older action's keys) are keyed at rest in the new action, so flipping IK_FK to IK keeps the pose.

    Before: the flipped knee moved 15 cm, the elbow 9 cm, the toe 3 cm. Tolerances as in
    test_flipping_the_limbs_to_ik_keeps_the_pose (ends 1 cm, knees/elbows 3 cm); the toe's head 1 cm.
    The user's pose itself is left alone.
    """
    import bpy

    from salad_blender import actions

    rig = rigify_rig
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    pb = rig.pose.bones
    pb["thigh_ik.L"].scale = (1.3, 0.8, 1.3)
    pb["upper_arm_ik.R"].location = (0.05, 0.02, -0.03)
    pb["foot_ik.R"].scale = (1.3, 1.3, 1.3)
    act = actions.apply_motion(rig, walk[:60], prompt="walk", scene=scene)
    assert tuple(pb["thigh_ik.L"].scale) == pytest.approx((1.3, 0.8, 1.3))  # the user's pose is not reset
    frames = [1, 25, 49, 73]
    toes = ["DEF-toe.L", "DEF-toe.R"]
    fk, fk_toes = _limb_heads(rig, frames), np.stack([evaluated_heads(rig, toes, f) for f in frames])
    for fc in actions.action_fcurves(act):
        if fc.data_path.endswith('["IK_FK"]'):
            fc.keyframe_points[0].co.y = 0.0
    ik, ik_toes = _limb_heads(rig, frames), np.stack([evaluated_heads(rig, toes, f) for f in frames])
    err = np.linalg.norm(ik - fk, axis=-1)
    assert err[..., 2].max() < 0.01 and err[..., 1].max() < 0.03, err.max(axis=0).round(3).tolist()
    assert np.linalg.norm(ik_toes - fk_toes, axis=-1).max() < 0.01
