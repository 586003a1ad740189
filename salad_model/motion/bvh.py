"""BVH reading, forward kinematics and writing (our own implementation, written from the format).

Reader semantics (the usual BVH reading, also what the Bandai-Namco files need):

* Every joint's local translation is its ``OFFSET``; a position channel present on a joint *replaces*
  the matching component of the offset (not added to it). This holds for the root and for any
  other joint that carries position channels.
* Rotation channels are Euler angles in degrees, applied in the order they are listed:
  ``CHANNELS 3 Zrotation Xrotation Yrotation`` means ``R = Rz · Rx · Ry`` (intrinsic rotations,
  column vectors), and ``p_parent = t + R · p_local``.
* Units are whatever the file uses; ``scale`` converts them (0.01 for centimetres → metres).

The writer (:func:`write_joint_positions_bvh`) turns joint positions (e.g. generated SMPL-22 motion)
into a BVH whose rest pose is a T-pose with median bone lengths and whose rotations come from an
analytic IK of the positions, so any BVH importer (Blender's included) can drive a rig with it.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

_AXES = {"X": 0, "Y": 1, "Z": 2}


@dataclass
class BvhMotion:
    """A parsed BVH file: skeleton (joints with channels) plus the raw channel values per frame."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray  # [J, 3] float64, file units
    channels: list[list[str]]  # per joint, e.g. ["Xposition", ..., "Zrotation", ...]
    frame_time: float
    data: np.ndarray  # [T, C] float64, all channel values in file order
    end_sites: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (parent joint, offset)

    @property
    def num_frames(self) -> int:
        return int(self.data.shape[0])

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def fps(self) -> float:
        """Frame rate; snapped to a whole number when the file rounds it (0.0333333 s → 30 fps)."""
        fps = 1.0 / self.frame_time
        return float(round(fps)) if abs(fps - round(fps)) < 1e-3 * fps else fps

    def channel_slices(self) -> list[tuple[int, int]]:
        """Column range [start, stop) of each joint's channels in ``data``."""
        out, start = [], 0
        for ch in self.channels:
            out.append((start, start + len(ch)))
            start += len(ch)
        return out

    def index(self, name: str) -> int:
        return self.names.index(name)

    def local_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Local rotations as quaternions [T, J, 4] (scipy x, y, z, w) and local translations [T, J, 3]."""
        t = self.num_frames
        quats = np.zeros((t, self.num_joints, 4))
        quats[..., 3] = 1.0
        trans = np.broadcast_to(self.offsets, (t, self.num_joints, 3)).copy()
        for j, ((a, _), chans) in enumerate(zip(self.channel_slices(), self.channels, strict=True)):
            rot_order, rot_cols = "", []
            for k, ch in enumerate(chans):
                axis, kind = ch[0].upper(), ch[1:].lower()
                if kind == "position":
                    trans[:, j, _AXES[axis]] = self.data[:, a + k]
                elif kind == "rotation":
                    rot_order += axis
                    rot_cols.append(a + k)
                else:
                    raise ValueError(f"unknown BVH channel {ch!r} on joint {self.names[j]!r}")
            if rot_order:
                # Upper-case order = intrinsic rotations, R = R_first · R_second · R_third.
                quats[:, j] = Rotation.from_euler(rot_order, self.data[:, rot_cols], degrees=True).as_quat()
        return quats, trans

    def positions(self, scale: float = 1.0, fps: float | None = None) -> np.ndarray:
        """Global joint positions [T, J, 3] (float64) by FK, optionally resampled to ``fps``."""
        quats, trans = self.local_pose()
        if fps is not None and abs(fps - self.fps) > 1e-6:
            quats, trans = resample_pose(quats, trans, self.fps, fps)
        return forward_kinematics(self.parents, quats, trans) * scale


def _tokens(text: str) -> list[str]:
    return text.replace("{", " { ").replace("}", " } ").split()


def parse_bvh(text: str) -> BvhMotion:
    """Parse BVH text. Accepts any channel order, position channels on any joint, any frame time."""
    head, sep, motion = text.partition("MOTION")
    if not sep:
        raise ValueError("not a BVH file: no MOTION section")
    tok = _tokens(head)
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    end_sites: list[tuple[int, np.ndarray]] = []
    stack: list[int] = []  # joint index per open brace; -2 marks an End Site block
    pending: int | None = None
    i = 0
    while i < len(tok):
        t = tok[i]
        u = t.upper()
        if u in ("ROOT", "JOINT"):
            names.append(tok[i + 1])
            parent = next((s for s in reversed(stack) if s >= 0), -1) if stack else -1
            parents.append(parent)
            offsets.append([0.0, 0.0, 0.0])
            channels.append([])
            pending = len(names) - 1
            i += 2
        elif u == "END":  # "End Site"
            pending = -2
            end_sites.append((stack[-1], np.zeros(3)))
            i += 2
        elif t == "{":
            stack.append(pending if pending is not None else -3)
            pending = None
            i += 1
        elif t == "}":
            stack.pop()
            i += 1
        elif u == "OFFSET":
            vals = [float(v) for v in tok[i + 1:i + 4]]
            if stack[-1] == -2:
                end_sites[-1] = (end_sites[-1][0], np.array(vals))
            else:
                offsets[stack[-1]] = vals
            i += 4
        elif u == "CHANNELS":
            n = int(tok[i + 1])
            channels[stack[-1]] = tok[i + 2:i + 2 + n]
            i += 2 + n
        else:  # "HIERARCHY" and anything unknown
            i += 1
    lines = motion.strip().split("\n", 2)
    if len(lines) < 2:
        raise ValueError("BVH MOTION section lacks Frames / Frame Time")
    try:
        n_frames = int(lines[0].split(":")[1])
        frame_time = float(lines[1].split(":")[1])
    except (IndexError, ValueError) as exc:
        raise ValueError(f"BVH MOTION header is malformed: {lines[0][:40]!r} / {lines[1][:40]!r}") from exc
    if not math.isfinite(frame_time) or frame_time <= 0:  # (the fps would be infinite or negative)
        raise ValueError(f"BVH 'Frame Time: {frame_time:g}' must be a positive number of seconds")
    if n_frames < 0:
        raise ValueError(f"BVH 'Frames: {n_frames}' must not be negative")
    n_ch = sum(len(c) for c in channels)
    body = lines[2] if len(lines) > 2 else ""
    values = np.array(body.split(), dtype=np.float64)
    if values.size != n_frames * n_ch:
        raise ValueError(f"BVH has {values.size} motion values, expected {n_frames} frames × {n_ch} channels")
    return BvhMotion(names, parents, np.array(offsets, dtype=np.float64).reshape(-1, 3), channels,
                     frame_time, values.reshape(n_frames, n_ch), end_sites)


def read_bvh(path: str | Path) -> BvhMotion:
    return parse_bvh(Path(path).read_text())


def forward_kinematics(parents: Sequence[int], quats: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Global positions [T, J, 3] from local quaternions [T, J, 4] (xyzw) and translations [T, J, 3].

    Joints must be ordered parents-first (BVH order is).
    """
    t, j = quats.shape[:2]
    mats = Rotation.from_quat(quats.reshape(-1, 4)).as_matrix().reshape(t, j, 3, 3)
    g_rot = np.empty_like(mats)
    g_pos = np.empty((t, j, 3))
    for k, p in enumerate(parents):
        if p < 0:
            g_rot[:, k] = mats[:, k]
            g_pos[:, k] = trans[:, k]
        else:
            if p >= k:
                raise ValueError("joints must be ordered parents-first")
            g_rot[:, k] = g_rot[:, p] @ mats[:, k]
            g_pos[:, k] = g_pos[:, p] + np.einsum("tij,tj->ti", g_rot[:, p], trans[:, k])
    return g_pos


def resample_pose(quats: np.ndarray, trans: np.ndarray, src_fps: float, dst_fps: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Resample a local pose sequence in time: slerp rotations, lerp translations.

    Interpolating rotations (not global positions) keeps every bone at its length; the output covers
    [0, duration] with frames at multiples of 1/dst_fps.
    """
    t = quats.shape[0]
    duration = (t - 1) / src_fps
    n_out = int(math.floor(duration * dst_fps + 1e-6)) + 1
    times = np.arange(n_out) / dst_fps * src_fps  # in source-frame units
    if t == 1:
        return quats[:1].copy(), trans[:1].copy()
    src = np.arange(t, dtype=np.float64)
    out_q = np.empty((n_out, quats.shape[1], 4))
    for j in range(quats.shape[1]):
        out_q[:, j] = Slerp(src, Rotation.from_quat(quats[:, j]))(np.clip(times, 0, t - 1)).as_quat()
    i0 = np.clip(np.floor(times).astype(int), 0, t - 2)
    w = (times - i0)[:, None, None]
    out_t = trans[i0] * (1 - w) + trans[i0 + 1] * w
    return out_q, out_t


def resample_positions(positions: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Linear interpolation of positions [T, J, 3] in time (for data without rotations)."""
    t = positions.shape[0]
    duration = (t - 1) / src_fps
    n_out = int(math.floor(duration * dst_fps + 1e-6)) + 1
    times = np.arange(n_out) / dst_fps * src_fps
    if t == 1:
        return positions[:1].copy()
    i0 = np.clip(np.floor(times).astype(int), 0, t - 2)
    w = (times - i0)[:, None, None]
    return positions[i0] * (1 - w) + positions[i0 + 1] * w


# ---------------------------------------------------------------------------------------------------
# Writer: joint positions → BVH (T-pose rest skeleton, rotations from an analytic IK).


def _normalize(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimal rotation matrices [T, 3, 3] taking unit vectors a [.., 3] to b [T, 3]."""
    a = np.broadcast_to(a, b.shape)
    v = np.cross(a, b)
    c = np.einsum("ti,ti->t", a, b)
    # Rodrigues with axis v/|v|, sin = |v|, cos = c; a·b = -1 handled by a perpendicular axis.
    out = np.empty(b.shape[:-1] + (3, 3))
    anti = c < -1 + 1e-9
    k = np.zeros(v.shape[:-1] + (3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 0] = -v[:, 2], v[:, 1], v[:, 2]
    k[:, 1, 2], k[:, 2, 0], k[:, 2, 1] = -v[:, 0], -v[:, 1], v[:, 0]
    kk = k @ k
    denom = np.where(anti, 1.0, 1 + c)
    out[:] = np.eye(3) + k + kk / denom[:, None, None]
    if anti.any():
        perp = np.cross(a[anti], np.array([1.0, 0.0, 0.0]))
        bad = np.linalg.norm(perp, axis=-1) < 1e-6
        perp[bad] = np.cross(a[anti][bad], np.array([0.0, 1.0, 0.0]))
        out[anti] = Rotation.from_rotvec(_normalize(perp) * np.pi).as_matrix()
    return out


def _frame_from(x_dir: np.ndarray, y_dir: np.ndarray) -> np.ndarray:
    """Rotation matrices whose columns are (x, y, x×y) built from an across and an up vector."""
    x = _normalize(x_dir)
    y = _normalize(y_dir - np.einsum("ti,ti->t", y_dir, x)[:, None] * x)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


# T-pose rest directions of each joint's bone (from its parent), SMPL-22 order; person's left is +X.
TPOSE_DIRECTIONS_T2M = np.array([
    [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
    [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0],
    [1, 0, 0], [-1, 0, 0], [1, 0, 0], [-1, 0, 0], [1, 0, 0], [-1, 0, 0],
], dtype=np.float64)


@dataclass
class IkSolution:
    """Global rotations, rest offsets and local channels of a positions → BVH conversion."""

    global_rot: np.ndarray  # [T, J, 3, 3]
    local_rot: np.ndarray  # [T, J, 3, 3]
    offsets: np.ndarray  # [J, 3] rest offsets in the parent's frame
    local_trans: np.ndarray  # [T, J, 3] actual per-frame offsets in the parent's frame (for stretch)


def solve_ik(joints: np.ndarray, parents: Sequence[int], rest_dirs: np.ndarray,
             frame_children: dict[int, tuple[int, int, int]] | None = None) -> IkSolution:
    """Rotations that make a fixed-offset skeleton follow ``joints`` [T, J, 3].

    Joints with one child turn by the minimal rotation (no twist relative to the parent) that
    points their rest bone direction at the child. Joints with several children get a full frame
    from two vectors (``frame_children[j] = (left_child, right_child, up_child)``: x = left − right,
    y = up-child − joint), and their children's rest offsets are the per-frame offsets' median in
    that frame, so rigid input is reproduced exactly. Leaves keep their parent's rotation.
    """
    joints = np.asarray(joints, dtype=np.float64)
    t, nj = joints.shape[:2]
    children = [[c for c, p in enumerate(parents) if p == j] for j in range(nj)]
    frame_children = frame_children or {}
    g = np.empty((t, nj, 3, 3))
    offsets = np.zeros((nj, 3))
    local_trans = np.zeros((t, nj, 3))
    lengths = np.zeros(nj)
    for c, p in enumerate(parents):
        if p >= 0:
            lengths[c] = np.median(np.linalg.norm(joints[:, c] - joints[:, p], axis=-1))
    for j, p in enumerate(parents):
        parent_rot = g[:, p] if p >= 0 else np.broadcast_to(np.eye(3), (t, 3, 3))
        kids = children[j]
        if len(kids) == 0:
            g[:, j] = parent_rot
        elif len(kids) == 1:
            c = kids[0]
            d_local = np.einsum("tji,tj->ti", parent_rot, joints[:, c] - joints[:, j])
            g[:, j] = parent_rot @ _swing(_normalize(rest_dirs[c]), _normalize(d_local))
        else:
            if j not in frame_children:
                raise ValueError(f"joint {j} has several children; give frame_children[{j}]")
            left, right, up = frame_children[j]
            g[:, j] = _frame_from(joints[:, left] - joints[:, right], joints[:, up] - joints[:, j])
        for c in kids:
            local_trans[:, c] = np.einsum("tji,tj->ti", g[:, j], joints[:, c] - joints[:, j])
            if len(kids) == 1:
                offsets[c] = _normalize(rest_dirs[c]) * lengths[c]
            else:
                offsets[c] = np.median(local_trans[:, c], axis=0)
    local = np.empty_like(g)
    for j, p in enumerate(parents):
        local[:, j] = g[:, j] if p < 0 else np.swapaxes(g[:, p], -1, -2) @ g[:, j]
    local_trans[:, 0] = joints[:, 0]
    return IkSolution(g, local, offsets, local_trans)


def _fmt(x: float) -> str:
    s = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def write_joint_positions_bvh(
    path: str | Path | io.TextIOBase,
    joints: np.ndarray,
    fps: float,
    names: Sequence[str] | None = None,
    parents: Sequence[int] | None = None,
    scale: float = 1.0,
    stretch: bool = False,
) -> None:
    """Write SMPL-22 joint positions [T, 22, 3] (metres, Y up) as a BVH file.

    The rest pose is a T-pose with median bone lengths. Root: 6 channels (position + ZXY rotation);
    other joints: ZXY rotations only, unless ``stretch`` is set, in which case every joint also gets
    position channels carrying its actual per-frame offset so non-rigid input (e.g. generated motion
    whose bone lengths wander) is reproduced exactly. ``scale`` multiplies lengths (100 → centimetres).
    """
    from salad_model.motion.skeleton import T2M

    names = list(names or T2M.joint_names)
    parents = list(parents or T2M.parents)
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (len(names), 3):
        raise ValueError(f"joints must be [T, {len(names)}, 3], got {joints.shape}")
    if len(names) != 22:
        raise ValueError("write_joint_positions_bvh only knows the SMPL-22 rest pose")
    # pelvis frame: across = left_hip - right_hip, up = spine1; spine3: collars and neck.
    sol = solve_ik(joints, parents, TPOSE_DIRECTIONS_T2M, {0: (1, 2, 3), 9: (13, 14, 12)})
    children = [[c for c, p in enumerate(parents) if p == j] for j in range(len(names))]
    pos_ch = "Xposition Yposition Zposition "
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        ind = "  " * depth
        kw = "ROOT" if parents[j] < 0 else "JOINT"
        off = np.zeros(3) if parents[j] < 0 else sol.offsets[j] * scale
        lines.append(f"{ind}{kw} {names[j]}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}  OFFSET {' '.join(_fmt(v) for v in off)}")
        has_pos = parents[j] < 0 or stretch
        lines.append(f"{ind}  CHANNELS {6 if has_pos else 3} {pos_ch if has_pos else ''}"
                     "Zrotation Xrotation Yrotation")
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            tip = _normalize(sol.offsets[j]) * 0.05 * scale  # leaf bone tail for importers
            lines.append(f"{ind}  End Site")
            lines.append(f"{ind}  {{")
            lines.append(f"{ind}    OFFSET {' '.join(_fmt(v) for v in tip)}")
            lines.append(f"{ind}  }}")
        lines.append(f"{ind}}}")

    emit(0, 0)
    order: list[int] = []

    def walk(j: int) -> None:
        order.append(j)
        for c in children[j]:
            walk(c)

    walk(0)
    t = joints.shape[0]
    cols = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gimbal-lock warnings: the matrix is still reproduced
        for j in order:
            if parents[j] < 0 or stretch:
                cols.append(sol.local_trans[:, j] * scale)
            eul = Rotation.from_matrix(sol.local_rot[:, j]).as_euler("ZXY", degrees=True)
            cols.append(eul)
    table = np.concatenate(cols, axis=1)
    lines += ["MOTION", f"Frames: {t}", f"Frame Time: {1.0 / fps:.8f}"]
    body = "\n".join(" ".join(_fmt(v) for v in row) for row in table)
    text = "\n".join(lines) + "\n" + body + "\n"
    if isinstance(path, io.TextIOBase):
        path.write(text)
    else:
        Path(path).write_text(text)


def joint_positions_from_bvh(motion: BvhMotion, names: Sequence[str], scale: float = 1.0,
                             fps: float | None = None) -> np.ndarray:
    """FK positions [T, len(names), 3] of the named joints, in the given order."""
    pos = motion.positions(scale=scale, fps=fps)
    return pos[:, [motion.index(n) for n in names]]
