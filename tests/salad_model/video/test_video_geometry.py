"""The torch-free geometry of video → motion on synthetic data with known answers (no video, no mediapipe)."""

import numpy as np
import pytest

from salad_model.video import VideoError
from salad_model.video.extract import _check_framing
from salad_model.video.landmarks import Landmarks, _crop_window, largest_person_track
from salad_model.video.smpl import (
    L_ANK,
    L_EAR,
    L_HEEL,
    L_HIP,
    L_SH,
    L_TOE,
    R_ANK,
    R_EAR,
    R_HEEL,
    R_HIP,
    R_SH,
    R_TOE,
    J,
    fill_gaps,
    smpl22_from_blazepose,
)
from salad_model.video.trajectory import camera_translation, focal_pixels, to_world

RNG = np.random.default_rng(0)


def standing_landmarks(t: int = 1) -> np.ndarray:
    """33 BlazePose-like points of an upright person (Y up, facing +Z, left = +X), hips at the origin."""
    p = RNG.normal(0, 0.05, (t, 33, 3))
    pts = {L_HIP: (0.12, 0, 0), R_HIP: (-0.12, 0, 0), L_SH: (0.19, 0.5, 0), R_SH: (-0.19, 0.5, 0),
           L_EAR: (0.07, 0.68, 0), R_EAR: (-0.07, 0.68, 0), 25: (0.12, -0.45, 0.03), 26: (-0.12, -0.45, 0.03),
           L_ANK: (0.12, -0.88, 0), R_ANK: (-0.12, -0.88, 0), L_HEEL: (0.12, -0.95, -0.05),
           R_HEEL: (-0.12, -0.95, -0.05), L_TOE: (0.12, -0.95, 0.15), R_TOE: (-0.12, -0.95, 0.15),
           13: (0.45, 0.5, 0), 14: (-0.45, 0.5, 0), 15: (0.7, 0.5, 0), 16: (-0.7, 0.5, 0)}
    for i, v in pts.items():
        p[:, i] = v
    return p


def test_fill_gaps_interpolates_linearly_and_holds_the_ends():
    x = np.arange(10.0)[:, None] * np.array([1.0, -2.0])
    valid = np.ones(10, bool)
    valid[[0, 4, 5, 9]] = False
    y = fill_gaps(np.where(valid[:, None], x, np.nan), valid)
    assert np.allclose(y[1:9], x[1:9])  # interior gaps: exactly the line
    assert np.allclose(y[0], x[1]) and np.allclose(y[9], x[8])  # ends: the nearest valid frame


def test_smpl22_mapping_places_the_missing_joints_inside_the_body():
    p = standing_landmarks()
    j = smpl22_from_blazepose(p)[0]
    pelvis, neck = j[J["pelvis"]], j[J["neck"]]
    spine = [j[J[k]] for k in ("spine1", "spine2", "spine3")]
    axis = (neck - pelvis) / np.linalg.norm(neck - pelvis)
    heights = [(s - pelvis) @ axis for s in spine]
    assert 0 < heights[0] < heights[1] < heights[2] < np.linalg.norm(neck - pelvis)  # in order, between
    for s in spine:  # on the straight line pelvis → neck
        assert np.linalg.norm(np.cross(s - pelvis, axis)) < 1e-9
    assert 0 < j[J["left_hip"], 0] < p[0, L_HIP, 0] and p[0, R_HIP, 0] < j[J["right_hip"], 0] < 0
    assert j[J["left_hip"], 1] <= 0 < pelvis[1]  # SMPL hips below the pelvis (at the BlazePose hip line)
    assert 0 < j[J["left_collar"], 0] < j[J["left_shoulder"], 0]  # collars between the neck and the shoulders
    assert j[J["head"], 1] > neck[1] > j[J["left_collar"], 1]
    foot = j[J["left_foot"]]
    assert p[0, L_HEEL, 2] < foot[2] < p[0, L_TOE, 2]  # the ball of the foot, between heel and toe


def _project(points: np.ndarray, f: float, w: int, h: int) -> np.ndarray:
    return np.stack([f * points[..., 0] / points[..., 2] + w / 2, f * points[..., 1] / points[..., 2] + h / 2], -1)


@pytest.mark.parametrize("fov", [40.0, 70.0])
def test_camera_translation_recovers_the_hip_centre_from_the_image(fov):
    w, h, t = 640, 480, 6
    world = standing_landmarks(t) * np.array([1.0, -1.0, -1.0])  # camera axes: y down, z away
    truth = np.stack([np.linspace(-0.8, 0.9, t), np.full(t, 0.3), np.linspace(3.0, 6.0, t)], 1)
    img = _project(world + truth[:, None], focal_pixels(w, fov), w, h)
    got = camera_translation(img, world, np.ones((t, 33)), w, h, fov)
    assert np.abs(got - truth).max() < 1e-6  # exact data: exact answer (numerical tolerance)


def test_to_world_levels_a_tilted_camera_and_puts_the_feet_on_the_floor():
    t = 40
    body = standing_landmarks(t)
    body[:, :, 1] += 0.95  # feet at ~0
    body[:, :, 0] += np.linspace(-1.5, 1.5, t)[:, None]  # walking across: the resting feet span the floor
    body[:, :, 2] += np.where(np.arange(t) % 10 < 5, 0.0, 0.6)[:, None]  # … and in depth
    tilt = np.radians(20.0)  # camera looking down 20 degrees, 4 m in front, 1.5 m up
    rx = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    cam = (body - np.array([0.0, 1.5, 4.0])) @ rx.T * np.array([1.0, -1.0, -1.0])
    trunk = ((cam[:, L_SH] + cam[:, R_SH]) - (cam[:, L_HIP] + cam[:, R_HIP])).mean(0)
    out, how = to_world(cam, trunk)
    assert how["gravity"] == "feet plane" and abs(how["camera_tilt_deg"] - 20.0) < 1.0
    feet = out[:, [L_HEEL, L_TOE, R_HEEL, R_TOE], 1].min(1)
    assert np.abs(feet - feet.mean()).max() < 1e-6 and abs(np.percentile(feet, 10)) < 1e-9  # a level floor at 0
    up = (out[:, L_SH] + out[:, R_SH] - out[:, L_HIP] - out[:, R_HIP]).mean(0)
    assert np.degrees(np.arccos(up[1] / np.linalg.norm(up))) < 0.5


def test_largest_person_track_follows_the_tallest_box_through_list_order_changes():
    big, small = np.array([100.0, 50, 60, 200]), np.array([400.0, 80, 40, 120])
    samples = {0: np.stack([small, big]), 10: np.stack([big + [20, 0, 0, 0], small]), 20: np.zeros((0, 4))}
    track = largest_person_track(samples, 21)
    assert np.allclose(track[0], big) and np.allclose(track[10], big + [20, 0, 0, 0])
    assert np.allclose(track[5], big + [10, 0, 0, 0])  # interpolated between samples
    assert np.allclose(track[20], track[10])  # held after the last detection
    assert largest_person_track({0: np.zeros((0, 4))}, 5) is None
    x0, y0, x1, y1 = _crop_window(big, 640, 480)
    assert 0 <= x0 < 100 and 160 < x1 <= 640 and y0 == 0 and y1 <= 480


def _landmarks(out_share: float) -> Landmarks:
    t = 40
    img = np.tile(np.array([320.0, 240.0, 0.0]), (t, 33, 1))
    k = int(round(out_share * t))
    img[:k, L_ANK, 1] = 600.0  # below the picture
    img[:k, R_ANK, 1] = 600.0
    return Landmarks(img, np.zeros((t, 33, 3)), np.ones((t, 33)), np.ones(t, bool), 25.0, 640, 480)


def test_framing_refuses_a_person_mostly_out_of_frame_and_warns_when_a_little():
    with pytest.raises(VideoError, match="partly out of frame: left ankle, right ankle|partly out of frame: right "
                                         "ankle, left ankle"):
        _check_framing(_landmarks(0.5))
    warn = _check_framing(_landmarks(0.1))
    assert len(warn) == 1 and "ankle" in warn[0] and "10%" in warn[0]
    assert _check_framing(_landmarks(0.0)) == []
