"""Make Cyclic: turn retargeted channels into a seamless loop (pure numpy, no bpy).

Why a cross-fade of the channels (not of the joints): the loop must close on a scene frame, and the keys
are at the scene's rate after resampling, so the fade works on exactly what gets keyed. The clip's first
``blend`` frames are cross-faded with the ``blend`` frames that follow the loop point, and the clip is cut
so its last key equals its first: with a Cycles F-curve modifier (rotations: Repeat; the root's location:
Repeat with Offset, the loop's travel over the ground) the motion plays on forever with no jump.

The loop length ``L`` ≤ ``T - blend`` is where the clip looks most like its start (:func:`best_loop_point`,
in the last 40% of the clip); the result has ``L + 1`` keys:

- key ``i < blend``: ``fade(w_i)`` between the original frame ``L + i`` (moved back by the loop's travel)
  and frame ``i``, ``w`` rising smoothly from 0 at ``i = 0``; so key 0 is frame ``L`` and the loop point
  continues frame ``L - 1`` exactly, and key ``blend - 1`` → frame ``blend`` is an ordinary step;
- keys ``blend … L - 1`` are the original frames;
- key ``L`` is key 0 (plus the travel for the root's location).
"""

from __future__ import annotations

import numpy as np

from . import retarget as rt

MIN_LOOP = 4  # keys a loop must keep beside its blend


def scene_frames(model_frames: int, fps: float) -> int:
    """Keys a clip of ``model_frames`` (20 fps) gets at the scene's ``fps`` (as :func:`retarget.resample` does)."""
    return int(np.floor((int(model_frames) - 1) / 20.0 * fps + 1e-6)) + 1


def blend_problem(frames: int, blend: int) -> str:
    """Why a ``frames``-key clip cannot loop with ``blend`` frames of cross-fade ("" when it can)."""
    need = 2 * int(blend) + MIN_LOOP
    if frames >= need:
        return ""
    most = (frames - MIN_LOOP) // 2
    fix = f"at most {most}" if most >= 1 else "make the clip longer"
    return f"{blend} Blend Frames need a clip of at least {need} frames, this one has {frames} ({fix})"


def blend_weights(blend: int) -> np.ndarray:
    """Smoothstep weights [blend] from 0 (all loop end) at key 0 towards 1 (all clip start)."""
    x = np.arange(blend, dtype=np.float64) / blend
    return x * x * (3.0 - 2.0 * x)


def best_loop_point(quats: np.ndarray, blend: int, search: float = 0.4) -> int:
    """The loop length ``L`` (last ``search`` share of the clip) whose next ``blend`` frames look most like
    the first ``blend``: a walk loops where its step phase matches, so the fade mixes like with like.

    Cost: mean rotation angle over bones and fade frames; ties go to the longest loop.
    """
    t = len(quats)
    hi = t - blend
    lo = max(2 * blend + MIN_LOOP - blend, int(np.ceil(hi - search * hi)))
    head = quats[:blend]
    best, best_cost = hi, np.inf
    for cand in range(hi, lo - 1, -1):
        dots = np.abs(np.sum(quats[cand: cand + blend] * head, axis=-1))
        cost = float(np.mean(2.0 * np.arccos(np.clip(dots, 0.0, 1.0))))
        if cost < best_cost - 1e-12:
            best, best_cost = cand, cost
    return best


def make_cyclic(result: rt.RetargetResult, blend: int, up_local: np.ndarray) -> rt.RetargetResult:
    """A seamless loop of ``result`` (see the module docstring); ``blend`` ≥ 1 frames of cross-fade.

    ``up_local`` is the world's up direction in the root bone's location frame: the loop's travel is
    its ground-plane part only, so a clip that ends higher or lower than it starts does not climb.
    """
    t = result.num_frames
    blend = int(blend)
    if blend < 1:
        raise ValueError(f"the cyclic blend must be at least 1 frame, not {blend}")
    if t - blend < blend + MIN_LOOP:
        raise ValueError(f"a {t}-frame clip is too short for a {blend}-frame cyclic blend "
                         f"(needs at least {2 * blend + MIN_LOOP} frames)")
    loop = best_loop_point(result.quats, blend)
    up = np.asarray(up_local, dtype=np.float64)
    up = up / np.linalg.norm(up)
    travel = result.root_location[loop] - result.root_location[0]
    travel = travel - up * float(travel @ up)

    w = blend_weights(blend)
    q = result.quats[: loop + 1].copy()
    head, tail = result.quats[:blend], result.quats[loop: loop + blend]
    q[:blend] = rt.slerp(tail, head, np.broadcast_to(w[:, None], head.shape[:2]))
    q[loop] = q[0]
    q = rt.quat_continuity(q, axis=0)
    loc = result.root_location[: loop + 1].copy()
    shifted = result.root_location[loop: loop + blend] - travel
    loc[:blend] = shifted * (1.0 - w[:, None]) + result.root_location[:blend] * w[:, None]
    loc[loop] = loc[0] + travel
    return rt.RetargetResult(result.bone_names, q, result.root_bone, loc, result.fps, result.placement,
                             list(result.switches), list(result.rest_bones))
