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

Two corrections matter for what the motion *means* (measured on rendered clips, docs/video.md): BlazePose
predicts the body as seen along the ray through its crop, not along the optical axis, so each frame's world
landmarks are turned onto that ray (:func:`landmarks_in_camera`); and the height of the body above the floor
comes from the resting feet frame by frame (:func:`ground_feet`), not from the depth solve, whose noise made
the whole body float (the lowest joint of the clip was a noise dip, every other frame hovered centimetres up).
"""

from __future__ import annotations

import numpy as np

from .smpl import L_HEEL, L_TOE, R_HEEL, R_TOE

DEFAULT_FOV_DEG = 55.0
SOLVE_LANDMARKS = tuple(range(11, 33))  # body landmarks (the face is small and noisy in depth)
FOOT_JOINTS = (7, 8, 10, 11)  # SMPL-22 left/right ankle, left/right foot


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


def ray_rotations(trans: np.ndarray) -> np.ndarray:
    """Per frame [T, 3, 3], the smallest rotation taking the optical axis (0, 0, 1) onto the ray to ``trans``."""
    d = trans / np.linalg.norm(trans, axis=-1, keepdims=True)
    z = np.array([0.0, 0.0, 1.0])
    return np.stack([_rotation_between(z, v) for v in d])


def landmarks_in_camera(image_xy: np.ndarray, world: np.ndarray, weights: np.ndarray, width: int, height: int,
                        fov_deg: float = DEFAULT_FOV_DEG, iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """World landmarks turned into the camera frame, and the hip-centre translation [T, 3].

    BlazePose sees a crop around the person and predicts the body as if the camera looked straight at it:
    its world landmarks are in the frame of the ray through the crop. A person off the image centre is seen
    from the side of that ray (a walker 1.5 m to the right at 4 m is seen 20 degrees from the side): the
    landmarks are turned by the rotation from the optical axis to the ray through the hip centre, and the
    translation solved again with them (a few fixed-point rounds; the ray moves little).
    """
    trans = camera_translation(image_xy, world, weights, width, height, fov_deg)
    cam = world
    for _ in range(iterations):
        cam = np.einsum("tij,tnj->tni", ray_rotations(trans), world)
        trans = camera_translation(image_xy, cam, weights, width, height, fov_deg)
    return cam, trans


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation matrix taking unit vector ``a`` onto unit vector ``b``."""
    v = np.cross(a, b)
    c = float(a @ b)
    if np.linalg.norm(v) < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def gravity_up(landmarks_yup: np.ndarray, trunk_up: np.ndarray, min_spread: float = 0.4) -> tuple[np.ndarray, str]:
    """Up direction in the (Y-up camera) frame and how it was found ('feet plane' or 'trunk').

    The camera is assumed level (no roll: the horizon horizontal in the picture), so only its pitch is
    estimated: the sideways component of the estimate is dropped. On the rendered clips the estimates
    (feet plane and trunk alike) carried 2–5 degrees of spurious roll, which leant the whole body sideways.
    """
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
            return _level(normal), "feet plane"
    return _level(up), "trunk"


def _level(up: np.ndarray) -> np.ndarray:
    """``up`` without roll: its component along the camera's x axis (left-right in the picture) removed."""
    v = np.array([0.0, up[1], up[2]])
    return v / np.linalg.norm(v)


def ground_feet(joints: np.ndarray, fps: float, window_s: float = 0.4, share: float = 50.0) -> np.ndarray:
    """Joints [T, 22, 3] (Y up) lifted or lowered per frame so that the resting foot stands on y = 0.

    The lowest foot joint (ankles, balls) of each frame is the floor contact in most frames of walking and
    standing; its height is the depth solve's vertical noise. The floor offset is that height's median over a
    sliding 0.4 s window (a running stride's flight phase is shorter than half of it, so a run keeps its
    bounce; a jump longer than about 0.2 s in the air is partly flattened), smoothed, and never above the
    lowest foot: no foot goes below the floor.
    """
    from scipy.ndimage import gaussian_filter1d, percentile_filter

    low = joints[:, list(FOOT_JOINTS), 1].min(axis=1)
    size = max(3, int(round(window_s * fps)) | 1)
    offset = percentile_filter(low, share, size=size, mode="nearest")
    offset = gaussian_filter1d(offset, max(0.05 * fps, 0.3), mode="nearest")
    offset = np.minimum(offset, low)
    out = np.array(joints, dtype=np.float64)
    out[..., 1] -= offset[:, None]
    return out


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
