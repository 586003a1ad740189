"""Rigify IK controls that reproduce the keyed FK pose (pure numpy, no bpy).

Why: the control-rig result plays in FK. An animator who flips a limb's ``IK_FK`` to IK (the usual way
to fix a foot contact) must see the same pose, not the limb snapping to IK controls left at rest. So
for every keyed frame the hand / foot IK controls are put where the FK hand / foot are, and the pole
targets on the limb's plane in front of the elbow / knee.

How, per limb (``upper``/``mid``/``end`` = upper_arm/forearm/hand or thigh/shin/foot):

- the FK pose comes from forward kinematics of the result's keyed controls (an ``ORG-x`` bone copies
  the keyed control ``x``, so its pose is that control's);
- ``ORG-end`` in IK mode copies an IK bone rigidly attached under ``end_ik`` with ``ORG-end``'s rest
  (the heel/roll/spin controls at rest), so ``end_ik`` moves rigidly with the FK end bone:
  ``pose(end_ik) = pose(end_fk) @ rest(ORG-end)^-1 @ rest(end_ik)``;
- the pole keeps its rest offset from the knee/elbow in the frame of the limb's triangle (hip→ankle,
  the bend, their normal), so it lies on the limb's plane in front of the joint, and whatever pole
  angle the rig's IK uses, the solve that gave the rest pose gives the posed one; a straight limb
  (no bend to read) turns the offset with the upper bone;
- the limb's switches are keyed so these controls mean what they say: ``IK_parent`` and
  ``pole_parent`` = 1 (Rigify's *Root*, the first entry after *None*) so both controls' parents stay at
  rest (the root is keyed at rest), and ``pole_vector`` = 1 so the IK uses the pole (without it the
  knee's direction would come from the ``thigh_ik`` rotation, which Blender's solver maps nonlinearly).

A control's pose-bone channels then follow from ``pose = rest @ basis`` (location axes: see :func:`ik_keys`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import retarget as rt

LIMBS = (("upper_arm", "forearm", "hand"), ("thigh", "shin", "foot"))
SIDES = ("L", "R")
# Pole target names across Rigify versions: current (``thigh_ik_target``), 0.5x (``knee_target.ik``).
POLE_NAMES = ("{upper}_ik_target.{s}", "{upper}_ik_pole.{s}", "{joint}_target.ik.{s}")
_OLD_JOINT = {"upper_arm": "elbow", "thigh": "knee"}
ROOT_PARENT = 1.0  # Rigify's switchable parents: 0 None, 1 Root, 2 Torso ...


@dataclass(frozen=True)
class Limb:
    """The bones of one limb's FK and IK sides in a generated rig."""

    upper_fk: str
    mid_fk: str
    end_fk: str
    org_end: str
    end_ik: str
    pole: str
    switch_bone: str  # the ``*_parent`` bone holding IK_FK, IK_parent, pole_parent, pole_vector


def find_limbs(bone_names: list[str]) -> list[Limb]:
    """The limbs whose FK, IK and pole controls the rig has (a limb missing any is left out)."""
    names = set(bone_names)
    out = []
    for upper, mid, end in LIMBS:
        for s in SIDES:
            poles = [p.format(upper=upper, joint=_OLD_JOINT[upper], s=s) for p in POLE_NAMES]
            pole = next((p for p in poles if p in names), None)
            limb = Limb(f"{upper}_fk.{s}", f"{mid}_fk.{s}", f"{end}_fk.{s}", f"ORG-{end}.{s}", f"{end}_ik.{s}",
                        pole or "", f"{upper}_parent.{s}")
            if pole and all(b in names for b in (limb.upper_fk, limb.mid_fk, limb.end_fk, limb.org_end,
                                                 limb.end_ik, limb.switch_bone)):
                out.append(limb)
    return out


def switches(limbs: list[Limb]) -> list[tuple[str, str, float]]:
    """(bone, property, value) that make the keyed IK controls drive the limbs as computed here."""
    return [(lb.switch_bone, prop, value) for lb in limbs
            for prop, value in (("IK_parent", ROOT_PARENT), ("pole_parent", ROOT_PARENT), ("pole_vector", 1.0))]


def rest_bones(bone_names: list[str]) -> list[str]:
    """IK-side controls the keyed IK assumes at rest: the rigid foot's (spin, heel roll, toe: SMPL-22 has
    no toe tip, so ``toe_fk`` is never turned either and the IK toe at rest matches it) and the IK chains'
    base controls (``thigh_ik``, ``upper_arm_ik``: a stale location or scale there moved the flipped-to-IK
    knee by 15 cm)."""
    return [b for b in bone_names
            if b.split(".")[0] in ("foot_spin_ik", "foot_heel_ik", "toe_ik", "thigh_ik", "upper_arm_ik")]


def posed_matrices(rig: rt.RigRest, result: rt.RetargetResult, bones: list[str]) -> np.ndarray:
    """Armature-space pose matrices [T, k, 4, 4] of ``bones`` under ``result``'s keyed controls.

    Unkeyed bones are at rest relative to their parents, except ``ORG-x`` with ``x`` keyed, which
    copies ``x`` (Rigify's Copy Transforms, same rest).
    """
    t = result.num_frames
    keyed = {rig.index[n]: k for k, n in enumerate(result.bone_names)}
    cache: dict[int, np.ndarray] = {}

    def pose(b: int) -> np.ndarray:
        if b in cache:
            return cache[b]
        name = rig.bone_names[b]
        if name.startswith("ORG-") and name[4:] in rig.index and rig.index[name[4:]] in keyed:
            cache[b] = pose(rig.index[name[4:]])
            return cache[b]
        local = np.broadcast_to(np.eye(4), (t, 4, 4)).copy()
        if b in keyed:
            local[:, :3, :3] = rt.matrix_from_quat(result.quats[:, keyed[b]])
        if name == result.root_bone:
            local[:, :3, 3] = result.root_location
        p = int(rig.parents[b])
        m = rig.rest[b] @ local if p == -1 else pose(p) @ (np.linalg.inv(rig.rest[p]) @ rig.rest[b]) @ local
        cache[b] = m
        return m

    return np.stack([pose(rig.index[n]) for n in bones], axis=1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def ik_keys(rig: rt.RigRest, result: rt.RetargetResult, limbs: list[Limb],
            local_location: dict[str, bool] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{IK control: (rotation quaternions [T, 4], location [T, 3])} reproducing ``result``'s FK pose.

    Assumes the controls' parents at rest (``IK_parent`` = ``pole_parent`` = Root, see :func:`switches`).
    ``local_location``: each control's *Local Location* flag (Rigify clears it on IK controls; default
    cleared), which decides the axes its location is keyed in.
    """
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    r = rig.rest

    def channels(bone: str, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = rig.index[bone]
        p = int(rig.parents[b])
        if (local_location or {}).get(bone, False):
            axes = r[b, :3, :3]
        else:
            axes = r[p, :3, :3] if p != -1 else np.eye(3)
        return _channels(r[b], pose, axes)

    for lb in limbs:
        m = posed_matrices(rig, result, [lb.upper_fk, lb.mid_fk, lb.end_fk])
        hip, knee, ankle = m[:, 0, :3, 3], m[:, 1, :3, 3], m[:, 2, :3, 3]
        end = m[:, 2] @ np.linalg.inv(r[rig.index[lb.org_end]]) @ r[rig.index[lb.end_ik]]
        out[lb.end_ik] = channels(lb.end_ik, end)

        # The pole keeps its rest place relative to the limb's triangle (hip, knee, ankle): whatever
        # pole angle the rig's IK uses, the solve that gave the rest pose gives the posed one.
        pole_rest = r[rig.index[lb.pole]]
        rest_joints = r[[rig.index[lb.upper_fk], rig.index[lb.mid_fk], rig.index[lb.end_fk]], :3, 3]
        f_rest, _ = _triangle_frame(*rest_joints, pole_rest[:3, 3])
        f_pose, bent = _triangle_frame(hip, knee, ankle, None)
        thigh_turn = m[:, 0, :3, :3] @ r[rig.index[lb.upper_fk], :3, :3].T  # a straight limb: the thigh's turn
        turn = np.where(bent[:, None, None], f_pose @ f_rest.T, thigh_turn)
        target = np.broadcast_to(pole_rest, m.shape[:1] + (4, 4)).copy()
        target[:, :3, 3] = knee + turn @ (pole_rest[:3, 3] - rest_joints[1])
        out[lb.pole] = channels(lb.pole, target)
    return out


def _triangle_frame(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray,
                    hint: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal frames [..., 3, 3] (columns: hip→ankle, the bend, their normal) and where they exist.

    ``hint`` (the rest pole) gives the bend of a rest limb that is straight.
    """
    chord = _unit(ankle - hip)
    off = knee - hip
    bend = off - chord * np.sum(off * chord, axis=-1, keepdims=True)
    ok = np.linalg.norm(bend, axis=-1) > 1e-3 * np.linalg.norm(off, axis=-1)
    if hint is not None and not np.all(ok):
        h = hint - knee
        bend = h - chord * np.sum(h * chord, axis=-1, keepdims=True)
        ok = np.ones_like(ok)
    y = _unit(bend)
    return np.stack([chord, y, np.cross(chord, y)], axis=-1), np.asarray(ok)


def _channels(rest: np.ndarray, pose: np.ndarray, loc_axes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(quaternions, location) of a bone whose parent is at rest, for armature-space ``pose`` [T, 4, 4].

    ``loc_axes``: the rotation the location is expressed in (the bone's rest rotation with Local
    Location, else its parent's rest rotation, or the armature's axes for a parentless bone).
    """
    rot = rest[:3, :3].T @ pose[:, :3, :3]
    quats = rt.quat_continuity(rt.quat_from_matrix(rot), axis=0)
    return quats, (pose[:, :3, 3] - rest[:3, 3]) @ loc_axes

