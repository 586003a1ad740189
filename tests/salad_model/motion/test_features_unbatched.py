"""motion/features.py on a single clip [T, F] (no batch axis): the pipeline recovers joints from one
clip at a time (runtime/pipeline.py), so the leading-axis arithmetic must not assume a batch."""

import numpy as np
import torch

from salad_model.motion import features as F
from salad_model.motion.motion_process import recover_from_ric_np
from salad_model.motion.skeleton import T2M


def test_one_clip_recovers_like_a_batch_of_one():
    f = np.random.default_rng(5).normal(size=(7, 263)) * 0.3
    one = F.recover_from_ric(torch.from_numpy(f), 22)
    assert one.shape == (7, 22, 3)
    torch.testing.assert_close(one, F.recover_from_ric(torch.from_numpy(f[None]), 22)[0], rtol=0, atol=0)
    np.testing.assert_allclose(one.numpy(), recover_from_ric_np(f), atol=1e-9)


def test_tokens_of_one_frame_and_one_clip_round_trip():
    layout = F.FeatureLayout(T2M)
    for shape in ((263,), (6, 263)):
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        tok = layout.tokenize_padded(x)
        assert tok.shape == (*shape[:-1], 22, layout.max_token)
        assert torch.equal(layout.untokenize_padded(tok), x)
