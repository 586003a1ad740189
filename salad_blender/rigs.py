"""Rig presets (SMPL-22, Mixamo, Rigify deform bones), bone-map resolution and geometric checks.

Pure Python + numpy: works on bone-name lists and :class:`~salad_blender.retarget.RigRest`, so it is
testable without Blender. A bone map is a plain ``dict`` {SMPL-22 joint name: bone name}; presets map
all 22 joints, custom maps may leave joints out (the retargeter skips over them) but need ``pelvis``.

Left/right is checked by geometry, never trusted from names: a rig whose "left" bones sit on its
right (a mirrored import, a wrong custom map) would otherwise animate mirrored, which nobody notices
until a "wave the left hand" prompt waves the right one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from . import facing, rigify, smpl22
from .retarget import RigRest


class RigError(ValueError):
    """The armature cannot take the motion (missing bones, mirrored sides...); message says why."""


SMPL22_MAP: dict[str, str] = {n: n for n in smpl22.JOINT_NAMES}

# Mixamo names without the "mixamorig:" prefix; the prefix varies ("mixamorig1:", none...).
MIXAMO_MAP: dict[str, str] = {
    "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "spine1": "Spine",
    "left_knee": "LeftLeg", "right_knee": "RightLeg", "spine2": "Spine1", "left_ankle": "LeftFoot",
    "right_ankle": "RightFoot", "spine3": "Spine2", "left_foot": "LeftToeBase",
    "right_foot": "RightToeBase", "neck": "Neck", "left_collar": "LeftShoulder",
    "right_collar": "RightShoulder", "head": "Head", "left_shoulder": "LeftArm",
    "right_shoulder": "RightArm", "left_elbow": "LeftForeArm", "right_elbow": "RightForeArm",
    "left_wrist": "LeftHand", "right_wrist": "RightHand",
}

# Rigify (human metarig) deform bones. Note: in a *generated* Rigify rig the DEF bones follow the
# ORG/MCH bones through constraints, which override their keyframes; this preset suits deform-only
# exports of a Rigify rig (e.g. game-rig workflows) or rigs whose DEF constraints are disabled.
RIGIFY_MAP: dict[str, str] = {
    "pelvis": "DEF-spine", "left_hip": "DEF-thigh.L", "right_hip": "DEF-thigh.R",
    "spine1": "DEF-spine.001", "left_knee": "DEF-shin.L", "right_knee": "DEF-shin.R",
    "spine2": "DEF-spine.002", "left_ankle": "DEF-foot.L", "right_ankle": "DEF-foot.R",
    "spine3": "DEF-spine.003", "left_foot": "DEF-toe.L", "right_foot": "DEF-toe.R",
    "neck": "DEF-spine.004", "left_collar": "DEF-shoulder.L", "right_collar": "DEF-shoulder.R",
    "head": "DEF-spine.006", "left_shoulder": "DEF-upper_arm.L", "right_shoulder": "DEF-upper_arm.R",
    "left_elbow": "DEF-forearm.L", "right_elbow": "DEF-forearm.R", "left_wrist": "DEF-hand.L",
    "right_wrist": "DEF-hand.R",
}

# A generated Rigify rig: the motion goes onto its control rig (salad_blender/rigify.py); this map says
# where the joints are (ORG bones) and is checked like any other. Before "rigify" so auto-detect prefers it.
PRESETS: dict[str, dict[str, str]] = {"smpl22": SMPL22_MAP, "mixamo": MIXAMO_MAP,
                                      rigify.RIGIFY_CONTROL: rigify.ORG_MAP, "rigify": RIGIFY_MAP}


def _mixamo_prefixes(bone_names: Iterable[str]) -> list[str]:
    """Prefixes in front of "Hips" in this armature ("mixamorig:", "mixamorig1:", "", ...)."""
    out = []
    for name in bone_names:
        m = re.fullmatch(r"(.*?)Hips", name)
        if m is not None:
            out.append(m.group(1))
    return out or [""]


def preset_candidates(preset: str, bone_names: Iterable[str]) -> list[dict[str, str]]:
    """The concrete bone maps a preset could mean for this armature (one per Mixamo prefix)."""
    if preset not in PRESETS:
        raise RigError(f"unknown rig preset {preset!r}; known: {sorted(PRESETS)} or a custom dict")
    base = PRESETS[preset]
    if preset != "mixamo":
        return [dict(base)]
    return [{j: p + b for j, b in base.items()} for p in _mixamo_prefixes(bone_names)]


def _missing(bone_map: dict[str, str], names: set[str]) -> list[str]:
    missing = [b for b in bone_map.values() if b not in names]
    if bone_map == rigify.ORG_MAP:  # the control rig needs its controls too
        missing += [b for b in rigify.control_bones() if b not in names]
    return missing


def validate_custom_map(bone_map: dict[str, str], bone_names: Iterable[str]) -> dict[str, str]:
    """Check a custom {joint: bone} map: known joint names, bones present, pelvis mapped."""
    names = set(bone_names)
    unknown = [j for j in bone_map if j not in smpl22.INDEX]
    if unknown:
        raise RigError(
            f"bone map has unknown SMPL-22 joint names {unknown}; valid: {list(smpl22.JOINT_NAMES)}"
        )
    if "pelvis" not in bone_map:
        raise RigError("bone map must map 'pelvis' (the root bone that carries the translation)")
    dup = sorted({b for b in bone_map.values() if list(bone_map.values()).count(b) > 1})
    if dup:
        raise RigError(f"bone map uses the same bone for several joints: {dup}")
    missing = _missing(bone_map, names)
    if missing:
        raise RigError(f"armature is missing bones named in the bone map: {missing}")
    return {j: bone_map[j] for j in smpl22.JOINT_NAMES if j in bone_map}


def _refuse_generated_rigify_without_controls(names: set[str]) -> None:
    """Auto-detect fell through to the DEF preset on a generated Rigify rig (its ORG bones are all there):
    some controls are missing or renamed. Keys on its DEF bones are overridden by the rig's constraints, so
    the new Action played nothing (a renamed ``upper_arm_fk.R``: every bone stood still) — say which."""
    if all(b in names for b in rigify.ORG_MAP.values()):
        missing = [b for b in rigify.control_bones() if b not in names]
        raise RigError(
            f"armature is a generated Rigify rig but lacks the control(s) {missing} (renamed?): the motion is "
            "keyed on its FK controls (its DEF bones follow them). Rename them back, or choose the 'rigify' "
            "preset if the DEF bones' constraints are off."
        )


def resolve_bone_map(
    bone_names: Iterable[str], preset: str | dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Bone map for an armature: a named preset, a custom dict, or auto-detected (``None``/"auto").

    Returns (preset name or "custom", map). Raises :class:`RigError` listing the missing bones of the
    closest preset when nothing matches completely.
    """
    names = list(bone_names)
    nameset = set(names)
    if isinstance(preset, dict):
        return "custom", validate_custom_map(preset, names)
    presets = list(PRESETS) if preset in (None, "auto") else [preset]
    best: tuple[int, str, dict[str, str]] | None = None
    for p in presets:
        for cand in preset_candidates(p, names):
            missing = _missing(cand, nameset)
            if not missing:
                if preset in (None, "auto") and p == "rigify":
                    _refuse_generated_rigify_without_controls(nameset)
                return p, cand
            score = len(cand) - len(missing)
            if best is None or score > best[0]:
                best = (score, p, cand)
    assert best is not None
    score, p, cand = best
    missing = _missing(cand, nameset)
    if score == 0:
        shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
        raise RigError(
            f"armature matches no rig preset ({', '.join(presets)}); its bones: {shown}. "
            "Pass a custom bone map {SMPL-22 joint: bone}."
        )
    raise RigError(
        f"armature looks like a {p!r} rig but is missing {len(missing)} bone(s): {missing}. "
        "Rename them or pass a custom bone map."
    )


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-12 else v


def rig_frame(rig: RigRest, bone_map: dict[str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(up, forward, left, how) of a rig in world space, judged without trusting side names.

    Up: pelvis -> highest mapped centre joint. Forward: the feet (ankle -> toe), averaged over both
    sides so a mirror swap does not change it; without feet, Blender's -Y. Left = up x forward.
    """
    pos = rig.joint_heads_world(bone_map)
    top = next((j for j in ("head", "neck", "spine3", "spine2", "spine1") if j in pos), None)
    up = _unit(pos[top] - pos["pelvis"]) if top else np.array([0.0, 0.0, 1.0])
    feet = [pos[f"{s}_foot"] - pos[f"{s}_ankle"] for s in ("left", "right")
            if f"{s}_foot" in pos and f"{s}_ankle" in pos]
    fwd = np.mean(feet, axis=0) if feet else np.array([0.0, -1.0, 0.0])
    how = "its feet" if feet else "Blender's -Y convention"
    fwd = fwd - up * np.dot(fwd, up)
    if np.linalg.norm(fwd) < 1e-9:
        raise RigError("cannot tell which way the rig faces: its feet point along its spine")
    fwd = _unit(fwd)
    return up, fwd, np.cross(up, fwd), how


def check_sides(rig: RigRest, bone_map: dict[str, str]) -> None:
    """Raise :class:`RigError` unless every left_* bone lies on the rig's left and right_* on its right.

    Sides are measured across the rig's own facing (:func:`rig_frame`) relative to the pelvis, in
    world space (object transforms included).
    """
    pos = rig.joint_heads_world(bone_map)
    _, fwd, left, how = rig_frame(rig, bone_map)
    bad = []
    for joint, p in pos.items():
        side = joint.split("_", 1)[0]
        if side not in ("left", "right"):
            continue
        lateral = float(np.dot(p - pos["pelvis"], left))
        if (side == "left" and lateral <= 0.0) or (side == "right" and lateral >= 0.0):
            other = "right" if side == "left" else "left"
            bad.append(f"{joint!r} -> bone {bone_map[joint]!r} lies on the rig's {other} side")
    if bad:
        f = ", ".join(f"{c:+.2f}" for c in fwd)
        raise RigError(
            "left/right mismatch (rig faces (" + f + f") judged from {how}): " + "; ".join(bad)
            + ". The bone map or the armature is mirrored; fix the map (swap .L/.R) or the rig."
        )


# ----------------------------------------------------------------------------------------------------
# SMPL-22 rest pose for our own armature
# ----------------------------------------------------------------------------------------------------

# Stylised T-pose offsets from each joint's parent, Blender space (Z up, facing -Y, left +X), metres.
_TPOSE_OFFSETS: dict[str, tuple[float, float, float]] = {
    "pelvis": (0.0, 0.0, 0.96),
    "left_hip": (0.09, 0.0, -0.08), "right_hip": (-0.09, 0.0, -0.08), "spine1": (0.0, 0.0, 0.11),
    "left_knee": (0.0, 0.0, -0.40), "right_knee": (0.0, 0.0, -0.40), "spine2": (0.0, 0.0, 0.13),
    "left_ankle": (0.0, 0.0, -0.41), "right_ankle": (0.0, 0.0, -0.41), "spine3": (0.0, 0.0, 0.06),
    "left_foot": (0.0, -0.12, -0.05), "right_foot": (0.0, -0.12, -0.05), "neck": (0.0, 0.0, 0.21),
    "left_collar": (0.08, 0.0, 0.12), "right_collar": (-0.08, 0.0, 0.12), "head": (0.0, 0.0, 0.09),
    "left_shoulder": (0.12, 0.0, 0.03), "right_shoulder": (-0.12, 0.0, 0.03),
    "left_elbow": (0.26, 0.0, 0.0), "right_elbow": (-0.26, 0.0, 0.0),
    "left_wrist": (0.25, 0.0, 0.0), "right_wrist": (-0.25, 0.0, 0.0),
}


def tpose_offsets() -> np.ndarray:
    """Canonical T-pose offsets [22, 3] from each joint's parent (row 0: pelvis position)."""
    return np.array([_TPOSE_OFFSETS[n] for n in smpl22.JOINT_NAMES], dtype=np.float64)


def offsets_to_positions(offsets: np.ndarray) -> np.ndarray:
    """Accumulate parent offsets [22, 3] into positions [22, 3]."""
    pos = np.zeros_like(offsets)
    for j, p in enumerate(smpl22.PARENTS):
        pos[j] = offsets[j] if p == -1 else pos[p] + offsets[j]
    return pos


def tpose_joints() -> np.ndarray:
    """Canonical SMPL-22 T-pose joint positions [22, 3] in Blender space (floor at z = 0)."""
    return offsets_to_positions(tpose_offsets())


def tpose_joints_from_motion(joints_blender: np.ndarray) -> np.ndarray:
    """A T-pose [22, 3] (Blender space) with the motion's own proportions.

    Single-child segments: canonical T-pose direction, the motion's median length. Children of the
    branching joints (pelvis, spine3): the motion's median offsets after aligning each frame to the
    canonical directions, so the rest shape is congruent with the motion and Kabsch fits it exactly;
    the hips are then turned about Z to lie exactly along X (the armature faces -Y exactly).
    The pelvis height puts the lowest joint at the motion's median lowest-joint height.
    """
    from .retarget import kabsch, rotation_z

    p = np.asarray(joints_blender, dtype=np.float64)
    tmpl = tpose_offsets()
    off = np.zeros_like(tmpl)
    for j in range(1, smpl22.NUM_JOINTS):
        par = smpl22.PARENTS[j]
        sib = smpl22.children(par)
        if len(sib) == 1:
            length = float(np.median(np.linalg.norm(p[:, j] - p[:, par], axis=-1)))
            off[j] = tmpl[j] / np.linalg.norm(tmpl[j]) * length
    for par in (0, 9):
        sib = smpl22.children(par)
        frame_off = p[:, sib] - p[:, par][:, None]  # [T, k, 3]
        src = tmpl[sib] / np.linalg.norm(tmpl[sib], axis=-1, keepdims=True)
        dst = frame_off / np.linalg.norm(frame_off, axis=-1, keepdims=True)
        r = kabsch(src, dst)  # template -> frame
        local = np.median(frame_off @ r, axis=0)  # r^T applied to each offset
        if par == 0:
            # turn the pelvis to face -Y (its left hip on +X), like the template
            heading = facing.heading(facing.forward(local[sib.index(1)], local[sib.index(2)]))
            local = local @ rotation_z(-heading).T
        off[sib] = local
    rel = offsets_to_positions(off)
    floor = float(np.median(p[..., 2].min(axis=1)))
    rel[:, 2] += floor - rel[:, 2].min()
    return rel
