"""The root trajectory: BlazePose's world landmarks are hip-centred, so the translation comes from the image.

Assumptions (stated to the user in the docs): a **static pinhole camera** with the principal point at the
image centre and a known horizontal field of view (``DEFAULT_FOV_DEG`` when the user gives none: a typical
phone / webcam), **BlazePose's metric body size** (its world landmarks are in metres, so the distance follows
from how large the body appears), and a **flat floor** the feet stand on.

Per frame the hip-centre translation ``t`` (camera frame: x right, y down, z forward) solves, in the least
squares sense over the visible body landmarks (weighted by visibility), the pinhole equations
``u - cx = f (X + tx) / (Z + tz)`` and ``v - cy = f (Y + ty) / (Z + tz)``, which are linear in ``t``.
Gravity is the normal of a plane fitted to the feet where they rest (when they cover enough ground), else
the mean trunk direction; the floor is where the feet rest.
"""

from __future__ import annotations

import numpy as np

from .smpl import L_HEEL, L_TOE, R_HEEL, R_TOE

DEFAULT_FOV_DEG = 55.0
SOLVE_LANDMARKS = tuple(range(11, 33))  # body landmarks (the face is small and noisy in depth)


def focal_pixels(width: int, fov_deg: float) -> float:
    return width / 2 / np.tan(np.radians(fov_deg) / 2)


def camera_translation(image_xy: np.ndarray, world: np.ndarray, weights: np.ndarray, width: int, height: int,
                       fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """Hip-centre position [T, 3] in camera coordinates (x right, y down, z forward, metres)."""
    f = focal_pixels(width, fov_deg)
    cx, cy = width / 2, height / 2
    idx = list(SOLVE_LANDMARKS)
    out = np.zeros((len(world), 3))
    for k in range(len(world)):
        u = image_xy[k, idx, 0] - cx
        v = image_xy[k, idx, 1] - cy
        X, Y, Z = world[k, idx, 0], world[k, idx, 1], world[k, idx, 2]
        w = np.sqrt(np.clip(weights[k, idx], 1e-3, 1.0))
        zero = np.zeros_like(u)
        a = np.concatenate([np.stack([f + zero, zero, -u], 1), np.stack([zero, f + zero, -v], 1)])
        b = np.concatenate([u * Z - f * X, v * Z - f * Y])
        ww = np.concatenate([w, w])
        out[k] = np.linalg.lstsq(a * ww[:, None], b * ww, rcond=None)[0]
    return out


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation matrix taking unit vector ``a`` onto unit vector ``b``."""
    v = np.cross(a, b)
    c = float(a @ b)
    if np.linalg.norm(v) < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def gravity_up(landmarks_yup: np.ndarray, trunk_up: np.ndarray, min_spread: float = 0.4) -> tuple[np.ndarray, str]:
    """Up direction in the (Y-up camera) frame and how it was found ('feet plane' or 'trunk')."""
    feet = landmarks_yup[:, [L_HEEL, L_TOE, R_HEEL, R_TOE]]  # [T, 4, 3]
    speed = np.linalg.norm(np.diff(feet, axis=0), axis=-1)  # [T-1, 4]
    still = speed < np.percentile(speed, 40)
    pts = feet[1:][still]
    up = trunk_up / np.linalg.norm(trunk_up)
    if len(pts) >= 8:
        centred = pts - pts.mean(0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        normal = vt[2] * np.sign(vt[2] @ up)
        if s[1] / np.sqrt(len(pts)) > min_spread / 4 and normal @ up > np.cos(np.radians(30)):
            return normal, "feet plane"
    return up, "trunk"


def to_world(points_cam: np.ndarray, trunk_up_cam: np.ndarray) -> tuple[np.ndarray, dict]:
    """Camera-frame points [T, N, 3] (x right, y down, z forward) → Y-up world with the floor at y = 0.

    ``points_cam`` are the BlazePose landmarks placed by their translation (the feet are used for the floor).
    Returns the rotated points and how gravity was found.
    """
    flip = np.diag([1.0, -1.0, -1.0])  # camera → Y up, facing the camera = +Z
    p = points_cam @ flip.T
    up, how = gravity_up(p, trunk_up_cam @ flip.T)
    r = _rotation_between(up, np.array([0.0, 1.0, 0.0]))
    p = p @ r.T
    feet_y = p[:, [L_HEEL, L_TOE, R_HEEL, R_TOE], 1].min(axis=1)
    p[..., 1] -= np.percentile(feet_y, 10)
    return p, {"gravity": how, "camera_tilt_deg": float(np.degrees(np.arccos(np.clip(up[1], -1, 1))))}
