"""The corrections that made recovered motion *mean* the same as its truth (issue 14), on synthetic landmarks.

On the rendered walks the evaluation classifier read the recovered motion as *dash* / *bye* although the pose
error was 4–6 cm. Swapping feature groups between truth and recovery located it: the root-relative joint
positions, i.e. (1) the whole body hovered 4–8 cm above the floor (the floor was the clip's lowest joint, a
noise dip of the depth solve), (2) it leant sideways (gravity estimates with 2–5 degrees of roll) and (3)
BlazePose's body is seen along the ray through its crop, not along the optical axis (walkers off the image
centre turned by up to 20 degrees, their path bent). Each test builds what BlazePose would report for a known
motion and fails on the code before the fix.
"""

import threading

import numpy as np
import pytest

from salad_model.motion.motion_process import facing_angle
from salad_model.video import landmarks as lmk
from salad_model.video.extract import landmarks_to_motion
from salad_model.video.landmarks import Landmarks
from salad_model.video.reader import prefetch
from salad_model.video.smpl import L_EAR, L_HIP, L_SH, R_EAR, R_HIP, R_SH, J
from salad_model.video.trajectory import focal_pixels, gravity_up, ground_feet

FPS, W, H, FOV = 25.0, 640, 480, 55.0
FEET = [J["left_ankle"], J["right_ankle"], J["left_foot"], J["right_foot"]]


def body_yup() -> np.ndarray:
    """33 BlazePose points of an upright person (metres, Y up, facing +Z, left = +X), hip centre at 0."""
    p = np.zeros((33, 3))
    for i in range(11):  # face points: around the head
        p[i] = (0.03 * np.cos(i), 0.66 + 0.02 * np.sin(i), 0.08)
    pts = {L_EAR: (0.07, 0.66, 0.0), R_EAR: (-0.07, 0.66, 0.0), L_SH: (0.18, 0.5, 0), R_SH: (-0.18, 0.5, 0),
           13: (0.22, 0.22, 0), 14: (-0.22, 0.22, 0), 15: (0.24, -0.04, 0.05), 16: (-0.24, -0.04, 0.05),
           17: (0.25, -0.1, 0.06), 18: (-0.25, -0.1, 0.06), 19: (0.24, -0.11, 0.07), 20: (-0.24, -0.11, 0.07),
           21: (0.23, -0.08, 0.07), 22: (-0.23, -0.08, 0.07), L_HIP: (0.1, 0, 0), R_HIP: (-0.1, 0, 0),
           25: (0.1, -0.43, 0.02), 26: (-0.1, -0.43, 0.02), 27: (0.1, -0.85, 0), 28: (-0.1, -0.85, 0),
           29: (0.1, -0.9, -0.05), 30: (-0.1, -0.9, -0.05), 31: (0.1, -0.92, 0.15), 32: (-0.1, -0.92, 0.15)}
    for i, v in pts.items():
        p[i] = v
    return p


def _rot_x(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _ray_rotation(d: np.ndarray) -> np.ndarray:
    """Smallest rotation taking (0, 0, 1) onto the unit vector ``d`` (Rodrigues)."""
    z = np.array([0.0, 0.0, 1.0])
    v, c = np.cross(z, d), float(z @ d)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def seen_by_blazepose(size_wobble: float = 0.0) -> tuple[Landmarks, np.ndarray]:
    """A person standing upright, facing the camera's direction, carried along a diagonal path across the view.

    Camera: level (no roll), pitched 8 degrees down, 1.3 m above the floor. World landmarks are what BlazePose
    reports: hip-centred, camera axes (x right, y down, z away), the body seen along the ray through the hip
    centre. ``size_wobble`` scales the world landmarks per frame (BlazePose's body size varies a little from
    frame to frame, so the depth solve wobbles). Returns the landmarks and the true hip path (floor frame).
    """
    t = 50
    b = body_yup()
    b[:, 1] += 0.92  # feet on the floor (the toes at y = 0)
    path = np.stack([np.linspace(-1.6, 1.6, t), np.zeros(t), np.linspace(0.0, -2.0, t)], 1)  # x, -, z (Y up)
    cam_pos, pitch = np.array([0.0, 1.3, 4.5]), _rot_x(-8.0)  # the camera looks along -Z, tilted down
    flip = np.diag([1.0, -1.0, -1.0])  # Y-up camera axes → x right, y down, z away
    image, world = [], []
    f = focal_pixels(W, FOV)
    for k in range(t):
        pts_cam = (b + path[k] - cam_pos) @ pitch.T @ flip.T  # camera frame, x right, y down, z away
        hip = (pts_cam[L_HIP] + pts_cam[R_HIP]) / 2
        crop_view = (pts_cam - hip) @ _ray_rotation(hip / np.linalg.norm(hip))  # R^T applied to each point
        scale = 1.0 + size_wobble * np.sin(2 * np.pi * k / 9.0)
        world.append(crop_view * scale)
        uv = f * pts_cam[:, :2] / pts_cam[:, 2:] + np.array([W / 2, H / 2])
        image.append(np.concatenate([uv, np.zeros((33, 1))], 1))
    lm = Landmarks(np.array(image), np.array(world), np.ones((t, 33)), np.ones(t, bool), FPS, W, H)
    return lm, path


def test_a_person_off_the_image_centre_keeps_facing_the_same_way():
    """Crop view turned onto the ray: without it the body turns by the ray's angle (a 33 degree swing here)."""
    lm, _ = seen_by_blazepose()
    joints, _ = landmarks_to_motion(lm, FOV)
    yaw = np.degrees(np.unwrap([facing_angle(j) for j in joints]))
    assert np.ptp(yaw) < 1.0, np.ptp(yaw)


def test_the_recovered_path_is_the_true_path():
    lm, path = seen_by_blazepose()
    joints, _ = landmarks_to_motion(lm, FOV)
    rec = joints[:, 0, [0, 2]] - joints[0, 0, [0, 2]]
    truth = path[:, [0, 2]] - path[0, [0, 2]]
    err = np.abs(np.linalg.norm(rec, axis=1) - np.linalg.norm(truth, axis=1))
    assert err.max() < 0.02, err.max()  # 2 cm in 3.8 m (before the fix: 30 cm)


def test_the_feet_stay_on_the_floor_when_the_depth_solve_wobbles():
    """The body's height above the floor comes from the resting feet, not from the depth solve.

    BlazePose's size wobbling by ±3% moves the depth by ±13 cm and the feet up and down by centimetres; the
    floor used to be the clip's lowest point, so most frames hovered above it.
    """
    lm, _ = seen_by_blazepose(size_wobble=0.03)
    joints, _ = landmarks_to_motion(lm, FOV)
    low = joints[:, FEET, 1].min(axis=1) - joints[:, FEET, 1].min()
    assert low.max() < 0.01, low.round(3)  # every frame stands on the floor (before the fix: 3.8 cm)


def test_a_level_camera_never_leans_the_body_sideways():
    """Gravity's sideways (roll) component is dropped: only the pitch is estimated."""
    lean = _rot_x(0.0)
    roll = np.radians(4.0)
    trunk = np.array([np.sin(roll), np.cos(roll), 0.0]) @ _rot_x(10.0).T @ lean  # 4° sideways, 10° pitch
    still = np.zeros((20, 33, 3))  # too few resting feet for a plane: the trunk decides
    up, how = gravity_up(still, trunk)
    assert how == "trunk" and abs(up[0]) < 1e-12
    assert np.degrees(np.arctan2(up[2], up[1])) == pytest.approx(10.0, abs=0.2)  # the pitch is kept


def test_ground_feet_keeps_a_runs_flight_and_removes_a_slow_drift():
    t = np.arange(100) / FPS
    phase = (t / 0.36) % 1.0
    flight = np.where(phase > 0.65, 0.08 * np.sin(np.pi * (phase - 0.65) / 0.35), 0.0)  # 35% in the air
    drift = 0.04 + 0.05 * np.sin(2 * np.pi * t / 3.0)  # the depth solve's slow vertical error
    joints = np.zeros((len(t), 22, 3))
    joints[:, :, 1] = 0.9
    joints[:, FEET, 1] = 0.0
    joints[..., 1] += (flight + drift)[:, None]
    out = ground_feet(joints, FPS)
    low = out[:, FEET, 1].min(axis=1)
    assert np.abs(low - flight).max() < 0.015, np.abs(low - flight).max()  # flight kept, drift gone
    assert low.min() > -1e-9  # no foot below the floor
    assert np.allclose(out[:, 0, 1] - low, 0.9)  # the body moved as a whole


def test_prefetch_keeps_order_and_raises_the_readers_error():
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise ValueError("damaged frame")

    with pytest.raises(ValueError, match="damaged frame"):
        list(prefetch(broken()))


def test_prefetch_closed_early_stops_its_thread_and_closes_the_reader():
    closed = threading.Event()

    def frames():
        try:
            yield from range(10_000)
        finally:
            closed.set()

    before = threading.active_count()
    it = prefetch(frames(), depth=2)
    assert next(it) == 0
    it.close()  # a cancel
    assert closed.is_set() and threading.active_count() == before


def test_the_people_count_searches_each_sampled_frame_once_at_its_own_size(monkeypatch):
    """The 2x search (four times the cost) is left to the small-person retry, when BlazePose missed the person."""
    calls = []

    def fake(img, scale):
        calls.append(scale)
        return np.zeros((0, 4))

    monkeypatch.setattr(lmk, "_hog_boxes", fake)
    boxes = lmk.people_boxes({0: np.zeros((4, 4, 3), np.uint8), 5: np.zeros((4, 4, 3), np.uint8)})
    assert calls == [1.0, 1.0] and sorted(boxes) == [0, 5]


def test_the_clean_up_keeps_the_videos_path_and_heading():
    """The model's clean-up re-derives the root path from its velocities and drifts (mean path error 15 → 19
    cm on the evaluation set); the cleaned body is carried along the video's own path and heading instead."""
    from testdata import DATA

    from salad_model.motion.bandai_rig import bvh_to_smpl22
    from salad_model.motion.motion_process import canonicalize
    from salad_model.video.extract import with_path_of

    path = canonicalize(bvh_to_smpl22((DATA / "dataset-2_walk-turn-left_active_024.bvh").read_text()))
    t = np.linspace(0.0, 1.0, len(path))
    drift = np.radians(30.0) * t  # the cleaned motion's heading drifts by up to 30 degrees …
    c, s = np.cos(drift)[:, None], np.sin(drift)[:, None]
    local = path - path[:, :1] * [1, 0, 1]
    x, z = local[..., 0], local[..., 2]
    turned = np.stack([c * x + s * z, local[..., 1], -s * x + c * z], -1)
    pose = turned + (path[:, :1] + np.array([0.5, 0.0, -0.3]) * t[:, None, None]) * [1, 0, 1]  # … and its path
    out = with_path_of(pose, path)
    np.testing.assert_allclose(out[:, 0, [0, 2]], path[:, 0, [0, 2]], atol=1e-9)  # the video's root track
    heading_err = np.angle(np.exp(1j * (facing_angle(out) - facing_angle(path))))
    assert np.degrees(np.abs(heading_err)).max() < 1.0  # the video's heading (a smooth drift survives smoothing)
    np.testing.assert_allclose(out[..., 1], pose[..., 1], atol=1e-9)  # heights are the cleaned motion's

    def shape(j):  # root-relative distances between joints: unchanged by a turn about +Y
        return np.linalg.norm(j[:, :, None] - j[:, None], axis=-1)

    np.testing.assert_allclose(shape(out), shape(pose), atol=1e-9)  # the body is the cleaned one


def test_clean_video_motion_keeps_the_video_path_and_records_the_recipe():
    """The cleaned body (here: wrists 10 cm higher, the whole clip turned 40°, moved and lifted, as a model's
    re-derived path may be) comes back on the floor, on the video's own path and heading; the recipe is
    recorded, the input untouched."""
    from types import SimpleNamespace

    from testdata import DATA

    from salad_model.motion.bandai_rig import bvh_to_smpl22
    from salad_model.motion.motion_process import canonicalize, foot_contacts
    from salad_model.video.extract import VideoMotion, clean_video_motion

    raw = canonicalize(bvh_to_smpl22((DATA / "dataset-2_walk-turn-left_active_024.bvh").read_text()))
    wrists = [J["left_wrist"], J["right_wrist"]]
    better = raw.copy()
    better[:, wrists, 1] += 0.1
    yaw = np.radians(40.0)
    rot = np.array([[np.cos(yaw), 0.0, np.sin(yaw)], [0.0, 1.0, 0.0], [-np.sin(yaw), 0.0, np.cos(yaw)]])
    cleaned = better @ rot.T + [0.7, 0.05, -0.4]  # and 5 cm above the floor
    calls = []

    class Pipe:
        name = "fake-model"

        def clean_motion(self, joints, strength, callback=None):
            calls.append((joints, strength))
            return SimpleNamespace(joints=cleaned.astype(np.float32), meta={"steps": 12, "seed": 3})

    landmarks = object()  # passed through as it is
    video = VideoMotion(raw.astype(np.float32), foot_contacts(raw), {"source": "video", "frames": len(raw)},
                        landmarks=landmarks, warnings=["a warning"])
    out = clean_video_motion(video, Pipe(), 0.4)
    assert len(calls) == 1 and calls[0][0] is video.joints and calls[0][1] == 0.4
    assert out.joints.dtype == np.float32 and out.joints.shape == raw.shape
    np.testing.assert_allclose(out.joints, better, atol=1e-4)  # the cleaned body, on the video's path and heading
    assert np.array_equal(out.contacts, foot_contacts(out.joints.astype(np.float64)))
    assert out.meta == {"source": "video", "frames": len(raw),
                        "clean_up": {"strength": 0.4, "model": "fake-model", "steps": 12, "seed": 3}}
    assert video.meta == {"source": "video", "frames": len(raw)}  # the input's record is not changed
    assert out.warnings == ["a warning"] and out.warnings is not video.warnings
    assert out.landmarks is landmarks


def test_the_clean_up_does_not_take_on_the_videos_per_frame_heading_jitter():
    """A video's per-frame heading is noisy (±4° from frame to frame here); the cleaned body follows the
    video's heading smoothed over 0.1 s, so it does not shake with it."""
    from testdata import DATA

    from salad_model.motion.bandai_rig import bvh_to_smpl22
    from salad_model.motion.motion_process import canonicalize
    from salad_model.video.extract import with_path_of

    clean = canonicalize(bvh_to_smpl22((DATA / "dataset-2_walk-turn-left_active_024.bvh").read_text()))
    jitter = np.radians(4.0) * np.where(np.arange(len(clean)) % 2 == 0, 1.0, -1.0)
    c, s = np.cos(jitter)[:, None], np.sin(jitter)[:, None]
    local = clean - clean[:, :1] * [1, 0, 1]
    x, z = local[..., 0], local[..., 2]
    video = np.stack([c * x + s * z, local[..., 1], -s * x + c * z], -1) + clean[:, :1] * [1, 0, 1]

    def roughness(j):  # frame-to-frame heading change, degrees
        return np.degrees(np.abs(np.diff(np.unwrap(facing_angle(j))))).mean()

    out = with_path_of(clean, video)
    assert roughness(video) > 5.0  # the jitter shows (8° between neighbouring frames)
    assert roughness(out) < 0.25 * roughness(video)
