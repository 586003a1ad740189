"""The edit modes and attention recorders of runtime/editing.py beyond their main maps: the base mode,
when each mode asks for the free pass, what each one reports (``describe`` goes into the Action's
metadata), the mirror of self-attention, the word-swap / refine choice and its reason (shown in the UI),
the controller's defaults, and the recorders that feed heat maps and the edit cache. Pure tensor code, no
model: fast enough for the mutation run (tools/mutation.py)."""

import pytest
import torch

from salad_model.motion.skeleton import MIRROR_PART_PAIRS
from salad_model.runtime import attention
from salad_model.runtime.editing import (
    NUM_PARTS,
    AttentionRecorder,
    CrossAttentionEdit,
    EditController,
    MapRecorder,
    Mirror,
    Refine,
    Reweight,
    SourceMaps,
    WordSwap,
    align_tokens,
    choose_mode,
    recording_forward,
)

H, TL, L = 2, 3, 9
ROWS = {"src_u": 0, "src_c": 1, "edit_u": 2, "edit_c": 3}


def _maps(seed: int, shape=(H, TL * NUM_PARTS, L)) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)).softmax(-1)


def _grid(kind: str, rows: int = 4, seed: int = 0) -> torch.Tensor:
    shape = {"cross": (rows, H, TL * NUM_PARTS, L), "skel": (rows * TL, H, NUM_PARTS, NUM_PARTS),
             "temp": (rows * NUM_PARTS, H, TL, TL)}[kind]
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)).softmax(-1)


def test_the_base_mode_injects_the_source_unchanged_and_never_needs_the_free_pass():
    base = CrossAttentionEdit()
    src, own = _maps(0), _maps(1)
    assert base.cross(src, None, own, 0.9) is src and base.self_attention(src, "skel") is src
    assert not base.needs_free(0.0, True) and not base.needs_free(0.9, False)
    assert base.describe() == {"mode": "inject"}


def test_word_swap_takes_the_free_pass_map_when_there_is_one():
    src, free, own = _maps(0), _maps(1), _maps(2)
    ws = WordSwap(0.4)
    assert ws.cross(src, free, own, 0.39) is src
    assert ws.cross(src, free, own, 0.4) is free  # the un-injected edit pass, not the injected row's own
    assert ws.cross(src, None, own, 0.4) is own  # no free row: the edit row is un-injected itself
    # the free row is needed only once the swap happened AND self-attention is still injected
    assert [ws.needs_free(f, True) for f in (0.0, 0.39, 0.4, 0.9)] == [False, False, True, True]
    assert not ws.needs_free(0.9, False)
    assert ws.describe() == {"mode": "word_swap", "swap_src_proportion": 0.4}
    assert WordSwap().swap_src_proportion == 0.2  # the paper's default


def test_mode_descriptions_name_what_was_done():
    assert Refine([0, -1, 1]).describe() == {"mode": "refine", "new_tokens": [1], "reindex": True}
    assert Refine([0, 1], reindex=False).describe() == {"mode": "refine", "new_tokens": [], "reindex": False}
    assert Refine([0, 1]).needs_free(0.0, False) and Refine([0, 1]).needs_free(0.9, True)
    assert Reweight([2, 3], -1.5).describe() == {"mode": "reweight", "token_indices": [2, 3], "scale": -1.5}
    assert Mirror("upper").describe() == {"mode": "mirror", "which": "upper", "mirror_self": False}
    assert Mirror().describe()["which"] == "all" and not Mirror().needs_free(0.5, True)
    r = Reweight()
    assert r.scale == 1.0 and r.token_indices == []
    assert torch.equal(r.cross(_maps(3), None, _maps(3), 0.0), _maps(3))  # default: the identity


def test_refine_without_reindexing_or_new_words_is_the_source():
    src, free = _maps(0), _maps(1)
    assert torch.equal(Refine([0, 1, 2], reindex=False).cross(src, free, free, 0.5), src)
    out = Refine([0, -1, 2], reindex=False).cross(src, free, free, 0.5)
    assert torch.equal(out[..., 1], free[..., 1]) and torch.equal(out[..., [0, 2]], src[..., [0, 2]])
    assert torch.equal(out[..., 3:], src[..., 3:])  # same-index variant: later columns stay the source's


@pytest.mark.parametrize("which", sorted(MIRROR_PART_PAIRS))
def test_mirror_of_self_attention_swaps_parts_on_every_part_axis(which):
    m = Mirror(which, mirror_self=True)
    skel = _grid("skel", rows=1)  # [T', H, 7 query parts, 7 key parts]
    temp = _grid("temp", rows=1)  # [7 parts, H, T', T']
    out = m.self_attention(skel, "skel")
    for a in range(NUM_PARTS):
        for b in range(NUM_PARTS):
            assert torch.equal(out[..., a, b], skel[..., m.perm[a], m.perm[b]])
    out = m.self_attention(temp, "temp")
    for a in range(NUM_PARTS):
        assert torch.equal(out[a], temp[m.perm[a]])
    plain = Mirror(which)  # the paper: self-attention injected as it is
    assert plain.self_attention(skel, "skel") is skel and plain.self_attention(temp, "temp") is temp


def test_choose_mode_and_the_reason_shown_to_the_user():
    assert choose_mode([0, 5, 6, 1], [0, 5, 6, 1]) == (
        "word_swap", "the prompts are identical: the edit reproduces the source")
    mode, why = choose_mode([0, 5, 6, 7, 1], [0, 5, 9, 8, 1])
    assert mode == "word_swap" and why.startswith("same number of tokens, 2 replaced: word swap keeps")
    assert why.endswith("swaps the attention of the changed word(s)")
    mode, why = choose_mode([0, 5, 6, 1], [0, 5, 9, 8, 6, 1])
    assert mode == "refine"
    assert why == ("2 token(s) added or changed and 4 kept: refinement keeps the source attention for the kept "
                   "words and adds the new ones")
    assert choose_mode([0, 5, 6, 1], [0, 6, 1])[0] == "refine"  # a shorter prompt is a refinement too


def test_a_new_controller_is_at_step_zero_with_the_papers_defaults():
    """Constructed, not yet stepped: step 0, frac 0, its rows; self-attention injected below 0.2, temporal too."""
    ctrl = EditController(WordSwap(1.0), ROWS, 4)
    assert (ctrl.step, ctrl.frac, ctrl.rows, ctrl.n_rows) == (0, 0.0, ROWS, 4)
    assert ctrl.src_proportion == 0.2 and ctrl.inject_temporal
    assert ctrl.injecting_self(0.19) and not ctrl.injecting_self(0.2)
    probs = _grid("temp")
    out = ctrl(probs, "temp", 0).view(4, -1, *probs.shape[1:])
    assert torch.equal(out[ROWS["edit_c"]], probs.view(4, -1, *probs.shape[1:])[ROWS["src_c"]])
    # a cache hit straight after construction reads step 0 of the recorded maps
    rec = SourceMaps(("k",), [{("temp", 0): _grid("temp", rows=1, seed=7)}, {}], L)
    hit = EditController(WordSwap(1.0), {"edit_u": 0, "edit_c": 1}, 2, source=rec)
    out = hit(_grid("temp", rows=2), "temp", 0).view(2, -1, *probs.shape[1:])
    assert torch.equal(out[1], rec.maps[0][("temp", 0)])


def test_recorded_cross_maps_are_padded_back_to_the_key_length_of_the_replay():
    q = TL * NUM_PARTS
    trimmed = _maps(0, (1, H, q, 4))  # recorded with 4 valid text columns
    skel = _grid("skel", rows=1)
    maps = SourceMaps(("k",), [{("cross", 0): trimmed, ("skel", 0): skel}], 4)
    padded = maps.get(0, "cross", 0, L)
    assert padded.shape == (1, H, q, L)
    assert torch.equal(padded[..., :4], trimmed) and (padded[..., 4:] == 0).all()
    assert maps.get(0, "cross", 0, 4) is trimmed  # already full length: as recorded
    assert maps.get(0, "skel", 0, NUM_PARTS) is skel


def test_controller_records_the_source_row_and_trims_cross_maps_to_the_prompt():
    record = SourceMaps(("k",), [], 5)
    ctrl = EditController(CrossAttentionEdit(), ROWS, 4, src_proportion=1.0, record=record)
    ctrl.begin_step(0, 2, ROWS, 4)
    cross, skel = _grid("cross"), _grid("skel")
    ctrl(cross, "cross", 1)
    ctrl(skel, "skel", 1)
    ctrl.begin_step(1, 2, ROWS, 4)
    assert len(record.maps) == 2 and record.maps[1] == {}
    assert torch.equal(record.maps[0][("cross", 1)], cross[ROWS["src_c"]][None, ..., :5])
    assert torch.equal(record.maps[0][("skel", 1)], skel.view(4, TL, *skel.shape[1:])[ROWS["src_c"]])


def test_map_recorder_keeps_the_conditional_row_per_step_and_changes_nothing():
    record = SourceMaps(("k",), [], 5)
    rec = MapRecorder(2, 1, record)
    for step in range(3):
        rec.begin_step(step, 3)
        probs = _grid("cross", rows=2, seed=step)
        before = probs.clone()
        assert rec(probs, "cross", 0) is probs and torch.equal(probs, before)
        skel = _grid("skel", rows=2, seed=step)
        rec(skel, "skel", 2)
        assert torch.equal(record.maps[step][("cross", 0)], before[1:2, ..., :5])
        assert torch.equal(record.maps[step][("skel", 2)], skel.view(2, TL, *skel.shape[1:])[1])
    assert len(record.maps) == 3


def test_attention_recorder_keeps_chosen_kinds_or_averages_cross_maps():
    rec = AttentionRecorder(batch=2, cond_rows=slice(1, 2), keep={"cross"})
    cross, skel = _grid("cross", rows=2), _grid("skel", rows=2)
    assert rec(cross, "cross", 0) is cross and rec(skel, "skel", 0) is skel
    assert set(rec.maps) == {("cross", 0)} and torch.equal(rec.maps[("cross", 0)], cross[1:2])
    every = AttentionRecorder(batch=2, cond_rows=slice(1, 2))
    every(skel, "skel", 3)
    assert torch.equal(every.maps[("skel", 3)], skel.view(2, TL, *skel.shape[1:])[1])

    avg = AttentionRecorder(batch=2, cond_rows=slice(1, 2), average_cross=True)
    a, b = _grid("cross", rows=2, seed=1), _grid("cross", rows=2, seed=2)
    avg(a, "cross", 0)
    avg(skel, "skel", 0)  # not a cross map: neither averaged nor kept
    avg(b, "cross", 1)
    assert avg.count == 2 and not avg.maps
    expected = (a[1:2].mean(dim=1) + b[1:2].mean(dim=1)) / 2  # over heads, then calls
    torch.testing.assert_close(avg.cross_mean(), expected, rtol=0, atol=1e-7)
    assert avg.cross_mean().shape == (1, TL * NUM_PARTS, L)


def test_recording_forward_restores_fused_attention_even_on_error():
    torch.manual_seed(0)
    att = attention.Attention(dim=8, heads=2, dropout=0.0, kind="cross", layer=0).eval()
    den = torch.nn.Module()
    den.att = att
    den.set_attn_processor = lambda p: setattr(att, "processor", p)
    rec = AttentionRecorder(batch=1, cond_rows=slice(0, 1))
    x, kv = torch.randn(1, 5, 8), torch.randn(1, 4, 8)
    with torch.no_grad():
        out = recording_forward(den, lambda: att(x, kv_in=kv), rec)
        assert att.processor is attention.FUSED and rec.maps[("cross", 0)].shape == (1, 2, 5, 4)
        torch.testing.assert_close(out, att(x, kv_in=kv), rtol=1e-5, atol=1e-6)

    def boom():
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        recording_forward(den, boom, rec)
    assert att.processor is attention.FUSED


@pytest.mark.parametrize("src,edit,expected", [
    ([5], [7, 5], [-1, 0]),  # one word inserted before everything
    ([5], [7, 8, 9, 5], [-1, -1, -1, 0]),  # several
    ([5, 6], [5, 6, 7, 8], [0, 1, -1, -1]),  # appended
    ([4, 5, 6], [6], [2]),  # words dropped from the front
    ([], [1, 2], [-1, -1]),
    ([1, 2], [], []),
])
def test_alignment_handles_insertions_and_deletions_at_the_ends(src, edit, expected):
    assert align_tokens(src, edit) == expected


def test_recorder_defaults_and_a_single_averaged_call():
    rec = AttentionRecorder(batch=2, cond_rows=slice(1, 2))  # default: every kind kept
    for kind in ("skel", "temp", "cross"):
        rec(_grid(kind, rows=2), kind, 0)
    assert set(rec.maps) == {("skel", 0), ("temp", 0), ("cross", 0)}
    avg = AttentionRecorder(batch=2, cond_rows=slice(1, 2), average_cross=True)
    one = _grid("cross", rows=2, seed=4)
    avg(one, "cross", 0)
    torch.testing.assert_close(avg.cross_mean(), one[1:2].mean(dim=1), rtol=0, atol=1e-7)  # the mean of one


@pytest.mark.parametrize("kind", ["skel", "temp"])
def test_the_controller_mirrors_injected_self_attention_when_asked(kind):
    mode = Mirror("all", mirror_self=True)
    ctrl = EditController(mode, ROWS, 4, src_proportion=1.0)
    ctrl.begin_step(0, 10, ROWS, 4)
    probs = _grid(kind)
    rows = probs.view(4, -1, *probs.shape[1:])
    out = ctrl(probs, kind, 0).view(4, -1, *probs.shape[1:])
    assert torch.equal(out[ROWS["edit_c"]], mode.self_attention(rows[ROWS["src_c"]], kind))
    assert not torch.equal(out[ROWS["edit_c"]], rows[ROWS["src_c"]])
