"""salad_model.motion.features: the per-joint token layout and recover_from_ric, checked against hand
arithmetic and the numpy twin (the golden parity lives in runtime/test_golden.py)."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from salad_model.motion import features as F
from salad_model.motion.motion_process import recover_from_ric_np
from salad_model.motion.skeleton import T2M


@pytest.fixture(scope="module")
def layout() -> F.FeatureLayout:
    return F.FeatureLayout(T2M)


def test_layout_slices_follow_the_spec(layout):
    assert layout.dim == 263 and layout.num_joints == 22
    assert (layout.ric.start, layout.ric.stop) == (4, 67)
    assert (layout.rot.start, layout.rot.stop) == (67, 193)
    assert (layout.vel.start, layout.vel.stop) == (193, 259)
    assert (layout.contact.start, layout.contact.stop) == (259, 263)


def test_tokens_hold_each_channel_once_in_spec_order(layout):
    assert layout.token_channels[0] == [0, 1, 2, 3, 193, 194, 195]  # root: yaw vel, xz vel, height, root vel
    assert layout.token_channels[1] == [4, 5, 6, 67, 68, 69, 70, 71, 72, 196, 197, 198]
    for n, c in enumerate(T2M.contact_joints):  # feet carry their contact flag last
        assert layout.token_channels[c][-1] == 259 + n and len(layout.token_channels[c]) == 13
    flat = sorted(c for ch in layout.token_channels for c in ch)
    assert flat == list(range(263))
    assert layout.max_token == 13 and layout.token_sizes.count(13) == 4 and layout.token_sizes[0] == 7


def test_padded_tokens_round_trip_and_zero_the_padding(layout):
    x = torch.randn(2, 5, 263, generator=torch.Generator().manual_seed(0)) + 3.0
    tok = layout.tokenize_padded(x)
    assert tok.shape == (2, 5, 22, 13)
    assert torch.equal(layout.untokenize_padded(tok), x)
    assert torch.equal(tok[..., ~layout.valid], torch.zeros_like(tok[..., ~layout.valid]))
    assert bool((tok[..., layout.valid] != 0).all())
    assert torch.equal(tok[0, 0, 3, :12], x[0, 0, layout.token_channels[3]])


def test_qrot_matches_scipy():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(6, 4, generator=g, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    v = torch.randn(6, 3, generator=g, dtype=torch.float64)
    ref = Rotation.from_quat(q[:, [1, 2, 3, 0]].numpy()).apply(v.numpy())  # scipy is (x, y, z, w)
    np.testing.assert_allclose(F.qrot(q, v).numpy(), ref, atol=1e-12)


def test_root_recovery_integrates_turns_and_velocities():
    """Yaw velocity w per frame: the heading after k frames is k*w (quaternion half-angle convention); the
    root moves by the previous frame's local velocity, turned by the current inverse heading; height is channel 3."""
    f = torch.zeros(4, 263, dtype=torch.float64)
    f[:, 0] = 0.25
    f[:, 2] = 1.0  # one unit forward (local +Z) per frame
    f[:, 3] = torch.tensor([0.9, 0.8, 0.7, 0.6])
    q, r = F.recover_root_rot_pos(f)
    angle = torch.tensor([0.0, 0.25, 0.5, 0.75], dtype=torch.float64)
    torch.testing.assert_close(q[:, 0], torch.cos(angle))
    torch.testing.assert_close(q[:, 2], torch.sin(angle))
    assert torch.equal(q[:, 1], torch.zeros(4, dtype=torch.float64))
    step = torch.stack([-torch.sin(2 * angle), torch.zeros(4, dtype=torch.float64), torch.cos(2 * angle)], -1)
    step[0] = 0.0  # frame i moves by frame i-1's velocity, turned by frame i's heading
    expect = torch.cumsum(step, 0)
    torch.testing.assert_close(r[:, [0, 2]], expect[:, [0, 2]])
    torch.testing.assert_close(r[:, 1], f[:, 3])


def test_recover_from_ric_equals_the_numpy_twin_on_random_features():
    f = np.random.default_rng(2).normal(size=(3, 9, 263)) * 0.3
    out = F.recover_from_ric(torch.from_numpy(f), 22).numpy()
    assert out.shape == (3, 9, 22, 3)
    np.testing.assert_allclose(out, recover_from_ric_np(f), atol=1e-9)
