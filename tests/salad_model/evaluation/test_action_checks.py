"""Geometric action checks (issue 19): each passes on its own real DeepMimic clip and fails on walks
(the DeepMimic walk, a Bandai walk-turn and a Bandai raised hand); the generate report counts passes per action."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from needs import require
from testdata import DATA, SHARED

from salad_model.evaluation import action_checks as A
from salad_model.motion.bandai_rig import bvh_to_smpl22
from salad_model.motion.motion_process import canonicalize
from salad_model.training.data import deepmimic as D

DEEPMIMIC = SHARED / "data" / "deepmimic" if SHARED else D.DEFAULT_DATA_DIR
CLIP_OF = {content: stem for stem, (content, _) in D.CLIP_LABELS.items()}


@pytest.fixture(scope="module")
def clip():
    require((DEEPMIMIC / "humanoid3d.txt").is_file(), f"shared DeepMimic clips (not at {DEEPMIMIC})")
    skel = D.load_skeleton(DEEPMIMIC / "humanoid3d.txt")
    cache: dict[str, np.ndarray] = {}

    def get(stem: str) -> np.ndarray:
        if stem not in cache:
            cache[stem] = D.clip_joints(DEEPMIMIC / "motions" / f"humanoid3d_{stem}.txt", skel)
        return cache[stem]

    return get


@pytest.fixture(scope="module")
def bandai_walk() -> np.ndarray:
    return canonicalize(bvh_to_smpl22((DATA / "dataset-2_walk-turn-left_active_024.bvh").read_text()))


@pytest.fixture(scope="module")
def bandai_raise() -> np.ndarray:
    return canonicalize(bvh_to_smpl22((DATA / "dataset-2_raise-up-left-hand_active_020.bvh").read_text()))


def test_every_new_action_has_a_check_or_is_declared_unchecked():
    actions = {c for c, _ in D.CLIP_LABELS.values()} - {"walk"}
    assert actions == set(A.CHECKS) | set(A.NO_CHECK)
    assert set(A.PROMPTS) == set(A.CHECKS)


@pytest.mark.parametrize("action", sorted(A.CHECKS))
def test_check_passes_on_its_clip_and_fails_on_walks(action, clip, bandai_walk, bandai_raise):
    own = A.run_check(action, clip(CLIP_OF[action]))
    assert own["passed"], own
    assert not A.run_check(action, clip("walk"))["passed"]
    assert not A.run_check(action, bandai_walk)["passed"]
    assert not A.run_check(action, bandai_raise)["passed"]  # a raised hand is no punch (nor anything else)


def test_checks_tell_related_actions_apart(clip):
    """Where two actions share a measure, the rule separates them on the real clips."""
    assert not A.run_check("jump", clip("jog"))["passed"]  # jog: both feet up, pelvis hardly rises
    assert not A.run_check("backflip", clip("sideflip"))["passed"]  # tips forward-sideways, not back
    assert not A.run_check("sideflip", clip("cartwheel"))["passed"]  # hands on the floor
    assert not A.run_check("cartwheel", clip("sideflip"))["passed"]
    assert not A.run_check("dance-spin", clip("spin"))["passed"]  # the acrobatic spin tilts the trunk
    assert not A.run_check("sneak", clip("walk"))["passed"] and A.run_check("crawl", clip("crawl"))["passed"]
    assert not A.run_check("getup-faceup", clip("getup_facedown"))["passed"]
    assert not A.run_check("getup-facedown", clip("getup_faceup"))["passed"]


def test_jump_measures_the_pelvis_rise(clip):
    j = clip("walk").copy()
    assert not A.run_check("jump", j)["passed"]
    k = len(j) // 2
    j[k - 3:k + 3, :, 1] += 0.3  # the whole body 30 cm up for 0.3 s: a jump
    out = A.run_check("jump", j)
    assert out["passed"] and out["pelvis_rise_m"] == pytest.approx(0.3, abs=0.03)


def test_bad_input_is_refused():
    with pytest.raises(KeyError, match="no geometric check for 'dance'"):
        A.run_check("dance", np.zeros((10, 22, 3)))
    with pytest.raises(ValueError, match="expected joints"):
        A.run_check("jump", np.zeros((10, 21, 3)))


def test_generate_report_counts_passes_per_action(clip, monkeypatch, tmp_path):
    """A stand-in model that jumps for jump prompts and walks otherwise: jump 100%, the rest 0%. The guidance
    scale is the model's own unless asked (``--guidance``), and the report says which."""
    jump, walk = clip("jump"), clip("walk")
    calls = []

    class FakePipe:
        default_guidance = 4.0
        default_guider = None

        @classmethod
        def from_pretrained(cls, model, device="cpu"):
            return cls()

        def generate_batch(self, prompts, seconds, seeds, steps, guidance=None, guider=None):
            calls.append((list(prompts), list(seeds), steps, guidance, guider))
            return [SimpleNamespace(joints=(jump if "jump" in p else walk)[: int(s * 20)])
                    for p, s in zip(prompts, seconds, strict=True)]

    import salad_model.runtime.pipeline as P

    monkeypatch.setattr(P, "SaladPipeline", FakePipe)
    out = tmp_path / "r.json"
    rep = A.generate_report("fake", seeds=3, seconds=8.0, steps=7, out=out)
    assert rep["actions"]["jump"]["pass_rate"] == 1.0 and rep["actions"]["jump"]["n"] == 6
    assert all(v["pass_rate"] == 0.0 for k, v in rep["actions"].items() if k != "jump")
    assert calls[0] == (["a person jumps"] * 3 + ["someone jumps forward"] * 3, [0, 1, 2] * 2, 7, 4.0, None)
    assert rep["guidance"] == 4.0 and rep["guider"] is None
    assert json.loads(out.read_text())["actions"]["crawl"]["runs"][0]["prompt"] == "a person crawls forward"
    only = A.main(["generate", "--model", "fake", "--seeds", "1", "--steps", "7", "--actions", "crawl",
                   "--guidance", "5.5", "--guider", "apg:eta=0", "--out", str(tmp_path / "g.json")])
    only = json.loads((tmp_path / "g.json").read_text())
    assert list(only["actions"]) == ["crawl"] and only["actions"]["crawl"]["pass_rate"] == 0.0
    assert only["guidance"] == 5.5 and calls[-1][3] == 5.5
    assert only["guider"] == "apg:eta=0" and calls[-1][4] == "apg:eta=0"


def test_heldout_wording_is_never_a_training_caption(tmp_path):
    from salad_model.training.data.captions import uses_heldout_template

    caps = D.clip_captions("jump", "normal", "deepmimic_jump")
    for action in A.PROMPTS:
        train = {c.rstrip(".").lower() for c in D.clip_captions(action, "normal", f"deepmimic_{action}")["train"]}
        for p in A.heldout_prompts(action):
            assert p.lower() not in train
    assert any(uses_heldout_template(p) for p in A.heldout_prompts("jump"))
    assert "A person jumps." in caps["train"] or any("jump" in c for c in caps["train"])
    with pytest.raises(ValueError, match="wording"):
        A.generate_report("demo", 1, 2.0, 5, None, wording="fancy")
    with pytest.raises(ValueError, match=r"unknown actions \['moonwalk'\]"):
        A.generate_report("demo", 1, 2.0, 5, None, actions=["jump", "moonwalk"])
