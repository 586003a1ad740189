"""A scripted stand-in for the worker's shot ops (compose, continue, inbetween, regenerate_parts), by their contract.

Why: the add-on's shot jobs are tested for what they send and what they do with an answer (placement,
recipe, new Actions) with motion whose shape is known, which the real tiny model (random output) cannot
give. Answers follow docs/worker_protocol.md: ``joints`` [T, 22, 3] model space at 20 fps, ``contacts``
[T, 4], ``meta`` with ``meta.shot`` the worker's recipe and, for sources given as joints, ``meta.placement``
(the source's first root XZ and heading; the joints come back canonical: root at the origin, floor at 0,
facing +Z), and the source part of a continuation cut to whole latent frames like the worker's.
End-to-end runs against the real worker are in test_shot_jobs.py.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np

from benchmarks.bench_retarget import synthetic_walk
from salad_blender import facing, protocol
from salad_blender.client import WorkerError


class Answer:
    """A request the fake worker answers after ``pending`` polls, one sampling step per poll."""

    def __init__(self, result=None, error=None, steps=0):
        self.result, self.error = result, error
        self.steps, self.step = steps, 0
        self.cancelled = False

    @property
    def done(self):
        return self.cancelled or self.step >= self.steps

    @property
    def progress(self):
        return 1.0 if self.done else self.step / self.steps

    @property
    def state(self):  # as the client's Job: queued → running → done | failed
        if not self.done:
            return "running"
        return "failed" if self.error is not None else "done"

    def poll(self):
        if not self.done:
            self.step += 1
        return []

    def cancel(self):
        self.cancelled = True
        self.error = WorkerError("cancelled", "cancelled")


def canonical(joints: np.ndarray) -> tuple[np.ndarray, dict]:
    """The worker's canonical frame: first root XZ at the origin, floor at 0, first frame facing +Z."""
    j = np.asarray(joints, np.float64)
    h = float(facing.model_heading(j[0]))
    c, s = np.cos(-h), np.sin(-h)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    root = np.array([j[0, 0, 0], j[..., 1].min(), j[0, 0, 2]])
    return (j - root) @ rot.T, {"root_xz": [float(root[0]), float(root[2])], "heading": h}


def whole_latent(joints: np.ndarray) -> np.ndarray:
    """The frames of a source the worker keeps: features are one frame fewer, cut to whole latent frames of 4."""
    return joints[: 4 * ((len(joints) - 1) // 4)]


def walk_on(last: np.ndarray, frames: int, speed: float = 1.0) -> np.ndarray:
    """``frames`` more frames holding the pose ``last`` while it moves forward (+Z) at ``speed`` m/s."""
    t = (np.arange(1, frames + 1) / 20.0)[:, None, None]
    return last[None] + t * np.array([0.0, 0.0, speed])


class ShotWorker:
    """Answers ``load`` at once and the shot ops after ``steps`` polls; records every request."""

    def __init__(self, steps: int = 3):
        self.sent: list[dict] = []
        self.steps = steps
        self.error: WorkerError | None = None  # answer the next op with this error

    def submit(self, request: dict) -> Answer:
        request = protocol.from_wire(protocol.to_wire(request))  # what travels: arrays survive, tuples become lists
        self.sent.append(request)
        if request["op"] == "load":
            return Answer({"model": {"name": "fake"}})
        if self.error is not None:
            err, self.error = self.error, None
            return Answer(error=err, steps=1)
        result = getattr(self, "op_" + request["op"])(request)
        result["meta"] = {"seed": request.get("seed", 0), "guidance": request.get("guidance", 2.5),
                          "steps": request.get("steps", 50), "scheduler": request.get("scheduler", "ddim"),
                          "model": "fake", **result.get("meta", {})}
        result.setdefault("contacts", np.zeros((len(result["joints"]), 4), bool))
        return Answer(result, steps=self.steps)

    def stderr_tail(self, lines=40):
        return ""

    @property
    def ops(self) -> list[dict]:
        return [r for r in self.sent if r["op"] != "load"]

    # -- the ops, by contract ----------------------------------------------------------------------

    @staticmethod
    def op_compose(req: dict) -> dict:
        segs, start = [], 0
        for k, s in enumerate(req["segments"]):
            n = 4 * int(round(s["seconds"] * 20 / 4))
            seed = s.get("seed", 1000 + 10 * req.get("seed", 0) + k)
            segs.append({"prompt": s["prompt"], "seconds": s["seconds"], "seed": seed, "start": start,
                         "end": start + n})
            start += n
        joints = synthetic_walk(start)
        return {"joints": joints, "meta": {"prompt": "; ".join(s["prompt"] for s in segs),
                                           "shot": {"kind": "compose", "segments": segs}}}

    @staticmethod
    def op_continue(req: dict) -> dict:
        src, placement = canonical(whole_latent(req["joints"]))
        new = walk_on(src[-1], 4 * int(round(req["seconds"] * 20 / 4)))
        return {"joints": np.concatenate([src, new]),
                "meta": {"placement": placement, "shot": {"kind": "continue", "source_frames": len(src)}}}

    @staticmethod
    def op_inbetween(req: dict) -> dict:
        a, placement = canonical(whole_latent(req["joints_a"]))
        gap = walk_on(a[-1], 4 * int(round(req["seconds"] * 20 / 4)))
        b, _ = canonical(whole_latent(req["joints_b"]))
        b = b - b[0, 0] * np.array([1.0, 0.0, 1.0]) + gap[-1, 0] * np.array([1.0, 0.0, 1.0])
        return {"joints": np.concatenate([a, gap, b]),
                "meta": {"placement": placement, "shot": {"kind": "inbetween", "seams": [len(a), len(a) + len(gap)]}}}

    @staticmethod
    def op_regenerate_parts(req: dict) -> dict:
        if "joints" in req:
            src, placement = canonical(whole_latent(req["joints"]))
            meta = {"placement": placement}
        else:
            src, meta = synthetic_walk(req["frames"]), {}
        return {"joints": src, "meta": {**meta, "shot": {"kind": "parts", "parts": list(req["parts"])}}}


class FakePool:
    """What :func:`motion_job.make_job` needs of a worker pool: a client for a config and its hello."""

    def __init__(self, worker: ShotWorker | None = None):
        self.worker = worker or ShotWorker()
        self.hello = Answer({"pid": 1})
        self.client = self.worker

    def get(self, config):
        return self.worker


@contextlib.contextmanager
def shot_addon(tiny_model_dir, monkeypatch):
    """The add-on enabled on the tiny model with this module's scripted worker as its pool (yielded)."""
    import addon_utils
    import bpy

    from salad_blender import motion_job

    bpy.context.preferences.use_preferences_save = False
    addon_utils.enable("salad_blender", default_set=True)
    prefs = bpy.context.preferences.addons["salad_blender"].preferences
    prefs.python_path, prefs.model_source, prefs.model_folder = sys.executable, "FOLDER", str(tiny_model_dir)
    pool = FakePool(ShotWorker(steps=1))
    monkeypatch.setattr(motion_job, "POOL", pool)
    g = bpy.context.scene.salad
    g.steps, g.pin_feet = 3, False
    try:
        yield pool
    finally:
        addon_utils.disable("salad_blender", default_set=True)
