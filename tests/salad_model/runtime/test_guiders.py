"""Guiders (salad_model.runtime.guiders): the published formulas on the denoised x0, padding left out, interval
steps unguided, and plain CFG unchanged unless a config names a guider."""

import numpy as np
import pytest
import torch
from test_sampling import TextScaledDenoiser, _context, alphas_cumprod

from salad_model.runtime.guiders import (
    APG,
    CFG,
    IntervalCFG,
    RescaledCFG,
    RowGuiders,
    make_guider,
    route_guider,
    routed_guider,
)
from salad_model.runtime.requests import InputError
from salad_model.runtime.sampling import initial_noise, sample


def _pair(seed: int = 0, shape=(2, 5, 7, 4)):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=g, dtype=torch.float64) for _ in range(3))


def _x0(v, z, a):
    return a.sqrt() * z - (1 - a).sqrt() * v


def _v(x0, z, a):
    return (a.sqrt() * z - x0) / (1 - a).sqrt()


@pytest.mark.parametrize("eta, threshold", [(0.0, 0.0), (0.3, 0.0), (0.0, 2.0)])
def test_apg_is_the_papers_update_on_the_denoised_prediction(eta, threshold) -> None:
    """x0_c + (w − 1)·(Δ⊥ + η·Δ∥), Δ = x0_c − x0_u (capped at the norm threshold), ∥ = along x0_c, per sample,
    turned back into v (tolerance 1e-9 in float64). Applied on v instead, or as x0_u + w·update, it differs."""
    v_u, v_c, z = _pair()
    a, w = alphas_cumprod()[600], 5.0
    got = APG(w, eta=eta, norm_threshold=threshold)
    got.start()
    got = got(v_u, v_c, z, a, 10, 50, None)
    xu, xc = _x0(v_u, z, a), _x0(v_c, z, a)
    want = []
    for b in range(2):
        d = xc[b] - xu[b]
        if threshold:
            d = d * min(1.0, threshold / float(d.norm()))
        unit = xc[b] / xc[b].norm()
        par = (d * unit).sum() * unit
        want.append(_v(xc[b] + (w - 1) * (d - par + eta * par), z[b], a))
    torch.testing.assert_close(got, torch.stack(want), rtol=1e-9, atol=1e-9)
    assert (got - (v_u + w * (v_c - v_u))).abs().max() > 0.1  # not plain CFG


def test_rescale_matches_lin_et_al_on_the_denoised_prediction() -> None:
    """CFG on x0, rescaled by φ·std(x0_c)/std(x0_cfg) + (1 − φ) (Lin et al. 2024 §3.4), back to v; 1e-9."""
    v_u, v_c, z = _pair(1)
    a, w, phi = alphas_cumprod()[300], 5.0, 0.7
    got = RescaledCFG(w, phi=phi)(v_u, v_c, z, a, 0, 50, None)
    xu, xc = _x0(v_u, z, a), _x0(v_c, z, a)
    x = xu + w * (xc - xu)
    f = xc.flatten(1).std(1) / x.flatten(1).std(1)
    want = _v(x * (phi * f + 1 - phi)[:, None, None, None], z, a)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("guider", [APG(5.0, eta=0.0, norm_threshold=3.0), RescaledCFG(5.0, phi=0.7)],
                         ids=["apg", "rescale"])
def test_a_clips_guidance_does_not_depend_on_the_padding_it_is_batched_with(guider) -> None:
    """Row 0 is 3 latent frames long in a batch padded to 5: garbage in its padding must not change its
    guided prediction (norms, projections and standard deviations over its own frames only)."""
    v_u, v_c, z = _pair(2)
    a = alphas_cumprod()[500]
    valid = torch.tensor([[True] * 3 + [False] * 2, [True] * 5])
    guider.start()
    alone = guider(v_u[:1, :3], v_c[:1, :3], z[:1, :3], a, 5, 50, None)
    v_u2, v_c2 = v_u.clone(), v_c.clone()
    v_u2[0, 3:], v_c2[0, 3:] = 100.0, -100.0  # what a padded frame might hold
    guider.start()
    batched = guider(v_u2, v_c2, z, a, 5, 50, valid)
    torch.testing.assert_close(batched[:1, :3], alone, rtol=1e-9, atol=1e-9)


def test_interval_guidance_runs_the_unconditional_half_only_inside_its_interval() -> None:
    """start_at 0.25, stop_at 0.75 of 8 steps: steps 2–5 guided at the full scale (two rows), the others on the
    conditional half alone (one row, outside = 1) or at ``outside``."""
    den = TextScaledDenoiser()
    z_T = torch.zeros(1, 2, 7, 4)
    sample(den, z_T, _context(1.0), _context(0.25), guidance=4.0, steps=8,
           guider=IntervalCFG(4.0, start_at=0.25, stop_at=0.75))
    assert den.batch_sizes == [1, 1, 2, 2, 2, 2, 1, 1]
    den2 = TextScaledDenoiser()
    sample(den2, z_T, _context(1.0), _context(0.25), guidance=4.0, steps=8,
           guider=IntervalCFG(4.0, start_at=0.25, stop_at=0.75, outside=2.0))
    assert den2.batch_sizes == [2] * 8
    g = IntervalCFG(4.0, start_at=0.25, stop_at=0.75, outside=2.0)
    one, zero = torch.ones(1), torch.zeros(1)
    assert [float(g(zero, one, zero, None, i, 8, None)) for i in range(8)] == [2, 2, 4, 4, 4, 4, 2, 2]


def test_interval_over_the_whole_run_is_plain_cfg_bit_for_bit() -> None:
    den = TextScaledDenoiser()
    z_T = torch.randn(2, 3, 7, 4, generator=torch.Generator().manual_seed(3))
    lens = torch.tensor([[True, True, False], [True, True, True]])
    plain = sample(den, z_T, _context(1.0, 2), _context(0.25, 2), guidance=3.0, steps=6, len_mask=lens)
    whole = sample(den, z_T, _context(1.0, 2), _context(0.25, 2), guidance=3.0, steps=6, len_mask=lens,
                   guider=IntervalCFG(3.0, start_at=0.0, stop_at=1.0))
    assert torch.equal(plain, whole)


def test_the_default_stays_plain_cfg_unless_the_config_names_a_guider(tiny_pipeline) -> None:
    """No ``info.guider``: generate_batch is bit-identical to plain CFG asked for by name and records no guider;
    a config's guider changes the motion and is recorded in its metadata."""
    kw = dict(frames=[40, 48], seeds=[1, 2], guidance=4.0, steps=6)
    assert tiny_pipeline.default_guider is None
    default = tiny_pipeline.generate_batch(["a person walks", "a person jumps"], **kw)
    plain = tiny_pipeline.generate_batch(["a person walks", "a person jumps"], guider="cfg", **kw)
    for d, p in zip(default, plain, strict=True):
        assert torch.equal(torch.as_tensor(d.latent), torch.as_tensor(p.latent))
        assert "guider" not in d.meta
    tiny_pipeline.info["guider"] = {"kind": "apg", "eta": 0.0}
    try:
        guided = tiny_pipeline.generate_batch(["a person walks", "a person jumps"], **kw)
    finally:
        del tiny_pipeline.info["guider"]
    assert guided[0].meta["guider"] == {"kind": "apg", "eta": 0.0, "norm_threshold": 0.0, "momentum": None}
    assert not torch.equal(torch.as_tensor(guided[0].latent), torch.as_tensor(default[0].latent))


def test_guider_specs_parse_and_bad_ones_are_refused_clearly(tiny_pipeline) -> None:
    assert make_guider(None, 5.0) is None and make_guider("cfg", 5.0) is None
    assert make_guider("apg:eta=0.5,norm_threshold=2", 7.0) == APG(7.0, eta=0.5, norm_threshold=2.0)
    assert make_guider({"kind": "interval", "start_at": 0.1, "stop_at": 0.6}, 5.0) == IntervalCFG(5.0, 0.1, 0.6)
    assert isinstance(make_guider("rescale", 5.0), CFG)
    for bad, words in [("sag", "unknown guider"), ("apg:phi=1", "unknown setting"), ("apg:eta", "key=value"),
                       ({"kind": "rescale", "phi": "high"}, "finite number"), ("cfg:eta=1", "unknown setting")]:
        with pytest.raises(ValueError, match=words):
            make_guider(bad, 5.0)
    with pytest.raises(InputError, match="unknown guider"):
        tiny_pipeline.generate_batch(["a person walks"], frames=[40], guider="sag", steps=2)


def test_an_edit_starts_from_the_motion_the_models_guider_generated(tiny_pipeline) -> None:
    """With ``info.guider`` the edit's source is what generate() gave (not a plain-CFG regeneration); 1e-4."""
    tiny_pipeline.info["guider"] = {"kind": "rescale", "phi": 0.7}
    try:
        shown = tiny_pipeline.generate("a person waves the left hand", frames=40, seed=3, steps=4)
        edited, src = tiny_pipeline.edit("a person waves the left hand", frames=40, seed=3, steps=4,
                                         edit_prompt="a person waves the right hand", return_source=True)
    finally:
        del tiny_pipeline.info["guider"]
        tiny_pipeline.clear_cache()
    plain = tiny_pipeline.generate("a person waves the left hand", frames=40, seed=3, steps=4)
    torch.testing.assert_close(torch.as_tensor(src.latent), torch.as_tensor(shown.latent), rtol=0, atol=1e-4)
    assert (torch.as_tensor(plain.latent) - torch.as_tensor(shown.latent)).abs().max() > 1e-3
    assert edited.meta["guider"] == shown.meta["guider"] == {"kind": "rescale", "phi": 0.7}


def test_an_edit_leaves_out_the_unconditional_rows_where_the_guider_does_not_guide(tiny_pipeline) -> None:
    """Interval guidance on the second half of 4 steps (outside = 1): the edit's first two steps run without the
    unconditional source / edit rows, as generate() runs without its unconditional half there."""
    sizes = []
    hook = tiny_pipeline.denoiser.register_forward_pre_hook(lambda m, args: sizes.append(args[0].shape[0]))
    tiny_pipeline.info["guider"] = {"kind": "interval", "start_at": 0.5, "stop_at": 1.0}
    try:
        tiny_pipeline.edit("a person waves the left hand", frames=40, seed=3, steps=4,
                           edit_prompt="a person waves the right hand")
    finally:
        hook.remove()
        del tiny_pipeline.info["guider"]
        tiny_pipeline.clear_cache()
    edit_calls = sizes[-4:]  # the edit's own 4 steps (a generation of the source may come first)
    assert edit_calls[0] == edit_calls[1] and edit_calls[2] == edit_calls[3]
    assert edit_calls[2] - edit_calls[0] == 2  # src_u and edit_u, on the guided steps only


ROUTED = {"kind": "by_prompt", "default": {"kind": "cfg", "scale": 2.5},
          "routes": {"new": {"kind": "interval", "scale": 7.0, "start_at": 0.0, "stop_at": 0.5, "outside": 2.5}}}


def test_a_routed_spec_gives_each_route_its_own_absolute_scales_times_the_guidance_factor() -> None:
    assert route_guider(ROUTED, None) == CFG(2.5) and route_guider(ROUTED, "other") == CFG(2.5)
    assert route_guider(ROUTED, "new") == IntervalCFG(7.0, start_at=0.0, stop_at=0.5, outside=2.5)
    assert route_guider(ROUTED, "new", 2.0) == IntervalCFG(14.0, start_at=0.0, stop_at=0.5, outside=5.0)
    assert routed_guider(ROUTED, ["a", None]) == CFG(2.5)  # one guider when every row takes the same one
    rows = routed_guider(ROUTED, ["new", None])
    assert isinstance(rows, RowGuiders) and rows.rows == [route_guider(ROUTED, "new"), CFG(2.5)]
    for bad, words in [({**ROUTED, "default": {"kind": "cfg"}}, "needs its own finite positive 'scale'"),
                       ({"kind": "by_prompt", "routes": {}}, "needs a 'default'"),
                       ({**ROUTED, "extra": 1}, "needs a 'default'"),
                       ({**ROUTED, "routes": {"new": {"kind": "by_prompt", "scale": 2.0}}}, "do not nest")]:
        with pytest.raises(ValueError, match=words):
            route_guider(bad, "new")


def test_row_guiders_give_each_row_what_its_own_guider_gives_it_alone() -> None:
    """Row b of a mixed batch = its guider on that row alone (exact), on guided and unguided steps of the
    interval; a step is guided when any row's guider guides it."""
    v_u, v_c, z = _pair(3, (2, 5, 7, 4))
    a = alphas_cumprod()[500]
    inner = IntervalCFG(7.0, start_at=0.0, stop_at=0.5, outside=1.0)
    rows = RowGuiders([inner, CFG(2.5)])
    valid = torch.ones(2, 5, dtype=torch.bool)
    got = rows(v_u, v_c, z, a, 0, 4, valid)  # inside the interval
    assert torch.equal(got[0:1], inner(v_u[0:1], v_c[0:1], z[0:1], a, 0, 4, valid[0:1]))
    assert torch.equal(got[1:2], CFG(2.5)(v_u[1:2], v_c[1:2], z[1:2], a, 0, 4, None))
    got = rows(v_u, v_c, z, a, 3, 4, None)  # outside (1): the conditional half alone, as the sampler gives it
    assert torch.equal(got[0], v_c[0]) and torch.equal(got[1:2], CFG(2.5)(v_u[1:2], v_c[1:2], z[1:2], a, 3, 4, None))
    assert rows.guided(3, 4) and not RowGuiders([inner, CFG(1.0)]).guided(3, 4)


@pytest.fixture()
def routed_pipeline(tiny_pipeline):
    """The tiny pipeline with a two-dataset vocabulary and the routed guider as its model's default."""
    from salad_model.runtime.novelty import Vocabulary, anchor_embedding, sentence_embeddings

    caps = ["a person walks forward", "a person does a backflip"]
    enc = tiny_pipeline.text_encoder
    tiny_pipeline.prompt_warnings()  # the attribute exists from here on
    saved = tiny_pipeline._vocabulary
    tiny_pipeline._vocabulary = Vocabulary(caps, ["walk", "backflip"], sentence_embeddings(enc, caps),
                                           anchor_embedding(enc), -9.0, datasets=["old", "new"])
    tiny_pipeline.__dict__.pop("_route_cache", None)
    tiny_pipeline.info["guider"] = ROUTED
    try:
        yield tiny_pipeline
    finally:
        tiny_pipeline._vocabulary = saved
        tiny_pipeline.__dict__.pop("_route_cache", None)
        del tiny_pipeline.info["guider"]
        tiny_pipeline.clear_cache()


def test_a_mixed_batch_gives_each_prompt_the_motion_its_route_gives_it_alone(routed_pipeline) -> None:
    """Prompts routed by their nearest training caption's dataset; in one batch each clip equals the clip
    generated alone with its route's guider named explicitly (1e-5: batched GEMMs may round differently), the
    two routes differ, and each clip's metadata names its route and scale."""
    pipe = routed_pipeline
    prompts = ["a person does a backflip", "a person walks forward"]
    assert pipe.prompt_routes(prompts + [None]) == ["new", "old", None]
    kw = dict(frames=[40, 40], seeds=[5, 5], steps=4)
    both = pipe.generate_batch(prompts, **kw)
    alone = [pipe.generate_batch([p], frames=[40], seeds=[5], steps=4, guidance=g, guider=spec)[0]
             for p, g, spec in [(prompts[0], 7.0, {"kind": "interval", "start_at": 0.0, "stop_at": 0.5,
                                                    "outside": 2.5}),
                                (prompts[1], 2.5, "cfg")]]
    for b, a in zip(both, alone, strict=True):
        torch.testing.assert_close(torch.as_tensor(b.latent), torch.as_tensor(a.latent), rtol=0, atol=1e-5)
    same_noise_other_route = pipe.generate_batch([prompts[0]], frames=[40], seeds=[5], steps=4, guidance=2.5,
                                                 guider="cfg")[0]
    assert (torch.as_tensor(both[0].latent) - torch.as_tensor(same_noise_other_route.latent)).abs().max() > 1e-3
    assert both[0].meta["guider"]["route"] == "new" and both[0].meta["guider"]["scale"] == 7.0
    assert both[1].meta["guider"] == {"kind": "cfg", "scale": 2.5, "route": "old"}
    assert both[0].meta["guidance"] == pipe.default_guidance  # the nominal guidance the user asked for


def test_guidance_scales_every_route_and_guidance_one_is_unguided(routed_pipeline) -> None:
    pipe = routed_pipeline
    double = pipe.generate_batch(["a person walks forward"], frames=[40], seeds=[2], steps=4,
                                 guidance=2 * pipe.default_guidance)[0]
    assert double.meta["guider"]["scale"] == 5.0
    named = pipe.generate_batch(["a person walks forward"], frames=[40], seeds=[2], steps=4, guidance=5.0,
                                guider="cfg")[0]
    torch.testing.assert_close(torch.as_tensor(double.latent), torch.as_tensor(named.latent), rtol=0, atol=0)
    one = pipe.generate_batch(["a person does a backflip"], frames=[40], seeds=[2], steps=4, guidance=1.0)[0]
    assert "guider" not in one.meta


def test_an_edit_uses_its_source_prompts_route(routed_pipeline) -> None:
    """The edit starts from what generate() showed for a routed prompt (1e-4) and records that route, though
    its edited prompt alone would take the other one."""
    pipe = routed_pipeline
    shown = pipe.generate("a person does a backflip", frames=40, seed=3, steps=4)
    edited, src = pipe.edit("a person does a backflip", frames=40, seed=3, steps=4,
                            edit_prompt="a person walks forward", return_source=True)
    torch.testing.assert_close(torch.as_tensor(src.latent), torch.as_tensor(shown.latent), rtol=0, atol=1e-4)
    assert edited.meta["guider"]["route"] == shown.meta["guider"]["route"] == "new"


def _inpainted(pipe, guidance, guider, src):
    from salad_model.runtime.inpainting import Inpainting

    z_T = initial_noise(3, 48)[..., : pipe.denoiser.config.vae_dim]
    with torch.inference_mode():
        return sample(pipe.denoiser, z_T, pipe.text_context(["a person walks"]), pipe._null(1), guidance, 4, "ddim",
                      None, None, diffusion=pipe.bundle.diffusion, guider=guider,
                      inpaint=Inpainting.frames(src, [(0, 4)]))


def test_cfg_and_interval_guiders_guide_inpainting_through_its_own_weights(tiny_pipeline) -> None:
    """Shots sample with inpainting: a CFG guider there is the plain path bit for bit, an interval one holds the
    known frames exactly and changes the free ones; APG (not a scale per step) is refused clearly."""
    src = torch.randn(1, 12, 7, tiny_pipeline.denoiser.config.vae_dim, generator=torch.Generator().manual_seed(1))
    plain = _inpainted(tiny_pipeline, 3.0, None, src)
    assert torch.equal(_inpainted(tiny_pipeline, 3.0, CFG(3.0), src), plain)
    assert torch.equal(_inpainted(tiny_pipeline, 3.0, IntervalCFG(3.0, start_at=0.0, stop_at=1.0), src), plain)
    inner = _inpainted(tiny_pipeline, 3.0, IntervalCFG(8.0, start_at=0.0, stop_at=0.5, outside=3.0), src)
    assert torch.equal(inner[:, :4], src[:, :4]) and (inner[:, 4:] - plain[:, 4:]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="'apg' guider cannot be combined with inpainting"):
        _inpainted(tiny_pipeline, 3.0, APG(3.0), src)


def test_shots_give_each_windows_prompt_its_route(routed_pipeline) -> None:
    """A timeline of prompts on the default route (plain CFG 2.5) is the plain-CFG-2.5 timeline bit for bit; one
    with a prompt on the other route (interval 7) differs from it; the metadata names the model's guider."""
    from salad_model.runtime.shots import ShotDirector

    pipe = routed_pipeline
    walk = [("a person walks forward", 2.0), ("a person walks forward", 2.0)]
    mixed = [("a person walks forward", 2.0), ("a person does a backflip", 2.0)]
    routed = ShotDirector(pipe, steps=4)
    got_walk, got_mixed = routed.compose(walk, seed=4), routed.compose(mixed, seed=4)
    assert got_walk.meta["guider"] == ROUTED
    del pipe.info["guider"]
    try:
        plain = ShotDirector(pipe, steps=4, guidance=2.5)
        want_walk, want_mixed = plain.compose(walk, seed=4), plain.compose(mixed, seed=4)
    finally:
        pipe.info["guider"] = ROUTED
    assert np.array_equal(got_walk.joints, want_walk.joints)
    assert np.abs(got_mixed.joints - want_mixed.joints).max() > 1e-3
