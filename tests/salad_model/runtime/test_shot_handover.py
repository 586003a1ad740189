"""Timelines with the nominal hand-over: each segment's prompt governs its own span from its nominal start,
and changing a segment still leaves every frame before its start bit-identical."""

import numpy as np
import pytest

from salad_model.runtime.pipeline import InputError
from salad_model.runtime.seams import smooth_seams
from salad_model.runtime.shot_handover import HANDOVER_FRAMES, crossfade
from salad_model.runtime.shots import Segment, ShotDirector, derive_seed

STEPS = 4
SEGS = [Segment("a person walks forward", 3.0), Segment("a person waves", 2.4), Segment("a person runs", 3.2)]


@pytest.fixture(scope="module")
def nominal(tiny_pipeline):
    return ShotDirector(tiny_pipeline, steps=STEPS, handover="nominal")


@pytest.fixture(scope="module")
def base(nominal):
    return nominal.compose(SEGS, seed=7)


def test_nominal_timeline_is_deterministic_and_reports_nominal_spans(nominal, base):
    again = nominal.compose(SEGS, seed=7)
    assert base.joints.shape == (172, 22, 3) and np.array_equal(base.joints, again.joints)
    shot = base.meta["shot"]
    assert shot["handover"] == "nominal"
    assert base.meta["frames"] == 172 and shot["seconds"] == pytest.approx(172 / 20)  # what the worker reports
    spans = [(s["content_start"], s["content_end"]) for s in shot["segments"]]
    assert spans == [(s["start"], s["end"]) for s in shot["segments"]] == [(0, 60), (60, 108), (108, 172)]
    assert shot["seams"][:2] == [60, 108]  # each later segment's first window generates from its nominal start
    assert base.latent.shape[1] == 172 // 4


def test_a_segments_prompt_governs_frames_right_after_its_start(nominal, base):
    other = nominal.compose([SEGS[0], Segment("a person jumps", 2.4), SEGS[2]], seed=7)
    assert np.array_equal(other.features[:60], base.features[:60])  # bit-identical before the start
    assert np.array_equal(other.joints[:60], base.joints[:60])
    # the prompt acts from its start: already inside the first hand-over frames, and within the first 0.8 s
    # (the old "spill" hand-over left those 16 frames to the previous prompt)
    assert np.abs(other.features[60:60 + HANDOVER_FRAMES] - base.features[60:60 + HANDOVER_FRAMES]).max() > 1e-4
    assert np.abs(other.features[68:76] - base.features[68:76]).max() > 1e-3


def test_changing_or_rerolling_a_segment_keeps_everything_before_it(nominal, base):
    last = nominal.compose([SEGS[0], SEGS[1], Segment("a person jumps", 3.2)], seed=7)
    assert np.array_equal(last.joints[:108], base.joints[:108])
    assert np.abs(last.joints[108:] - base.joints[108:]).max() > 1e-3
    reroll = nominal.compose([SEGS[0], Segment(SEGS[1].prompt, SEGS[1].seconds, seed=99), SEGS[2]], seed=7)
    assert np.array_equal(reroll.joints[:60], base.joints[:60])
    longer = nominal.compose(SEGS[:2] + [Segment("a person runs", 6.0)], seed=7)
    assert np.array_equal(longer.joints[:108], base.joints[:108])


def test_long_segments_span_several_windows_and_stay_prefix_stable(tiny_pipeline):
    d = ShotDirector(tiny_pipeline, steps=1, handover="nominal")
    segs = [Segment("walk", 15.0), Segment("wave", 12.0)]
    seen = []
    m = d.compose(segs, seed=0, callback=lambda i, n: seen.append((i, n)))
    assert m.joints.shape == (540, 22, 3) and np.isfinite(m.joints).all()
    windows = m.meta["shot"]["windows"]
    assert len(windows) >= 4 and all(w["context_frames"] + w["new_frames"] <= 196 for w in windows)
    assert seen[-1] == (len(windows), len(windows))
    other = d.compose([segs[0], Segment("run", 12.0)], seed=0)
    assert np.array_equal(other.joints[:300], m.joints[:300])
    assert np.abs(other.joints[300:] - m.joints[300:]).max() > 1e-3


def test_crossfade_eases_in_and_keeps_contacts_binary():
    prev, new = np.zeros((12, 6)), np.ones((12, 6))
    out = crossfade(prev, new, 8)
    w = out[:8, 0]
    assert np.all(np.diff(w) > 0) and 0 < w[0] < 0.05 and 0.95 < w[-1] < 1  # smoothstep: slow at both ends
    assert np.array_equal(out[8:], new[8:])
    assert set(np.unique(out[:, -4:])) <= {0.0, 1.0}


def test_unknown_handover_and_soft_blend_are_refused(tiny_pipeline):
    with pytest.raises(InputError, match="handover must be one of spill, nominal"):
        ShotDirector(tiny_pipeline, handover="middle")
    with pytest.raises(InputError, match="blend must be 0"):
        ShotDirector(tiny_pipeline, handover="nominal", blend=2)


def test_crossfade_weights_are_the_smoothstep_of_evenly_spaced_steps():
    """Exact values (tolerance 1e-12): f frames at t = k / (f + 1), weight 3t² − 2t³; the contacts (last 4
    channels) switch to the new decode from weight ½ on."""
    prev = np.arange(5 * 7, dtype=float).reshape(5, 7)
    new = -np.ones((6, 7))
    before = (prev.copy(), new.copy())
    out = crossfade(prev, new, 3)
    w = np.array([0.15625, 0.5, 0.84375])[:, None]  # t = 1/4, 1/2, 3/4
    np.testing.assert_allclose(out[:3, :3], (1 - w) * prev[:3, :3] + w * new[:3, :3], atol=1e-12)
    np.testing.assert_array_equal(out[:3, 3:], np.concatenate([prev[:1, 3:], new[1:3, 3:]]))  # w = ½ is new
    np.testing.assert_array_equal(out[3:], new[3:])
    assert out.shape == new.shape and out is not new
    np.testing.assert_array_equal(prev, before[0])  # the inputs are left as they were
    np.testing.assert_array_equal(new, before[1])


def test_crossfade_is_as_long_as_the_shortest_of_frames_prev_and_new():
    new = np.ones((6, 5))
    short_prev = crossfade(np.zeros((2, 5)), new, 8)  # only two frames of the previous decode
    np.testing.assert_allclose(short_prev[:2, 0], [1 / 27 * 7, 20 / 27], atol=1e-12)  # t = 1/3, 2/3
    np.testing.assert_array_equal(short_prev[2:], new[2:])
    short_new = crossfade(np.zeros((9, 5)), np.ones((3, 5)), 8)
    np.testing.assert_allclose(short_new[:, 0], [0.15625, 0.5, 0.84375], atol=1e-12)
    for frames in (0, -2):
        out = crossfade(np.zeros((4, 5)), new, frames)
        np.testing.assert_array_equal(out, new)
        out[0, 0] = 7.0
        assert new[0, 0] == 1.0  # a copy even when nothing is faded
    np.testing.assert_array_equal(crossfade(np.zeros((0, 5)), new, 8), new)


@pytest.mark.parametrize("short_middle", [False, True])
def test_progress_counts_the_windows_the_nominal_timeline_samples(tiny_pipeline, short_middle):
    """The progress total is steps × the windows actually sampled, so the bar ends at 100 %. First segment:
    exactly one window's worth with its spill (a planning error of one frame makes it two); with a middle
    segment shorter than the held context, the third segment's windows hold both earlier segments (one window
    if only the middle one were counted, two in fact)."""
    d = ShotDirector(tiny_pipeline, steps=1, handover="nominal", context_seconds=4.0)
    first = d.max_lat - d.overhang - d.spill
    lat = [first, 10, d.max_lat - 10 - d.overhang - d.spill] if short_middle else [first, 12]
    prompts = ["walk", "wave", "run"][: len(lat)]
    segs = [Segment(p, 4 * n / tiny_pipeline.fps) for p, n in zip(prompts, lat, strict=True)]
    seen = []
    m = d.compose(segs, seed=0, callback=lambda i, n: seen.append((i, n)))
    assert [s["end"] - s["start"] for s in m.meta["shot"]["segments"]] == [4 * n for n in lat]
    windows = m.meta["shot"]["windows"]
    assert seen == [(k + 1, len(windows)) for k in range(len(windows))]
    assert windows[0]["new_frames"] == 4 * (first + d.spill) and windows[0]["context_frames"] == 0


def test_segment_seeds_come_from_the_shot_seed_unless_given(nominal, base):
    """Unseeded segments draw derive_seed(shot seed, "segment", k) — recorded, so a re-roll reproduces the
    rest; a segment's own seed is used as given (the same seed as derived gives the same shot, another one
    another motion after its start)."""
    seeds = [s["seed"] for s in base.meta["shot"]["segments"]]
    assert seeds == [derive_seed(7, "segment", k) for k in range(3)] and len(set(seeds)) == 3
    same = nominal.compose([SEGS[0], Segment(SEGS[1].prompt, SEGS[1].seconds, seed=seeds[1]), SEGS[2]], seed=7)
    assert np.array_equal(same.joints, base.joints)
    other = nominal.compose([SEGS[0], Segment(SEGS[1].prompt, SEGS[1].seconds, seed=99), SEGS[2]], seed=7)
    assert [s["seed"] for s in other.meta["shot"]["segments"]] == [seeds[0], 99, seeds[2]]
    assert np.abs(other.joints[60:] - base.joints[60:]).max() > 1e-3


def test_the_handover_smoothing_starts_at_the_segments_start_and_reads_the_real_earlier_frames(nominal, monkeypatch):
    """The seam smoothing after a nominal start sits ⌈5σ⌉ frames after it: the start frame is exactly the
    cross-faded decode, the next frame already smoothed, and the smoothed frames equal the whole timeline's
    smoothing at that seam (the earlier frames it reads are the real ones, not an edge copy). Tolerance 1e-6
    (float32 features). σ = 1.5 here: the seam at start + 8."""
    decodes = []
    real = nominal._decode
    monkeypatch.setattr(nominal, "_decode", lambda z: decodes.append(real(z)) or decodes[-1])
    m = nominal.compose(SEGS, seed=7)
    shot = m.meta["shot"]
    assert [w["segment"] for w in shot["windows"]] == [0, 1, 2]  # one window a segment: no inner seams
    sigma, reach = nominal.seam_smoothing, nominal.reach
    assert sigma == 1.5
    seam = int(np.ceil(5 * sigma))
    starts = [s["start"] for s in shot["segments"]] + [m.features.shape[0]]
    for k in (1, 2):
        b0 = starts[k] // 4
        tail = decodes[k - 1][starts[k] - 4 * max(0, starts[k - 1] // 4 - reach - 1):]
        faded = crossfade(tail, decodes[k][4 * (b0 - max(0, b0 - reach - 1)):], HANDOVER_FRAMES)
        span = starts[k + 1] - starts[k]
        np.testing.assert_array_equal(m.features[starts[k]], faded[0])  # the start frame: not smoothed
        assert np.abs(m.features[starts[k] + 1] - faded[1]).max() > 1e-6  # the next one is
        whole = smooth_seams(np.concatenate([m.features[: starts[k]], faded]), [starts[k] + seam], sigma)
        np.testing.assert_allclose(m.features[starts[k]: starts[k + 1]], whole[starts[k]: starts[k] + span],
                                   rtol=0, atol=1e-6)
