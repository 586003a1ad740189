"""eval shots' paired single clip: drawn from the very noise rows its segment's classified frames came from."""

import torch

from salad_model.evaluation.shots import paired_single_job
from salad_model.runtime import generation, shots
from salad_model.runtime.shots import Segment, ShotDirector

STEPS = 3
SEGS = [Segment("a person walks forward", 3.0), Segment("a person waves", 2.4), Segment("a person runs", 3.2)]


def _recording(monkeypatch, module, seen):
    real = module.sample

    def sample(net, z_T, *a, **k):
        seen.append(z_T.clone())
        return real(net, z_T, *a, **k)

    monkeypatch.setattr(module, "sample", sample)


def test_each_segment_is_paired_with_a_single_clip_of_its_own_noise(tiny_pipeline, monkeypatch):
    windows_noise, singles_noise = [], []
    _recording(monkeypatch, shots, windows_noise)
    _recording(monkeypatch, generation, singles_noise)
    d = ShotDirector(tiny_pipeline, steps=STEPS)
    m = d.compose(SEGS, seed=7)
    sh = m.meta["shot"]
    assert len(windows_noise) == len(sh["windows"]) == 3  # one window per segment here
    for i, (s, sm) in enumerate(zip(SEGS, sh["segments"], strict=True)):
        job = paired_single_job(s.prompt, sm, sh["windows"], i)
        frames, skip = sm["content_end"] - sm["content_start"], job[3] if len(job) > 3 else 0
        assert job[:3] == (s.prompt, frames, sh["windows"][i]["seed"])
        assert skip == (0 if i == 0 else d.context)  # the later segments' frames follow their held context
        out = tiny_pipeline.generate_batch([job[0], "a person bows"], frames=[job[1], 8 + job[1]],
                                           seeds=[job[2], 5], steps=STEPS, noise_offsets=[skip, 0])
        z_single = singles_noise.pop()[:1, : frames // 4]
        assert torch.equal(z_single, windows_noise[i][:, skip: skip + frames // 4])
        if i == 0:  # no held context: the first segment's window is that very single clip
            alone = tiny_pipeline.generate_batch([job[0]], frames=[job[1]], seeds=[job[2]], steps=STEPS)[0]
            assert torch.equal(alone.latent, m.latent[:, : frames // 4])
            assert torch.allclose(out[0].latent, alone.latent, atol=1e-5)  # batched with a longer clip: masked
