"""Latent inpainting step by step, without a network: the held cells at each noise level, the soft mask,
RePaint's re-noising, the guidance ramp, which steps resample, and parse_parts' answers and refusals word for
word. (test_shots.py samples with the tiny model end to end; these pin the arithmetic it relies on.)"""

from types import SimpleNamespace

import pytest
import torch

from salad_model.runtime.inpainting import PART_NAMES, PART_PRESETS, Inpainting, parse_parts

SHAPE = (2, 5, 7, 3)


def _sched(timesteps=(900, 600, 300, 0)):
    """What Inpainting reads of a diffusers scheduler: its timesteps and ᾱ table."""
    return SimpleNamespace(timesteps=torch.tensor(timesteps), alphas_cumprod=torch.linspace(0.999, 0.002, 1000))


def _src(seed=0):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


def _eps(seed):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


# -- parse_parts ------------------------------------------------------------------------------------


def test_every_preset_and_alias_names_its_parts():
    assert PART_NAMES == ("root", "left_leg", "right_leg", "torso", "left_arm", "right_arm", "head")
    want = {"arms": (4, 5), "legs": (1, 2), "upper": (3, 4, 5, 6), "lower": (0, 1, 2), "left_arm": (4,),
            "right_arm": (5,), "left_leg": (1,), "right_leg": (2,), "torso": (3,), "head": (6,), "root": (0,),
            "all": (0, 1, 2, 3, 4, 5, 6)}
    assert PART_PRESETS == want
    for name, parts in want.items():
        assert parse_parts(name) == parts
    for alias, name in (("upper_body", "upper"), ("lower_body", "lower"), ("both_arms", "arms"),
                        ("both_legs", "legs")):
        assert parse_parts(alias) == want[name]
    # every part name is its own index, in latent order
    assert [parse_parts(n) for n in PART_NAMES] == [(k,) for k in range(7)]


def test_names_are_normalised_and_lists_merged_sorted():
    assert parse_parts("  Upper Body ") == (3, 4, 5, 6)
    assert parse_parts("Left-Arm") == (4,)
    assert parse_parts("both-legs, HEAD") == (1, 2, 6)
    assert parse_parts("arms,,legs") == (1, 2, 4, 5)  # an empty item between commas is skipped
    assert parse_parts(("head", 0, "3", " Torso ")) == (0, 3, 6)  # a tuple, digit strings, padded names
    assert parse_parts([6, 0]) == (0, 6)  # both ends of the index range
    assert parse_parts("0,6") == (0, 6)
    assert parse_parts(["arms", "left_arm", 4]) == (4, 5)  # duplicates once


def test_parse_parts_refusals_word_for_word():
    def refusal(parts):
        with pytest.raises(ValueError) as e:
            parse_parts(parts)
        return str(e.value)

    assert refusal({"arms"}) == "parts must be a name, a comma-separated string or a list, got set"
    assert refusal(4) == "parts must be a name, a comma-separated string or a list, got int"
    assert refusal([True]) == "unknown body part True"
    assert refusal([False]) == "unknown body part False"
    assert refusal([7]) == "latent part index 7 is out of range 0–6"
    assert refusal("7") == "latent part index 7 is out of range 0–6"
    assert refusal([-1]) == "latent part index -1 is out of range 0–6"
    assert refusal("tail") == ("unknown body part 'tail'; use arms, legs, upper, lower, one of root, left_leg, "
                               "right_leg, torso, left_arm, right_arm, head, or indices 0–6")
    assert refusal(["arms", "wing"]).startswith("unknown body part 'wing'; ")
    assert refusal([]) == "no body part selected: choose at least one part to regenerate"
    assert refusal(" , ") == "no body part selected: choose at least one part to regenerate"


# -- construction -----------------------------------------------------------------------------------


def test_frames_and_parts_build_the_mask_and_pass_options_on():
    src = _src()
    inp = Inpainting.frames(src, [(0, 2), (4, 5)], noise_seed=9, resample=2, resample_fraction=0.5)
    want = torch.zeros(SHAPE[:3], dtype=torch.bool)
    want[:, 0:2] = True
    want[:, 4:5] = True
    assert inp.mask.dtype == torch.bool and torch.equal(inp.mask, want)
    assert (inp.noise_seed, inp.resample, inp.resample_fraction) == (9, 2, 0.5)
    assert inp.source is src
    p = Inpainting.parts(src, (1, 6), noise_seed=4)
    want = torch.zeros(SHAPE[:3], dtype=torch.bool)
    want[:, :, [1, 6]] = True
    assert p.mask.dtype == torch.bool and torch.equal(p.mask, want) and p.noise_seed == 4
    assert torch.equal(Inpainting.frames(src, []).mask, torch.zeros(SHAPE[:3], dtype=torch.bool))


def test_bad_masks_and_options_are_refused_word_for_word():
    src = _src()
    with pytest.raises(ValueError) as e:
        Inpainting(src, torch.zeros(2, 4, 7, dtype=torch.bool))
    assert str(e.value) == ("inpainting mask (2, 4, 7) does not match the latent (2, 5, 7, 3) "
                            "(expected [B, T', 7] for [B, T', 7, C])")
    with pytest.raises(ValueError, match=r"^inpainting mask \(2, 5, 7\) does not match the latent \(2, 5, 7\) "):
        Inpainting(src[..., 0], torch.zeros(2, 5, 7, dtype=torch.bool))  # a 3-D source
    with pytest.raises(ValueError) as e:
        Inpainting(src, torch.zeros(SHAPE[:3], dtype=torch.bool), resample=-1)
    assert str(e.value) == "resample must be ≥ 0"
    for bad in (-0.01, 1.01):
        mask = torch.full(SHAPE[:3], 0.5)
        mask[1, 2, 3] = bad
        with pytest.raises(ValueError) as e:
            Inpainting(src, mask)
        assert str(e.value) == "a soft inpainting mask must hold weights within 0…1"
    ok = torch.full(SHAPE[:3], 0.5)
    ok[0, 0, 0], ok[0, 0, 1] = 0.0, 1.0  # both ends are allowed
    Inpainting(src, ok)
    Inpainting(src, torch.zeros(SHAPE[:3], dtype=torch.bool), resample=0)


def test_resampling_is_refused_with_a_multistep_solver_only():
    src, mask = _src(), torch.zeros(SHAPE[:3], dtype=torch.bool)
    Inpainting(src, mask, resample=0).check_scheduler("dpm++")
    Inpainting(src, mask, resample=3).check_scheduler("ddim")
    with pytest.raises(ValueError) as e:
        Inpainting(src, mask, resample=1).check_scheduler("dpm++")
    assert str(e.value) == "inpainting with resampling needs the ddim sampler (DPM-Solver++ keeps a step history)"


# -- what the sampler calls -------------------------------------------------------------------------


def test_held_cells_are_the_source_diffused_to_the_level_just_reached():
    src, sched = _src(), _sched()
    inp = Inpainting.frames(src, [(1, 3)], noise_seed=11)
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    eps = _eps(11)
    for i, t in ((-1, 900), (0, 600), (1, 300), (2, 0)):  # after step i the latent is at timesteps[i + 1]
        a = sched.alphas_cumprod[t]
        out = inp.apply(z, sched, i)
        assert torch.allclose(out[:, 1:3], a.sqrt() * src[:, 1:3] + (1 - a).sqrt() * eps[:, 1:3], atol=1e-6)
        assert torch.equal(out[:, [0, 3, 4]], z[:, [0, 3, 4]])
    # after the last step: the clean source itself, exactly
    out = inp.apply(z, sched, 3)
    assert torch.equal(out[:, 1:3], src[:, 1:3]) and torch.equal(out[:, [0, 3, 4]], z[:, [0, 3, 4]])
    assert inp.apply(z, sched, 3).dtype == torch.float32


def test_one_noise_draw_serves_the_whole_run():
    src, sched = _src(), _sched()
    inp = Inpainting.parts(src, range(7), noise_seed=3)
    first = inp.apply(torch.zeros(SHAPE), sched, 0)
    again = inp.apply(torch.zeros(SHAPE), sched, 0)
    assert torch.equal(first, again)  # not a fresh draw per call
    other = Inpainting.parts(src, range(7), noise_seed=4).apply(torch.zeros(SHAPE), sched, 0)
    assert (first - other).abs().max() > 1e-3  # the seed decides it


def test_a_soft_mask_mixes_source_and_latent_by_its_weight():
    src, sched = _src(), _sched()
    mask = torch.zeros(SHAPE[:3])
    mask[:, 0] = 1.0
    mask[:, 1] = 0.25
    inp = Inpainting(src, mask)
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
    out = inp.apply(z, sched, 3)
    assert torch.allclose(out[:, 1], 0.25 * src[:, 1] + 0.75 * z[:, 1], atol=1e-6)
    assert torch.equal(out[:, 0], src[:, 0]) and torch.equal(out[:, 2:], z[:, 2:])
    a = sched.alphas_cumprod[600]
    known = a.sqrt() * src + (1 - a).sqrt() * _eps(0)
    assert torch.allclose(inp.apply(z, sched, 0)[:, 1], 0.25 * known[:, 1] + 0.75 * z[:, 1], atol=1e-6)


def test_a_float64_latent_is_held_in_float64():
    src, sched = _src(), _sched()
    inp = Inpainting.frames(src, [(0, 5)])
    z = torch.zeros(SHAPE, dtype=torch.float64)
    out = inp.apply(z, sched, 0)
    a = sched.alphas_cumprod[600].double()
    want = a.sqrt() * src.double() + (1 - a).sqrt() * _eps(0).double()
    assert out.dtype == torch.float64 and torch.allclose(out, want, atol=1e-12)


def test_renoise_diffuses_back_to_the_steps_start_level_with_its_own_stream():
    src, sched = _src(), _sched()
    inp = Inpainting.frames(src, [(0, 1)], noise_seed=7)
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(8))
    g = torch.Generator().manual_seed(7 + 1)  # its own stream (seed + 1), separate from the source's noise
    e1, e2 = torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)
    ac = sched.alphas_cumprod
    r = ac[900] / ac[600]  # step 0 starts at 900 and ends at 600
    assert torch.allclose(inp.renoise(z, sched, 0), r.sqrt() * z + (1 - r).sqrt() * e1, atol=1e-6)
    r = ac[0] / 1.0  # the last step (i = 3) starts at timestep 0 and ends clean (ᾱ = 1)
    assert torch.allclose(inp.renoise(z, sched, 3), r.sqrt() * z + (1 - r).sqrt() * e2, atol=1e-6)


def test_resampling_happens_in_the_first_share_of_the_steps_but_never_the_last():
    src, mask = _src(), torch.zeros(SHAPE[:3], dtype=torch.bool)
    inp = Inpainting(src, mask, resample=2, resample_fraction=0.5)
    assert [inp.resamples(i, 10) for i in range(10)] == [2] * 5 + [0] * 5
    full = Inpainting(src, mask, resample=3)
    assert [full.resamples(i, 4) for i in range(4)] == [3, 3, 3, 0]
    assert [Inpainting(src, mask).resamples(i, 4) for i in range(4)] == [0, 0, 0, 0]


def test_guidance_is_plain_or_scaled_per_latent_frame():
    src, mask = _src(), torch.zeros(SHAPE[:3], dtype=torch.bool)
    v_u, v_c = _eps(1), _eps(2)
    assert torch.allclose(Inpainting(src, mask).guide(v_u, v_c, 2.5), v_u + 2.5 * (v_c - v_u), atol=1e-6)
    w = torch.tensor([[0.0, 0.5, 1.0, 1.0, 0.25], [1.0, 1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    got = Inpainting(src, mask, guidance_weights=w).guide(v_u, v_c, 2.5)
    assert got.dtype == torch.float32
    for b in range(2):
        for t in range(5):
            want = v_u[b, t] + 2.5 * float(w[b, t]) * (v_c[b, t] - v_u[b, t])
            assert torch.allclose(got[b, t], want, atol=1e-6)
