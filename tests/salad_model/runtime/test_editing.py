"""Attention-control editing, unit by unit: the edit modes' maps and the controller's step ranges and rows."""

import pytest
import torch

from salad_model.motion.skeleton import MIRROR_PART_PAIRS
from salad_model.runtime.editing import (
    NUM_PARTS,
    EditController,
    Mirror,
    Refine,
    Reweight,
    SourceMaps,
    WordSwap,
)

H, TL, L = 2, 3, 9  # heads, latent frames, text length
ROWS = {"src_u": 0, "src_c": 1, "edit_u": 2, "edit_c": 3}


def _maps(seed: int, shape=(H, TL * NUM_PARTS, L)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g).softmax(-1)


def test_reweight_scales_exactly_the_chosen_columns() -> None:
    src = _maps(0)
    before = src.clone()
    out = Reweight([2, 5], 3.0).cross(src, None, _maps(1), 0.0)
    chosen = torch.zeros(L, dtype=torch.bool)
    chosen[[2, 5]] = True
    torch.testing.assert_close(out[..., chosen], 3.0 * src[..., chosen], rtol=0, atol=0)
    assert torch.equal(out[..., ~chosen], src[..., ~chosen])
    assert torch.equal(src, before)  # the source map (shared with the source row) is not modified


def test_reweight_of_a_multi_token_word_scales_every_piece(tiny_pipeline) -> None:
    """'somersault' is three word pieces for the tiny BERT; the pipeline's re-weight must cover all three."""
    prompt = "a person does a somersault"
    te = tiny_pipeline.text_encoder
    mode, edit_prompt, _ = tiny_pipeline.edit_mode(prompt, "", word="somersault", scale=2.0)
    assert isinstance(mode, Reweight) and edit_prompt == prompt
    idx = mode.token_indices
    assert len(idx) == 3 and idx == list(range(idx[0], idx[0] + 3))
    assert "".join(te.tokens(prompt)[i].removeprefix("##") for i in idx) == "somersault"
    src = _maps(2)
    out = mode.cross(src, None, src, 0.0)
    others = [j for j in range(L) if j not in idx]
    torch.testing.assert_close(out[..., idx], 2.0 * src[..., idx], rtol=0, atol=0)
    assert torch.equal(out[..., others], src[..., others])


def test_refine_reindexes_kept_tokens_and_takes_new_ones_from_the_free_pass() -> None:
    src, free = _maps(3), _maps(4)
    mapper = [0, -1, 1, 2, 3]  # a word inserted after the first token
    out = Refine(mapper).cross(src, free, free, 0.5)
    for j, m in enumerate(mapper):
        expected = free[..., j] if m < 0 else src[..., m]
        assert torch.equal(out[..., j], expected), j
    assert (out[..., len(mapper):] == 0).all()  # past the edit prompt: padding


def test_mirror_swaps_left_and_right_part_rows_only() -> None:
    src = _maps(5)
    lower = Mirror("lower")
    out = lower.cross(src, None, src, 0.0).reshape(H, TL, NUM_PARTS, L)
    grid = src.reshape(H, TL, NUM_PARTS, L)
    for p in range(NUM_PARTS):
        assert torch.equal(out[:, :, p], grid[:, :, lower.perm[p]])
    assert lower.perm != list(range(NUM_PARTS)) and sorted(lower.perm) == list(range(NUM_PARTS))
    moved = {p for p in range(NUM_PARTS) if lower.perm[p] != p}
    assert moved == {p for pair in MIRROR_PART_PAIRS["lower"] for p in pair}
    with pytest.raises(ValueError, match="mirror mode"):
        Mirror("sideways")


def _grid(kind: str) -> torch.Tensor:
    """Probabilities of one attention call over the four rows (batch 1 per row)."""
    shape = {"cross": (4, H, TL * NUM_PARTS, L), "skel": (4 * TL, H, NUM_PARTS, NUM_PARTS),
             "temp": (4 * NUM_PARTS, H, TL, TL)}[kind]
    return torch.rand(*shape, generator=torch.Generator().manual_seed(len(kind))).softmax(-1)


@pytest.mark.parametrize("kind", ["skel", "temp"])
def test_self_attention_is_injected_only_within_its_step_range(kind) -> None:
    steps, proportion = 10, 0.3  # steps 0, 1, 2 inject; 3 … 9 do not
    ctrl = EditController(WordSwap(1.0), ROWS, 4, src_proportion=proportion, inject_temporal=True)
    injected = []
    for i in range(steps):
        ctrl.begin_step(i, steps, ROWS, 4)
        probs = _grid(kind)
        out = ctrl(probs, kind, 0)
        rows, new_rows = probs.view(4, -1, *probs.shape[1:]), out.view(4, -1, *probs.shape[1:])
        for r in ("src_u", "src_c", "edit_u"):  # never touched
            assert torch.equal(new_rows[ROWS[r]], rows[ROWS[r]])
        if torch.equal(new_rows[ROWS["edit_c"]], rows[ROWS["src_c"]]):
            injected.append(i)
        else:
            assert torch.equal(new_rows[ROWS["edit_c"]], rows[ROWS["edit_c"]])
    assert injected == [0, 1, 2]


def test_temporal_injection_can_be_switched_off() -> None:
    ctrl = EditController(WordSwap(1.0), ROWS, 4, src_proportion=1.0, inject_temporal=False)
    ctrl.begin_step(0, 10, ROWS, 4)
    probs = _grid("temp")
    assert torch.equal(ctrl(probs, "temp", 0), probs)
    assert not torch.equal(ctrl(_grid("skel"), "skel", 0), _grid("skel"))


def test_word_swap_cross_attention_switches_from_source_to_own_at_its_proportion() -> None:
    steps = 10
    ctrl = EditController(WordSwap(0.5), ROWS, 4, src_proportion=0.0)
    from_source = []
    for i in range(steps):
        ctrl.begin_step(i, steps, ROWS, 4)
        probs = _grid("cross")
        out = ctrl(probs, "cross", 1)
        if torch.equal(out[ROWS["edit_c"]], probs[ROWS["src_c"]]):
            from_source.append(i)
        else:
            assert torch.equal(out[ROWS["edit_c"]], probs[ROWS["edit_c"]])
    assert from_source == [0, 1, 2, 3, 4]


def test_recorded_source_maps_replay_without_source_rows() -> None:
    """A cache hit (no src rows) injects exactly what the first edit recorded; cross maps are stored trimmed."""
    text_len = 6
    record = SourceMaps(("key",), [], text_len)
    first = EditController(Reweight([1], 2.0), ROWS, 4, record=record)
    first.begin_step(0, 1, ROWS, 4)
    probs = _grid("cross")
    probs[..., text_len:] = 0  # columns past the prompt are masked keys: probability 0
    out_first = first(probs, "cross", 0)
    assert record.maps[0][("cross", 0)].shape[-1] == text_len
    hit_rows = {"edit_u": 0, "edit_c": 1}
    replay = EditController(Reweight([1], 2.0), hit_rows, 2, source=record)
    replay.begin_step(0, 1, hit_rows, 2)
    out_hit = replay(probs[2:].clone(), "cross", 0)
    assert torch.equal(out_hit[1], out_first[ROWS["edit_c"]])
