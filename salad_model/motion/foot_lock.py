"""Foot-contact clean-up: hold planted feet still inside chosen frames, the legs re-solved by two-bone IK.

Generated feet slide while the model marks them in contact (≈ 0.28 m/s on the demo model, against
≈ 0.13–0.18 m/s on Bandai-Namco captures). Where generated motion joins captured motion (a continuation or
an in-between of real clips) the difference shows; :func:`lock_feet` removes it around the join. Joints in
model space (metres, Y up) [T, 22, 3]; contacts [T, 4] in HumanML3D's order (left ankle, left foot, right
ankle, right foot). The add-on's ``pin_feet`` option does the same in Blender over whole results; this is the
worker-side version, limited to a weight over frames, so nothing outside the chosen frames moves.
"""

from __future__ import annotations

import numpy as np

# (hip, knee, ankle, toe) joints and their (ankle, toe) contact columns, per leg (SMPL-22 / t2m order)
LEGS = (((1, 4, 7, 10), (0, 1)), ((2, 5, 8, 11), (2, 3)))
_FLAT = np.array([1.0, 0.0, 1.0])  # horizontal only: the model's Y is up


def ease(x: np.ndarray | float) -> np.ndarray:
    """Smoothstep 3x² − 2x³ on [0, 1]: a fade whose speed starts and ends at zero (no jerk spike at its ends)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def trapezoid(frames: int, ranges: list[tuple[int, int]], fade: int) -> np.ndarray:
    """Weights [T]: 1 inside each [lo, hi) but ``fade`` frames easing in / out at its edges, 0 outside."""
    w = np.zeros(frames)
    t = np.arange(frames, dtype=np.float64)
    for lo, hi in ranges:
        lo, hi = max(0, int(lo)), min(frames, int(hi))
        if hi <= lo:
            continue
        ramp = np.minimum((t - lo + 1) / (fade + 1), (hi - t) / (fade + 1))
        inside = (t >= lo) & (t < hi)
        w = np.maximum(w, np.where(inside, ease(ramp), 0.0))
    return w


def contact_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    f = np.concatenate([[0], np.asarray(flags, np.int8), [0]])
    edges = np.flatnonzero(np.diff(f))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def hold_offsets(pos: np.ndarray, flags: np.ndarray, blend: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal offsets [T, 3] that keep ``pos`` [T, 3] at its mean over each contact run, and where they act.

    The offset at a run's first / last frame carries on, easing out, over ``blend`` frames outside it.
    """
    t_len = len(pos)
    off, acts = np.zeros((t_len, 3)), np.zeros(t_len, bool)
    strength = np.zeros(t_len)
    for s, e in contact_runs(flags):
        d = (pos[s:e].mean(0) - pos[s:e]) * _FLAT
        off[s:e], acts[s:e], strength[s:e] = d, True, 1.0
        for k in range(1, blend + 1):
            a = float(ease(1.0 - k / (blend + 1)))
            for i, edge in ((s - k, 0), (e - 1 + k, -1)):
                if 0 <= i < t_len and a > strength[i]:
                    off[i], acts[i], strength[i] = a * d[edge], True, a
    return off, acts


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Knee and ankle [N, 3] that reach ``target`` (as near as the leg allows) with thigh and shin lengths kept.

    The knee stays in the plane it bent in (hip, target and the old knee).
    """
    thigh = np.linalg.norm(knee - hip, axis=-1)
    shin = np.linalg.norm(ankle - knee, axis=-1)
    reach = target - hip
    dist = np.linalg.norm(reach, axis=-1)
    axis = reach / np.maximum(dist, 1e-9)[:, None]
    dist = np.clip(dist, np.abs(thigh - shin) + 1e-6, thigh + shin - 1e-6)
    bend = (knee - hip) - ((knee - hip) * axis).sum(-1, keepdims=True) * axis
    bend /= np.maximum(np.linalg.norm(bend, axis=-1, keepdims=True), 1e-9)
    cos = np.clip((thigh ** 2 + dist ** 2 - shin ** 2) / (2 * thigh * dist), -1.0, 1.0)
    new_knee = hip + thigh[:, None] * (cos[:, None] * axis + np.sqrt(1 - cos ** 2)[:, None] * bend)
    return new_knee, hip + dist[:, None] * axis


def reach_toward(ankle: np.ndarray, toe: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Toe [N, 3] moved about ``ankle`` towards ``target`` (horizontally), the ankle–toe bone keeping its length.

    The foot turns about the vertical to face the target and reaches it where it can by flattening: the
    horizontal reach stays within [its own, the bone's length], so the toe never dips below its height
    relative to the ankle (no toe through the floor); a target nearer than that is overshot along its line.
    """
    bone = np.linalg.norm(toe - ankle, axis=-1)
    d = (toe - ankle)[:, [0, 2]]
    want = (target - ankle)[:, [0, 2]]
    dist = np.linalg.norm(want, axis=-1)
    own = np.linalg.norm(d, axis=-1)
    reach = np.clip(dist, np.minimum(own, bone), bone)
    unit = np.where(dist[:, None] > 1e-9, want / np.maximum(dist, 1e-9)[:, None], d / np.maximum(own, 1e-9)[:, None])
    out = toe.copy()
    out[:, 0], out[:, 2] = ankle[:, 0] + unit[:, 0] * reach, ankle[:, 2] + unit[:, 1] * reach
    up = np.where(toe[:, 1] >= ankle[:, 1], 1.0, -1.0)
    out[:, 1] = ankle[:, 1] + up * np.sqrt(np.maximum(bone ** 2 - reach ** 2, 0.0))
    return out


def lock_feet(joints: np.ndarray, contacts: np.ndarray, weight: np.ndarray, blend: int = 3,
              hold_toes: bool = True) -> np.ndarray:
    """``joints`` with planted feet held still where ``weight`` [T] (0…1) is positive; other frames unchanged.

    Each contact run of an ankle or toe keeps its mean horizontal position (offsets fade in and out over
    ``blend`` frames around the run), scaled by ``weight``; the foot moves rigidly (held by the ankle's run, or
    the toe's where only the toe is planted) and the knee is re-solved so the leg keeps its bone lengths.
    ``hold_toes``: where the toe is planted while the ankle leads, the foot also turns and flattens about the
    held ankle so the toe reaches its own held place (:func:`reach_toward`): a foot pivoting on a planted heel
    otherwise slides its toe (docs/MODEL_CARD.md, "Shots": in-between joins to captured motion).
    """
    j = np.array(joints, dtype=np.float64)
    c = np.asarray(contacts) > 0.5
    w = np.clip(np.asarray(weight, np.float64), 0.0, 1.0)
    if c.shape != (len(j), 4) or w.shape != (len(j),):
        raise ValueError(f"contacts [T, 4] and weight [T] for T = {len(j)}; got {list(c.shape)}, {list(w.shape)}")
    for (hip, knee, ankle, toe), (ca, ct) in LEGS:
        off_a, on_a = hold_offsets(j[:, ankle], c[:, ca], blend)
        off_t, on_t = hold_offsets(j[:, toe], c[:, ct], blend)
        m = (on_a | on_t) & (w > 0)
        if not m.any():
            continue
        # the foot moves rigidly, held by its ankle's run where the ankle is planted, else by its toe's
        shift = np.where(on_a[m, None], off_a[m], off_t[m]) * w[m, None]
        target = j[m, ankle] + shift
        new_knee, new_ankle = two_bone_ik(j[m, hip], j[m, knee], j[m, ankle], target)
        new_toe = j[m, toe] + (new_ankle - j[m, ankle])
        if hold_toes:
            both = on_a[m] & on_t[m]  # the ankle leads while the toe is planted (or easing out of a plant)
            held_toe = j[m, toe] + off_t[m] * w[m, None]
            new_toe[both] = reach_toward(new_ankle[both], new_toe[both], held_toe[both])
        j[m, toe] = new_toe
        j[m, knee], j[m, ankle] = new_knee, new_ankle
    return j
