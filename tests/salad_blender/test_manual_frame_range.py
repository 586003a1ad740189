"""A result made again from its parent's recipe (edit, re-roll, part regeneration) lands on the parent's keys.

audit9: with the parent's Manual Frame Range on (Action properties; an animator trims a clip to the part they
play, or to loop it), the new Action was placed at the manual range's start instead of where the parent's keys
start: every key of the edit / re-roll / regenerated parts came out shifted by the trim (a clip keyed from frame
11, trimmed to 40-70, was re-rolled onto frames 40-...). The same with one key the animator added before the clip
(an anticipation pose at frame 1 on one bone): the whole result moved to frame 1.
"""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from shot_fakes import FakePool, ShotWorker, canonical  # noqa: E402
from test_shot_jobs_scripted import FAST, SEGS, run  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, jobs, shot_jobs  # noqa: E402

CONFIG = jobs.WorkerConfig(python="python", model="demo")


class EditingWorker(ShotWorker):
    """The scripted shot worker plus a plain generation and edit: walks of the asked length."""

    @staticmethod
    def op_generate(req: dict) -> dict:
        return {"joints": canonical(synthetic_walk(int(req.get("frames") or round(req["seconds"] * 20))))[0]}

    @staticmethod
    def op_edit(req: dict) -> dict:
        return {"joints": canonical(synthetic_walk(req["frames"]))[0], "meta": {"edits": [{"mode": "swap"}]}}


def first_key(action: bpy.types.Action) -> float:
    return min(fc.range()[0] for fc in actions.action_fcurves(action) if len(fc.keyframe_points))


def trimmed_parent(make, how: str = "range") -> tuple[bpy.types.Object, bpy.types.Action, FakePool]:  # noqa: ANN001
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start, scene.frame_end = 11, 300
    pool = FakePool(EditingWorker(steps=1))
    parent = run(make(pool))
    assert first_key(parent) == 11
    if how == "range":
        parent.use_frame_range, parent.frame_start, parent.frame_end = True, 40, 70
    else:  # one hand key before the clip, on one of the curves the result drives
        curve = next(fc for fc in actions.action_fcurves(parent) if fc.data_path.endswith("rotation_quaternion"))
        curve.keyframe_points.insert(1, 1.0)
    return bpy.data.objects["SALAD Body"], parent, pool


def shot(pool):  # noqa: ANN001, ANN201
    return shot_jobs.start_compose(CONFIG, SEGS, FAST, jobs.Target(kind="new", pin_feet=False), pool=pool)


def clip(pool):  # noqa: ANN001, ANN201
    return jobs.start_generate(CONFIG, "a person walks", FAST, jobs.Target(kind="new", pin_feet=False), pool=pool)


def start_version(kind, body, pool):  # noqa: ANN001, ANN201
    """A new version of the rig's action: a re-roll of segment 2, arms regenerated, or an edit."""
    if kind == "reroll":
        return shot_jobs.start_reroll_segment(CONFIG, body, 1, 99, pool=pool)
    if kind == "parts":
        return shot_jobs.start_regenerate_parts(CONFIG, body, "a person waves", ["arms"], pool=pool)
    return jobs.start_edit(CONFIG, body, new_prompt="a person runs", pool=pool)


@pytest.mark.parametrize("how", ["range", "hand key"])
@pytest.mark.parametrize("kind", ["reroll", "parts", "edit"])
def test_a_result_of_a_trimmed_parent_keeps_its_frames(kind, how):
    body, parent, pool = trimmed_parent(shot if kind == "reroll" else clip, how)
    new = run(start_version(kind, body, pool))
    assert new is not parent and first_key(new) == 11
    if how == "range":
        assert np.isclose(parent.frame_start, 40) and parent.use_frame_range  # the parent is left as it was
