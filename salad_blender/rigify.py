"""Generated Rigify rigs: retarget onto the control rig, so the result plays (pure numpy, no bpy).

Why: in a generated Rigify rig the DEF- bones (what the mesh follows) copy ORG/tweak bones through
constraints, and those follow the animator's controls; keys written to DEF bones are overridden.
So the motion is keyed on the controls animators use: ``torso`` (root motion and the body's turn), the
FK spine (``spine_fk``, ``spine_fk.001`` … ``.003``), ``neck``, ``head``, ``shoulder.L/R`` and the FK limb
controls (``upper_arm_fk``, ``forearm_fk``, ``hand_fk``, ``thigh_fk``, ``shin_fk``, ``foot_fk``, ``toe_fk``),
and the rig's switches are keyed in the same new Action: limbs to FK (``IK_FK`` = 1 on the
``*_parent`` controls), the FK limbs following their parent (``FK_limb_follow`` = 0), neck and head
following the spine (``neck_follow`` = ``head_follow`` = 1 on ``torso``).
The IK controls are keyed to the same pose (:mod:`salad_blender.rigify_ik`), so a limb flipped to IK
stays where it is.

With those switches, the hips/chest controls, the tweaks and the root at rest, every MCH bone between
two keyed controls is a rigid child (its constraints have zero influence or copy an identity), so the
pose is plain forward kinematics of the keyed controls. Each control takes the armature-space
rotation of the SMPL-22 segment it moves (:func:`retarget.joint_deltas` on the ORG bones, which sit
where the DEF bones are); ``torso``'s location puts the midpoint of the hips where the motion's is.
The spine below the torso pivot is a reversed chain (``spine_fk.001`` hangs down from the pivot and
carries ``spine_fk``, the pelvis), which this handles because only armature-space rotations are matched.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from . import retarget as rt
from . import smpl22
from .rigify_ik import posed_matrices

RIGIFY_CONTROL = "rigify_control"  # the rig preset name (metadata, UI, bone-map resolution)

_SPINE = {"pelvis": "spine", "spine1": "spine.001", "spine2": "spine.002", "spine3": "spine.003",
          "neck": "spine.004", "head": "spine.006"}
_SIDE = {"hip": "thigh", "knee": "shin", "ankle": "foot", "foot": "toe", "collar": "shoulder",
         "shoulder": "upper_arm", "elbow": "forearm", "wrist": "hand"}


def _org_map() -> dict[str, str]:
    out = {j: f"ORG-{b}" for j, b in _SPINE.items()}
    for side, s in (("left", "L"), ("right", "R")):
        for joint, bone in _SIDE.items():
            out[f"{side}_{joint}"] = f"ORG-{bone}.{s}"
    return {j: out[j] for j in smpl22.JOINT_NAMES}


# Where the SMPL-22 joints are on the rig: ORG bone heads (the DEF bones start at the same points).
ORG_MAP: dict[str, str] = _org_map()

# (control, SMPL-22 joint whose segment rotation it takes), parents before children.
CONTROLS: tuple[tuple[str, str], ...] = (
    ("torso", "pelvis"), ("spine_fk.001", "spine1"), ("spine_fk", "pelvis"), ("spine_fk.002", "spine2"),
    ("spine_fk.003", "spine3"), ("neck", "neck"), ("head", "head"),
    *((f"{bone}.{s}", f"{side}_{joint}") for side, s in (("left", "L"), ("right", "R"))
      for bone, joint in (("shoulder", "collar"), ("upper_arm_fk", "shoulder"), ("forearm_fk", "elbow"),
                          ("hand_fk", "wrist"), ("thigh_fk", "hip"), ("shin_fk", "knee"), ("foot_fk", "ankle"),
                          ("toe_fk", "foot"))),
)
ROOT_CONTROL = "torso"

# Switches keyed in the new action: (bone, custom property, value). Only those the rig has are keyed.
SWITCHES: tuple[tuple[str, str, float], ...] = (
    *((f"{limb}_parent.{s}", prop, value) for limb in ("upper_arm", "thigh") for s in ("L", "R")
      for prop, value in (("IK_FK", 1.0), ("FK_limb_follow", 0.0))),
    ("torso", "neck_follow", 1.0), ("torso", "head_follow", 1.0),
)

# Unkeyed controls whose pose the rigid chain assumes at rest (they act through constraints or parents).
AT_REST = ("root", "hips", "chest")


def control_bones() -> list[str]:
    return [c for c, _ in CONTROLS]


def missing_bones(bone_names: Iterable[str]) -> list[str]:
    """Bones a generated Rigify human rig has and this one lacks (empty: it is one)."""
    names = set(bone_names)
    return [b for b in [*ORG_MAP.values(), *control_bones()] if b not in names]


def is_generated_rigify(bone_names: Iterable[str], rig_id: str | None = None) -> bool:
    """A generated Rigify rig: its armature has Rigify's ``rig_id`` or the human controls and ORG bones."""
    names = list(bone_names)
    return (bool(rig_id) and "torso" in names) or not missing_bones(names)


def rest_bones(bone_names: Iterable[str]) -> list[str]:
    """Unkeyed bones whose stale pose would offset the motion: the root, hips, chest and every tweak."""
    return [b for b in bone_names if b in AT_REST or "tweak" in b]


def _alias(name: str, keyed: set[str]) -> str:
    """The keyed control an ORG bone copies (``ORG-shoulder.L`` copies ``shoulder.L``: same rest, Copy
    Transforms in world space), else the bone itself."""
    return name[4:] if name.startswith("ORG-") and name[4:] in keyed else name


def _nearest_keyed(rig: rt.RigRest, bone: str, keyed: set[str]) -> str | None:
    """The keyed control whose pose carries ``bone`` (through its parents; ORG copies count as the control)."""
    p = int(rig.parents[rig.index[bone]])
    while p != -1 and _alias(rig.bone_names[p], keyed) not in keyed:
        p = int(rig.parents[p])
    return None if p == -1 else _alias(rig.bone_names[p], keyed)


def _above_hips(heads: np.ndarray, rise: float | np.ndarray) -> np.ndarray:
    """The SMPL pelvis of SMPL-22 joints [..., 22, 3] read at a Rigify rig's ORG heads: ``rise`` above the hips'
    midpoint towards spine1. Why spine1: the hips and spine1 move with the pelvis bone, so this point does too
    (the neck, used before, bends with the spine): sampled and retargeted again, the pelvis fit is exact."""
    i = smpl22.INDEX
    mid = 0.5 * (heads[..., i["left_hip"], :] + heads[..., i["right_hip"], :])
    up = heads[..., i["spine1"], :] - mid
    return mid + up / np.linalg.norm(up, axis=-1, keepdims=True) * np.asarray(rise)[..., None]


def smpl_pelvis(world: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Joints [F, 22, 3] sampled at a Rigify rig's ORG heads (``rest``: the same at rest, [22, 3]) with the SMPL
    pelvis: above the hips as far as the rig's spine starts below them (Rigify's ORG-spine head is below the hip
    joints, the SMPL pelvis above: a source read at that head came back from a continuation or part regeneration
    with the upper body shifted 84 mm against the legs)."""
    i = smpl22.INDEX
    rise = float(np.linalg.norm(rest[i["pelvis"]] - 0.5 * (rest[i["left_hip"]] + rest[i["right_hip"]])))
    out = np.array(world, dtype=np.float64)
    out[:, i["pelvis"]] = _above_hips(out, rise)
    return out


def _pelvis_rest(rig: rt.RigRest, posed: np.ndarray) -> np.ndarray:
    """A rest point for the SMPL pelvis: above the hips' midpoint as far as the motion's pelvis is.

    Rigify's spine starts below the hip joints; the SMPL pelvis sits above them. Using the ORG-spine
    head would tilt the pelvis fit (Kabsch over hips and spine1) and put the legs too low.
    """
    rest = np.array([rig.heads[rig.index[ORG_MAP[j]]] for j in smpl22.JOINT_NAMES])
    i = smpl22.INDEX
    rise = np.median(np.linalg.norm(posed[:, i["pelvis"]] - 0.5 * (posed[:, i["left_hip"]] + posed[:, i["right_hip"]]),
                                    axis=-1))
    return _above_hips(rest, float(rise))


def retarget_control_rig(joints_model: np.ndarray, rig: rt.RigRest, *, placement: rt.Placement | None = None,
                         fps: float = smpl22.FPS) -> rt.RetargetResult:
    """Model-space joints [T, 22, 3] → rotations of the Rigify controls and ``torso``'s location.

    ``rig`` must be a generated Rigify human rig (:func:`missing_bones` empty). ``placement`` defaults
    to :func:`retarget.auto_placement` on the ORG bones.
    """
    joints_model = np.asarray(joints_model, dtype=np.float64)
    if joints_model.ndim != 3 or joints_model.shape[1:] != (smpl22.NUM_JOINTS, 3):
        raise ValueError(f"expected joints of shape [T, 22, 3], got {list(joints_model.shape)}")
    missing = missing_bones(rig.bone_names)
    if missing:
        raise ValueError(f"not a generated Rigify human rig: missing {missing[:8]}")
    joints_bl = smpl22.model_to_blender(joints_model)
    if placement is None:
        placement = rt.auto_placement(rig, ORG_MAP, joints_bl)
    inv = np.linalg.inv(rig.world)
    posed = placement.apply(joints_bl) @ inv[:3, :3].T + inv[:3, 3]  # armature space [T, 22, 3]

    rest_joints = np.array([rig.heads[rig.index[ORG_MAP[j]]] for j in smpl22.JOINT_NAMES])
    rest_joints[smpl22.INDEX["pelvis"]] = _pelvis_rest(rig, posed)
    deltas = rt.joint_deltas(rest_joints, posed, ORG_MAP)
    # The chest's fit over neck and collars is a compromise (Rigify's clavicles start in front of the
    # chest); turn it minimally so the neck's direction is exact, keeping the fit's twist.
    i3, i_neck = smpl22.INDEX["spine3"], smpl22.INDEX["neck"]
    d3 = deltas[i3]
    deltas[i3] = rt.swing(d3 @ (rest_joints[i_neck] - rest_joints[i3]), posed[:, i_neck] - posed[:, i3]) @ d3

    t = len(joints_model)
    eye = np.broadcast_to(np.eye(3), (t, 3, 3))
    keyed = set(control_bones())
    delta = {c: deltas[smpl22.INDEX[j]] for c, j in CONTROLS}
    mats = []
    for control, _ in CONTROLS:
        b = rig.index[control]
        a = _nearest_keyed(rig, control, keyed)
        da = delta[a] if a is not None else eye
        rb = rig.rest[b, :3, :3]
        mats.append(rb.T @ np.swapaxes(da, -1, -2) @ delta[control] @ rb)
    quats = rt.quat_continuity(rt.quat_from_matrix(np.stack(mats, axis=1)), axis=0)
    names = control_bones()
    result = rt.RetargetResult(names, quats, ROOT_CONTROL, np.zeros((t, 3)), float(fps), placement)

    # torso's location: move the whole body so the hips' midpoint lands on the motion's.
    heads = posed_matrices(rig, result, [ORG_MAP["left_hip"], ORG_MAP["right_hip"]])[..., :3, 3]
    want = 0.5 * (posed[:, smpl22.INDEX["left_hip"]] + posed[:, smpl22.INDEX["right_hip"]])
    shift = want - heads.mean(axis=1)
    result.root_location = shift @ rig.rest[rig.index[ROOT_CONTROL], :3, :3]
    return result
