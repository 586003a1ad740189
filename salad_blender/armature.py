"""Blender armatures: build our SMPL-22 body, and read any armature's rest pose for retargeting.

Our armature's rest pose is a **T-pose facing -Y** (Blender's front view), one bone per SMPL-22 joint
named after it, each bone's head on its joint and its tail on its only child (pelvis -> spine1,
spine3 -> neck; leaves get a short tail along their parent segment / up for the head). Bone lengths
come from the motion (median over frames; the branching joints' child offsets are the motion's own,
see :func:`salad_blender.rigs.tpose_joints_from_motion`) when one is given, else from a canonical
proportion table. So FK of our armature reproduces a motion's joints exactly, while the rest pose
stays a clean T-pose that other motions retarget onto too.

The body is one mesh of per-segment ellipsoids (~2-3k vertices), each rigidly weighted to its bone,
deformed by an Armature modifier: enough to see the motion in a render, cheap to evaluate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import bpy
import numpy as np
from mathutils import Matrix, Vector

from . import smpl22
from .retarget import RigRest
from .rigs import tpose_joints, tpose_joints_from_motion

# Ellipsoid radius (m) of the body segment from a joint to each of its children / leaf extension.
_RADIUS: dict[str, float] = {
    "pelvis": 0.09, "left_hip": 0.075, "right_hip": 0.075, "spine1": 0.11, "left_knee": 0.055,
    "right_knee": 0.055, "spine2": 0.12, "left_ankle": 0.045, "right_ankle": 0.045, "spine3": 0.07,
    "left_foot": 0.035, "right_foot": 0.035, "neck": 0.05, "left_collar": 0.05, "right_collar": 0.05,
    "head": 0.1, "left_shoulder": 0.045, "right_shoulder": 0.045, "left_elbow": 0.038,
    "right_elbow": 0.038, "left_wrist": 0.035, "right_wrist": 0.035,
}


def _object_world(obj: bpy.types.Object) -> np.ndarray:
    """``obj.matrix_world`` computed from its transform channels and parents.

    ``matrix_world`` is only refreshed by a depsgraph evaluation; a script that just set
    ``obj.scale`` would read a stale value. Object constraints and bone parents fall back to
    ``matrix_world`` (assumed evaluated).
    """
    if obj.constraints and any(c.enabled for c in obj.constraints) or (
        obj.parent is not None and obj.parent_type != "OBJECT"
    ):
        return np.array(obj.matrix_world, dtype=np.float64)
    m = np.array(obj.matrix_basis, dtype=np.float64)
    if obj.parent is not None:
        m = _object_world(obj.parent) @ np.array(obj.matrix_parent_inverse, dtype=np.float64) @ m
    return m


def rig_rest_from_object(obj: bpy.types.Object) -> RigRest:
    """Rest pose of an armature object as a :class:`RigRest` (armature-space rest matrices, world)."""
    if obj is None or obj.type != "ARMATURE":
        raise TypeError(f"expected an armature object, got {getattr(obj, 'type', obj)!r}")
    bones = obj.data.bones
    names = [b.name for b in bones]
    index = {n: i for i, n in enumerate(names)}
    parents = np.array([index[b.parent.name] if b.parent else -1 for b in bones], dtype=np.int64)
    rest = np.array([np.array(b.matrix_local, dtype=np.float64) for b in bones]).reshape(-1, 4, 4)
    return RigRest(names, parents, rest, _object_world(obj))


def _tails(rest: np.ndarray) -> np.ndarray:
    """Bone tails [22, 3] for our armature given rest joint positions [22, 3]."""
    tails = np.zeros_like(rest)
    for j, name in enumerate(smpl22.JOINT_NAMES):
        ch = smpl22.children(j)
        if name == "pelvis":
            tails[j] = rest[smpl22.INDEX["spine1"]]
        elif name == "spine3":
            tails[j] = rest[smpl22.INDEX["neck"]]
        elif ch:
            tails[j] = rest[ch[0]]
        elif name == "head":
            tails[j] = rest[j] + np.array([0.0, 0.0, 0.18])
        else:  # wrists and toes: continue the parent segment
            d = rest[j] - rest[smpl22.PARENTS[j]]
            tails[j] = rest[j] + d / np.linalg.norm(d) * (0.08 if "wrist" in name else 0.05)
    return tails


def create_smpl22_armature(
    name: str = "SALAD Body",
    joints: np.ndarray | None = None,
    *,
    with_mesh: bool = True,
    location: Sequence[float] = (0.0, 0.0, 0.0),
    collection: bpy.types.Collection | None = None,
) -> bpy.types.Object:
    """Create (and link) an SMPL-22 armature object in T-pose, optionally with a skinned body mesh.

    ``joints``: a model-space motion [T, 22, 3] to take the proportions from (else canonical).
    Returns the armature object; the body mesh, if any, is its child named "<name> Mesh".
    """
    if joints is not None:
        rest = tpose_joints_from_motion(smpl22.model_to_blender(np.asarray(joints)))
    else:
        rest = tpose_joints()
    tails = _tails(rest)
    collection = collection or bpy.context.scene.collection

    arm_data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm_data)
    obj.location = Vector(location)
    collection.objects.link(obj)
    try:
        with _in_view_layer(obj):
            _build_bones(obj, rest, tails)
        if with_mesh:
            build_body_mesh(obj, rest, tails, collection=collection)
    except Exception:
        # Leave nothing half-built behind.
        for child in list(obj.children):
            mesh = child.data
            bpy.data.objects.remove(child)
            if mesh is not None and mesh.users == 0:
                bpy.data.meshes.remove(mesh)
        bpy.data.objects.remove(obj)
        bpy.data.armatures.remove(arm_data)
        raise
    return obj


@contextlib.contextmanager
def _in_view_layer(obj: bpy.types.Object) -> Iterator[None]:
    """Keep ``obj`` in the current view layer while the block runs (Edit Mode needs it there).

    Why: a job's body goes into the scene the job started in; when the user has switched to another scene
    meanwhile, the object is linked into this one only while its bones are built (the build failed with
    "ViewLayer does not contain object").
    """
    scene = bpy.context.scene
    borrowed = scene not in obj.users_scene  # (the view layer's object list syncs lazily: it is not asked)
    if borrowed:
        scene.collection.objects.link(obj)
    try:
        yield
    finally:
        if borrowed and scene.collection.objects.get(obj.name) == obj:
            scene.collection.objects.unlink(obj)


def _build_bones(obj: bpy.types.Object, rest: np.ndarray, tails: np.ndarray) -> None:
    """Edit-mode bone creation (needs the object active in the view layer)."""
    view_layer = bpy.context.view_layer
    prev_active = view_layer.objects.active
    prev_mode = prev_active.mode if prev_active is not None else "OBJECT"
    if prev_active is not None and prev_mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        ebones = obj.data.edit_bones
        for j, jname in enumerate(smpl22.JOINT_NAMES):
            eb = ebones.new(jname)
            eb.head = Vector(rest[j])
            eb.tail = Vector(tails[j])
            d = tails[j] - rest[j]
            # Z axis forward (-Y) for bones that run up/down or sideways; up for the feet.
            eb.align_roll(Vector((0.0, 0.0, 1.0)) if abs(d[1]) > 0.7 * np.linalg.norm(d)
                          else Vector((0.0, -1.0, 0.0)))
            p = smpl22.PARENTS[j]
            if p != -1:
                eb.parent = ebones[smpl22.JOINT_NAMES[p]]
                eb.use_connect = bool(np.allclose(tails[p], rest[j]))
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        if prev_active is not None:
            view_layer.objects.active = prev_active
            if prev_mode != "OBJECT":
                bpy.ops.object.mode_set(mode=prev_mode)
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"


def _ellipsoid(a: np.ndarray, b: np.ndarray, r: float, nu: int = 12, nv: int = 8):  # noqa: ANN202
    """Vertices [n, 3] and quad/tri faces of an ellipsoid spanning a -> b (radius r, end overlap)."""
    d = b - a
    length = float(np.linalg.norm(d))
    axis = d / length
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    w = np.cross(axis, u)
    half = length / 2.0 + 0.35 * r
    centre = (a + b) / 2.0
    theta = np.linspace(0.0, np.pi, nv + 1)[1:-1]  # rings, poles added separately
    phi = np.linspace(0.0, 2.0 * np.pi, nu, endpoint=False)
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    ring = (
        centre
        + (ct * half)[..., None] * axis
        + (st * r * np.cos(phi))[..., None] * u
        + (st * r * np.sin(phi))[..., None] * w
    ).reshape(-1, 3)
    verts = np.concatenate([ring, [centre + half * axis], [centre - half * axis]])
    top, bottom = len(ring), len(ring) + 1
    faces: list[tuple[int, ...]] = []
    for i in range(nv - 2):
        for k in range(nu):
            k2 = (k + 1) % nu
            faces.append((i * nu + k, (i + 1) * nu + k, (i + 1) * nu + k2, i * nu + k2))
    for k in range(nu):
        k2 = (k + 1) % nu
        faces.append((top, k, k2))
        faces.append((bottom, (nv - 2) * nu + k2, (nv - 2) * nu + k))
    return verts, faces


def build_body_mesh(
    arm_obj: bpy.types.Object,
    rest: np.ndarray,
    tails: np.ndarray,
    *,
    collection: bpy.types.Collection | None = None,
) -> bpy.types.Object:
    """Rigidly skinned ellipsoid body for our armature (child object with an Armature modifier)."""
    verts_all: list[np.ndarray] = []
    faces_all: list[tuple[int, ...]] = []
    groups: dict[str, list[int]] = {}
    count = 0
    for j, jname in enumerate(smpl22.JOINT_NAMES):
        ch = smpl22.children(j)
        ends = [rest[c] for c in ch] if ch else [tails[j]]
        for end in ends:
            start = rest[j]
            r = _RADIUS[jname]
            if jname == "head":
                start, end = rest[j] - np.array([0.0, 0.0, 0.02]), tails[j]
            v, f = _ellipsoid(start, end, r)
            verts_all.append(v)
            faces_all.extend(tuple(i + count for i in face) for face in f)
            groups.setdefault(jname, []).extend(range(count, count + len(v)))
            count += len(v)
    verts = np.concatenate(verts_all)
    mesh = bpy.data.meshes.new(arm_obj.name + " Mesh")
    mesh.from_pydata(verts.tolist(), [], faces_all)
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))
    mesh.update()
    obj = bpy.data.objects.new(arm_obj.name + " Mesh", mesh)
    (collection or bpy.context.scene.collection).objects.link(obj)
    obj.parent = arm_obj
    obj.matrix_parent_inverse = Matrix.Identity(4)
    for bone, idx in groups.items():
        obj.vertex_groups.new(name=bone).add(idx, 1.0, "REPLACE")
    mod = obj.modifiers.new("Armature", "ARMATURE")
    mod.object = arm_obj
    return obj


# Constraint types that replace a bone's own rotation, so keyframes on it would have no visible effect.
_OVERRIDING = {"COPY_TRANSFORMS", "COPY_ROTATION", "CHILD_OF", "ARMATURE", "DAMPED_TRACK", "TRACK_TO",
               "LOCKED_TRACK", "IK", "SPLINE_IK", "TRANSFORM"}


def overriding_constraints(obj: bpy.types.Object, bone_names: Sequence[str]) -> list[str]:
    """"bone: constraint (TYPE)" for enabled constraints that would override keyed rotations.

    A generated Rigify rig's DEF bones copy their ORG/MCH bones, for example. Not an error (the user
    may mute them, or key the control rig through another path) but worth a warning in the UI.
    """
    out = []
    for name in bone_names:
        pb = obj.pose.bones.get(name)
        if pb is None:
            continue
        for c in pb.constraints:
            if c.enabled and c.influence > 0.0 and c.type in _OVERRIDING:
                out.append(f"{name}: {c.name} ({c.type})")
    return out
