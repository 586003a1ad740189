"""Generation, edit, attention and check jobs: plain objects that the UI, tests and ``tools/batch.py`` poll.

Why plain objects: headless Blender runs no timers or modal operators, so all logic lives here and
whoever owns the main thread drives it — a 0.1 s ``bpy.app.timers`` callback in the UI, a
``poll()`` loop in ``tools/batch.py`` and in the tests. One code path for all three.

A job is a short chain of worker requests — ``hello`` (only when the worker was just started),
``load`` (the worker answers at once when that model is already loaded), then the op — followed by an
*apply* step that runs on the polling (main) thread and is the only step that touches Blender data.
Everything that can be checked up front (prompt, rig, bone map, interpreter, model folder) is checked
in the ``start_*`` functions, which raise :class:`JobError` before anything is spawned or created.
Failures and cancels after the start leave the scene as it was: nothing is created before the apply
step, and the apply step removes what it created if it fails half-way.

Edits are stateless: they regenerate from the selected action's metadata (prompt, seed, frames,
model, guidance, steps, sampler). The source of an edit is the action's *current* prompt — the last
edit's prompt for an edited action — and the new action records the parent's edit chain plus the new
edit in ``salad_edits``. So every action is reproducible from its own metadata: its last edit applied
to the generation of its ``salad_prompt``.

Any other animation (mocap, hand keys) is edited by :func:`start_edit_real`: the armature's pose is
sampled into SMPL-22 joints (model space, 20 fps), which the worker inverts under a user caption and
edits; the result is a new Action placed where the original starts, with ``salad_source_action``.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np

from . import actions, armature, heatmap, rigs, smpl22
from . import protocol as P
from . import retarget as rt
from .client import Job as WorkerJob
from .client import WorkerClient, WorkerError

HELLO_TIMEOUT = 60.0  # seconds a fresh worker gets to answer hello (interpreter start-up only)
POLL_INTERVAL = 0.1
SAMPLERS = P.SCHEDULERS  # request choices and ranges: the protocol copy of salad_model.runtime.requests
RIG_PRESETS = ("auto", "smpl22", "mixamo", "rigify")
MIRROR_SIDES = P.MIRROR_SIDES
MIRROR_METHODS = P.MIRROR_METHODS
PREFS_HINT = "Preferences > Add-ons > SALAD Motion"

# Progress ranges of the stages (the op dominates; loading a model the first time is slow, then free).
_RANGES = {"hello": (0.0, 0.03), "load": (0.03, 0.2), "run": (0.2, 0.97), "apply": (0.97, 1.0)}


class JobError(Exception):
    """A job cannot start or failed; the message says what happened and what to do about it."""


# ------------------------------------------------------------------------------------------------
# Worker configuration and the shared worker process


@dataclass(frozen=True)
class WorkerConfig:
    """Where and how the model runs (from the add-on preferences, a batch flag or a test)."""

    python: str
    model: str = "demo"
    device: str = "auto"
    threads: int = 0  # 0: the worker picks (physical cores)
    env: tuple[tuple[str, str], ...] = ()  # extra environment for the worker (tests, debugging)

    def worker_key(self) -> tuple:
        return (resolve_python(self.python), self.device, int(self.threads), tuple(self.env))


def resolve_python(path: str | os.PathLike | None) -> str:
    """The worker interpreter as an absolute path, or a :class:`JobError` saying how to set one."""
    if not path or not str(path).strip():
        raise JobError("No Python interpreter is set for the model worker. Set 'Worker Python' in "
                       f"{PREFS_HINT}, or click 'Set up model environment' there.")
    p = os.path.abspath(os.path.expanduser(str(path).strip()))
    if not os.path.isfile(p):
        raise JobError(f"The worker Python '{p}' does not exist. Fix 'Worker Python' in {PREFS_HINT} "
                       "(the python of an environment with salad_model installed), or click "
                       "'Set up model environment'.")
    if not os.access(p, os.X_OK):
        raise JobError(f"The worker Python '{p}' is not executable. Fix 'Worker Python' in {PREFS_HINT}.")
    return p


def check_model(model: str) -> str:
    """"demo" or an existing model folder (ours or an official checkpoint folder)."""
    model = (model or "").strip()
    if not model or model == "demo":
        return "demo"
    p = os.path.abspath(os.path.expanduser(model))
    if not os.path.isdir(p):
        raise JobError(f"The model folder '{p}' does not exist. Pick a model folder in {PREFS_HINT} "
                       "or choose the demo model.")
    return p


class WorkerPool:
    """The one worker process of a Blender session, restarted when its settings change or it died.

    The model stays loaded between jobs (the worker reuses it when a ``load`` names the same model),
    so only the first generation pays for starting Python, importing torch and reading weights.
    """

    def __init__(self) -> None:
        self._client: WorkerClient | None = None
        self._key: tuple | None = None
        self.hello: WorkerJob | None = None  # the current worker's hello request

    @property
    def client(self) -> WorkerClient | None:
        return self._client

    @property
    def running(self) -> bool:
        return self._client is not None and self._client.running

    def get(self, config: WorkerConfig) -> WorkerClient:
        """A started client for ``config`` (hello sent); spawns or restarts the worker as needed."""
        key = config.worker_key()
        client = self._client
        if client is not None and (key != self._key or not client.running):
            client.close()
            client = self._client = None
        if client is None:
            python, device, threads, env = key
            args = ["--device", device] + (["--threads", str(threads)] if threads > 0 else [])
            client = WorkerClient(python=python, args=args, env=dict(env))
            try:
                self.hello = client.start()
            except OSError as exc:
                client.close()
                raise JobError(f"Cannot start the model worker with '{python}': "
                               f"{exc.strerror or exc}. Fix 'Worker Python' in {PREFS_HINT}.") from exc
            self._client, self._key = client, key
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._key = self.hello = None

    def stderr_tail(self, lines: int = 40) -> str:
        return self._client.stderr_tail(lines) if self._client is not None else ""


POOL = WorkerPool()


# ------------------------------------------------------------------------------------------------
# Inputs


@dataclass
class Sampling:
    """Length, seed and sampler settings of one generation (what the metadata records)."""

    seconds: float | None = 4.0
    frames: int | None = None  # exact length (edits reuse the source's frames)
    seed: int = 0
    guidance: float | None = None  # None or 0: the model's own default (its config says which)
    steps: int = 50
    sampler: str = "ddim"

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": int(self.seed), "steps": int(self.steps), "scheduler": self.sampler}
        if self.frames is not None:
            out["frames"] = int(self.frames)
        else:
            out["seconds"] = float(self.seconds)
        if self.guidance:
            out["guidance"] = float(self.guidance)
        return out

    def check(self) -> None:
        if self.sampler not in SAMPLERS:
            raise JobError(f"Unknown sampler '{self.sampler}'; choose one of {', '.join(SAMPLERS)}.")
        if self.frames is None and not (self.seconds and self.seconds > 0):
            raise JobError("The duration must be a positive number of seconds.")
        if not P.SEED_MIN <= int(self.seed) <= P.SEED_MAX:
            raise JobError(f"The seed must be an integer within {P.SEED_MIN} … {P.SEED_MAX}.")
        if int(self.steps) < 1:
            raise JobError("Steps must be at least 1.")


@dataclass
class Target:
    """Where a motion goes: a new SMPL-22 body ("new") or an existing armature object ("armature").

    ``rig``: a preset name (``auto``, ``smpl22``, ``mixamo``, ``rigify``) or a custom bone map
    {SMPL-22 joint: bone}. ``pin_feet`` removes foot sliding using the model's contact flags.
    """

    kind: str = "new"
    armature: str = ""
    rig: str | dict[str, str] = "auto"
    scene: str = ""
    pin_feet: bool = True
    name: str = "SALAD Body"
    start_frame: int | None = None


def split_words(prompt: str) -> list[str]:
    """Distinct words of a prompt in order (for the re-weight word picker)."""
    seen: list[str] = []
    for w in heatmap.split_words(prompt):
        if w.lower() not in (s.lower() for s in seen):
            seen.append(w)
    return seen


def parse_bone_map(text: str, origin: str = "bone map") -> dict[str, str]:
    """JSON {SMPL-22 joint: bone name} (the inverse {bone: joint} is accepted and flipped)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise JobError(f"The {origin} is not valid JSON ({exc}). Expected e.g. "
                       '{"pelvis": "Hips", "left_hip": "LeftUpLeg", ...}.') from exc
    if not isinstance(data, dict) or not data or not all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in data.items()):
        raise JobError(f"The {origin} must be a JSON object of names, {{SMPL-22 joint: bone name}}.")
    joints = set(smpl22.JOINT_NAMES)
    if not set(data) <= joints and set(data.values()) <= joints:
        data = {v: k for k, v in data.items()}
    return data


def load_bone_map(source: str, text_name: str = "", path: str = "") -> dict[str, str]:
    """A custom bone map from a Blender text datablock ("TEXT") or a JSON file ("FILE")."""
    if source == "TEXT":
        text = bpy.data.texts.get(text_name)
        if text is None:
            raise JobError("Pick the text datablock that holds the custom bone map (JSON).")
        return parse_bone_map(text.as_string(), f"bone map text '{text_name}'")
    p = bpy.path.abspath(path) if path else ""
    if not p or not os.path.isfile(p):
        raise JobError(f"The bone map file '{path}' does not exist.")
    with open(p, encoding="utf-8") as fh:
        return parse_bone_map(fh.read(), f"bone map file '{path}'")


def check_rig(obj: bpy.types.Object | None, rig: str | dict[str, str]) -> tuple[str, dict[str, str]]:
    """Resolve and side-check the bone map of an armature now, so a wrong rig fails before sampling.

    Returns (preset name or "custom", bone map).
    """
    if obj is None:
        raise JobError("Select an armature (or choose 'New SMPL-22 body' as the target).")
    if obj.type != "ARMATURE":
        raise JobError(f"'{obj.name}' is a {obj.type.lower()}, not an armature. Select an armature or "
                       "choose 'New SMPL-22 body' as the target.")
    if obj.mode == "EDIT":
        raise JobError(f"'{obj.name}' is in Edit Mode; switch to Object or Pose Mode first.")
    try:
        rest = armature.rig_rest_from_object(obj)
        name, mapping = rigs.resolve_bone_map(rest.bone_names, rig)
        rigs.check_sides(rest, mapping)
    except rigs.RigError as exc:
        raise JobError(f"The armature '{obj.name}' cannot take the motion: {exc} Choose the right rig "
                       "preset or a custom bone map, or target a new SMPL-22 body.") from exc
    return name, mapping


# ------------------------------------------------------------------------------------------------
# Action metadata helpers (plain reads of custom properties)


def is_salad_action(action: Any) -> bool:
    return action is not None and "salad_prompt" in action.keys()


def action_meta(action: bpy.types.Action) -> dict[str, Any]:
    """Metadata of a SALAD action, with defaults for what older actions may lack."""
    meta = actions.read_metadata(action)
    if "salad_prompt" not in meta:
        raise JobError(f"The action '{action.name}' was not made by SALAD (no salad_prompt): generate "
                       "a motion first.")
    meta.setdefault("salad_edits", [])
    meta.setdefault("salad_scheduler", "ddim")
    return meta


def current_prompt(meta: dict[str, Any]) -> str:
    """The prompt an action shows: its last edit's prompt, else its source prompt."""
    for edit in reversed(meta.get("salad_edits") or []):
        if isinstance(edit, dict) and edit.get("edit_prompt"):
            return str(edit["edit_prompt"])
    return str(meta.get("salad_prompt", ""))


def last_why(meta: dict[str, Any]) -> str:
    edits = meta.get("salad_edits") or []
    return str(edits[-1].get("why", "")) if edits and isinstance(edits[-1], dict) else ""


def active_salad_action(obj: bpy.types.Object | None) -> bpy.types.Action | None:
    """The SALAD action an object is playing, if any (what the Edit panel works on)."""
    ad = getattr(obj, "animation_data", None)
    act = ad.action if ad is not None else None
    return act if is_salad_action(act) else None


# ------------------------------------------------------------------------------------------------
# The job object


class MotionJob:
    """One chain of worker requests + an apply step on the polling thread.

    ``state``: running → done | failed | cancelled. ``status`` is a one-line description for the
    panel and status bar, ``message`` the final word (what happened, what to do), ``details`` the
    worker's log tail after a crash. ``output`` is what the apply step returned (an Action, an
    Image, the check report).
    """

    def __init__(self, kind: str, label: str, client: WorkerClient, hello: WorkerJob, *, load: dict | None,
                 op: dict | None, apply: Callable[[dict], Any], describe: str = "") -> None:
        self.kind = kind
        self.label = label
        self.state = "running"
        self.stage = "hello"
        self.progress = 0.0
        self.step = self.steps = 0  # sampling step of the op, once it runs
        self.status = "Starting the model worker"
        self.message = ""
        self.details = ""
        self.output: Any = None
        self.result: dict | None = None
        self.started = time.monotonic()
        self.finished_at: float | None = None
        self._client = client
        self._load, self._op, self._apply = load, op, apply
        self._describe = describe or label
        self._current: WorkerJob = hello  # done already when the worker was running
        self._deadline = time.monotonic() + HELLO_TIMEOUT

    def __repr__(self) -> str:
        return f"MotionJob({self.kind!r}, {self.label!r}, state={self.state!r}, progress={self.progress:.2f})"

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started

    # -- driving ----------------------------------------------------------------------------------

    def poll(self) -> bool:
        """Advance as far as the worker's answers allow (never blocks); True once finished."""
        if self.finished:
            return True
        try:
            self._advance()
        except Exception as exc:  # noqa: BLE001 - a job must end in a state, never leak an exception
            traceback.print_exc()
            self._fail(f"{self.label} failed unexpectedly: {type(exc).__name__}: {exc}")
        return self.finished

    def _advance(self) -> None:
        while not self.finished:
            job = self._current
            events = job.poll()
            lo, hi = _RANGES[self.stage]
            self.progress = lo + (hi - lo) * float(job.progress)
            if self.stage == "load":
                detail = next((e.get("detail") for e in reversed(events) if e.get("detail")), None)
                if detail:
                    self.status = f"Loading the model: {detail}"
            elif self.stage == "run" and job.steps:
                self.step, self.steps = job.step, job.steps
                self.status = f"{self._describe}: step {job.step}/{job.steps}"
            if not job.done:
                if self.stage == "hello" and time.monotonic() > self._deadline:
                    self._fail(f"The model worker did not answer within {HELLO_TIMEOUT:g} s. Click 'Check' "
                               f"in {PREFS_HINT} to see what it prints.", self._client.stderr_tail(40))
                return
            if job.error is not None:
                self._worker_failed(job.error)
                return
            self._next(job.result or {})

    def _next(self, result: dict) -> None:
        if self.stage == "hello" and self._load is not None:
            self.stage, self.status = "load", "Loading the model"
            self._current = self._client.submit(self._load)
        elif self.stage in ("hello", "load") and self._op is not None:
            self.stage, self.status = "run", f"{self._describe}"
            self._current = self._client.submit(self._op)
        else:
            self.result = result
            self.stage, self.status, self.progress = "apply", "Applying", _RANGES["apply"][0]
            try:
                self.output = self._apply(result)
            except (JobError, rigs.RigError, ValueError, KeyError) as exc:
                self._fail(f"{self.label}: {exc}")
                return
            self.state, self.progress = "done", 1.0
            self.status = self.message = self.message or f"{self.label}: done in {self.elapsed:.1f} s"
            self.finished_at = time.monotonic()

    def cancel(self) -> None:
        """Stop now: the worker is asked to stop (between steps) and any late result is ignored."""
        if self.finished:
            return
        if not self._current.done:
            self._current.cancel()
        self.state = "cancelled"
        self.status = self.message = f"{self.label}: cancelled, nothing was changed."
        self.finished_at = time.monotonic()

    def wait(self, timeout: float | None = None, interval: float = 0.02) -> MotionJob:
        """Poll until finished (headless callers: tests, batch); TimeoutError leaves the job running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.label} not finished after {timeout} s ({self.status})")
            time.sleep(interval)
        return self

    # -- failures ---------------------------------------------------------------------------------

    def _fail(self, message: str, details: str = "") -> None:
        self.state = "failed"
        self.status = self.message = message
        self.details = details
        self.finished_at = time.monotonic()

    def _worker_failed(self, err: WorkerError) -> None:
        if err.code == "cancelled":
            self.state = "cancelled"
            self.status = self.message = f"{self.label}: cancelled, nothing was changed."
            self.finished_at = time.monotonic()
            return
        tail = ""
        if err.code == "worker_exited":
            tail = err.event.get("stderr") or self._late_stderr()
        self._fail(*describe_worker_error(err, self.stage, tail))

    def _late_stderr(self, wait: float = 1.0) -> str:
        """The worker's stderr when the exit was reported before it was read.

        A worker that dies at once (wrong interpreter, missing torch) can be reported by the client
        before its reader thread has drained stderr, and that last line is what tells the user why.
        """
        deadline = time.monotonic() + wait
        tail = self._client.stderr_tail(40)
        while not tail and time.monotonic() < deadline:
            time.sleep(0.02)
            tail = self._client.stderr_tail(40)
        return tail


def describe_worker_error(err: WorkerError, stage: str, tail: str = "") -> tuple[str, str]:
    """(message for people, details) for a failed worker request."""
    code, text = err.code, err.message.rstrip(".")
    if code == "worker_exited":
        rc = err.event.get("returncode")
        tail = tail or err.event.get("stderr", "")
        last = next((ln.strip() for ln in reversed(tail.splitlines()) if ln.strip()), "")
        if last and last not in text:
            text = f"{text}: {last}"
        hint = ("Check 'Worker Python' in " + PREFS_HINT + " (the 'Check' button shows the worker's log); "
                "it needs an environment with salad_model and torch installed")
        return f"The model worker stopped ({text}; exit code {rc}). {hint}.", tail
    if code == "protocol_mismatch":
        return f"{text}.", ""
    if code in ("model_error", "no_model") or stage == "load":
        return f"Cannot load the model: {text}. Pick another model in {PREFS_HINT}.", ""
    if code == "invalid_input":
        return f"{text}.", ""
    if code == "out_of_memory":
        return f"{text}.", ""
    return (f"The model worker failed ({code}): {text}. See the system console for the worker's log.",
            err.event.get("stderr", ""))


def _job(kind: str, label: str, config: WorkerConfig, op: dict | None, apply: Callable[[dict], Any],
         pool: WorkerPool | None, describe: str = "") -> MotionJob:
    model = check_model(config.model)
    pool = pool or POOL
    client = pool.get(config)
    load = {"op": "load", "model": model, "device": config.device}
    if config.threads > 0:
        load["threads"] = int(config.threads)
    return MotionJob(kind, label, client, pool.hello, load=load, op=op, apply=apply, describe=describe)


# ------------------------------------------------------------------------------------------------
# Apply steps (main thread; the only code that creates Blender data)


def _scene(name: str) -> bpy.types.Scene:
    scene = bpy.data.scenes.get(name) if name else bpy.context.scene
    if scene is None:
        raise JobError(f"The scene '{name}' was deleted while the motion was generated; nothing was changed.")
    return scene


def _remove_object_tree(obj: bpy.types.Object) -> None:
    """Remove an object we created, its children and their now unused data."""
    for child in list(obj.children):
        _remove_object_tree(child)
    data = obj.data
    bpy.data.objects.remove(obj)
    if data is not None and data.users == 0:
        if isinstance(data, bpy.types.Armature):
            bpy.data.armatures.remove(data)
        elif isinstance(data, bpy.types.Mesh):
            bpy.data.meshes.remove(data)


def _place_motion(result: dict, target: Target, *, prompt: str, meta: dict, model: str, name: str,
                  edits: list, extra: dict[str, Any]) -> bpy.types.Action:
    """Write a worker result into a new Action on the target (creating our body if asked)."""
    joints = np.asarray(result["joints"], dtype=np.float64)
    contacts = result.get("contacts") if target.pin_feet else None
    scene = _scene(target.scene)
    created = None
    if target.kind == "new":
        obj = created = new_body(target.name, joints, scene.collection)
        rig: str | dict[str, str] = "smpl22"
    else:
        obj = bpy.data.objects.get(target.armature)
        if obj is None:
            raise JobError(f"The armature '{target.armature}' was deleted or renamed while the motion was "
                           "generated; nothing was changed.")
        rig = target.rig
    try:
        action = actions.apply_motion(
            obj, joints, prompt=prompt, seed=int(meta.get("seed", 0)), model=model,
            guidance=float(meta.get("guidance", 0.0)), steps=int(meta.get("steps", 0)), edits=edits,
            bone_map=rig, scene=scene, start_frame=target.start_frame,
            contacts=None if contacts is None else np.asarray(contacts), frame_range="set")
    except BaseException:
        if created is not None:
            _remove_object_tree(created)
        raise
    action.name = actions.action_name(name)
    action["salad_scheduler"] = str(meta.get("scheduler", "ddim"))
    action["salad_model_name"] = str(meta.get("model", ""))
    action["salad_rig"] = rig if isinstance(rig, str) else json.dumps(rig)
    action["salad_pin_feet"] = bool(target.pin_feet)
    for key, value in extra.items():
        action[key] = value
    if created is not None:
        _select_only(created)
    return action


def new_body(name: str, joints: np.ndarray, collection: bpy.types.Collection) -> bpy.types.Object:
    """Our SMPL-22 body with the motion's proportions (exact FK), else with standard proportions.

    A badly trained or random model can produce joints whose median proportions make no body (feet
    pointing backwards, a mirrored pelvis); the retargeter still maps their bone directions onto a
    standard body, which is better than refusing the motion.
    """
    obj = armature.create_smpl22_armature(name, joints, collection=collection)
    try:
        rigs.check_sides(armature.rig_rest_from_object(obj), rigs.SMPL22_MAP)
    except rigs.RigError:
        _remove_object_tree(obj)
        obj = armature.create_smpl22_armature(name, None, collection=collection)
        obj["salad_standard_body"] = True
    return obj


def _select_only(obj: bpy.types.Object) -> None:
    """Make a new body the active, selected object (best effort: it may sit in a hidden layer)."""
    try:
        view_layer = bpy.context.view_layer
        for o in view_layer.objects:
            o.select_set(False)
        obj.select_set(True)
        view_layer.objects.active = obj
    except (RuntimeError, AttributeError, ReferenceError):
        pass


# ------------------------------------------------------------------------------------------------
# Starting jobs (all checks first; raise JobError before anything is spawned or created)


def start_generate(config: WorkerConfig, prompt: str, sampling: Sampling, target: Target, *,
                   pool: WorkerPool | None = None) -> MotionJob:
    """Text → a new Action on a new SMPL-22 body or on an existing armature."""
    prompt = " ".join((prompt or "").split())
    if not prompt:
        raise JobError("Type a prompt first, e.g. 'a person walks forward and waves with the right hand'.")
    sampling.check()
    if target.kind == "armature":
        name, mapping = check_rig(bpy.data.objects.get(target.armature) if target.armature else None,
                                  target.rig)
        target.rig = mapping if name == "custom" else name  # edits reuse what auto-detection found
    elif target.kind != "new":
        raise JobError(f"Unknown target '{target.kind}'.")
    target.scene = target.scene or bpy.context.scene.name
    model = check_model(config.model)

    def apply(result: dict) -> bpy.types.Action:
        meta = result.get("meta") or {}
        return _place_motion(result, target, prompt=prompt, meta=meta, model=model, name=prompt,
                             edits=[], extra={})

    op = {"op": "generate", "prompt": prompt, **sampling.fields()}
    return _job("generate", "Generate", config, op, apply, pool, describe="Sampling")


def _refuse_inversion(action: bpy.types.Action, meta: dict[str, Any]) -> None:
    """Actions made by editing real animation have no generation recipe (seed) to regenerate from."""
    if meta.get("salad_source") == "inversion":
        raise JobError(f"The action '{action.name}' was made by editing real animation, so it cannot be "
                       "regenerated from a seed: use 'Edit selected animation with text' on it instead.")


def _edit_fields(meta: dict[str, Any]) -> dict[str, Any]:
    return {"seed": int(meta["salad_seed"]), "frames": int(meta["salad_frames"]),
            "guidance": float(meta["salad_guidance"]), "steps": int(meta["salad_steps"]),
            "scheduler": str(meta.get("salad_scheduler") or "ddim")}


def _mirror_fields(mirror: str | None, method: str) -> dict[str, str]:
    if mirror not in MIRROR_SIDES:
        raise JobError(f"Mirror must be one of {', '.join(MIRROR_SIDES)}.")
    if method not in MIRROR_METHODS:
        raise JobError(f"Mirror method must be one of {', '.join(MIRROR_METHODS)}.")
    return {"mode": "mirror", "mirror": str(mirror), "mirror_method": method}


def edit_choice(text: str, noun: str, new_prompt: str | None, word: str | None, scale: float | None,
                mirror: str | None, mirror_method: str = "geometric") -> tuple[dict[str, Any], str, str, dict]:
    """Validate exactly one edit of ``text`` (the prompt or caption, called ``noun`` in messages).

    Returns the request fields, the new action's name, a label for messages and the recipe to store.
    """
    if sum(x is not None and x != "" for x in (new_prompt, word, mirror)) != 1:
        raise JobError("Choose one edit: a new prompt, a word to re-weight, or a mirror side.")
    if new_prompt is not None and new_prompt != "":
        new_prompt = " ".join(new_prompt.split())
        if not new_prompt:
            raise JobError(f"Type the new prompt (change a word or add details to the {noun}).")
        if new_prompt == text:
            raise JobError(f"The new prompt is the same as the {noun}: change a word (e.g. 'walks' → 'runs') or "
                           "add a detail.")
        return {"edit_prompt": new_prompt, "mode": "auto"}, new_prompt, "Edit", {"edit_prompt": new_prompt}
    if word:
        if word.lower() not in (w.lower() for w in split_words(text)):
            raise JobError(f"'{word}' is not a word of the {noun} '{text}'; pick one of "
                           f"{', '.join(split_words(text))}.")
        if scale is None or not P.REWEIGHT_MIN <= float(scale) <= P.REWEIGHT_MAX:
            raise JobError(f"The re-weight factor must be within {P.REWEIGHT_MIN:g} … {P.REWEIGHT_MAX:g} "
                           "(1 = unchanged, 0 = ignore the word, negative = the opposite).")
        return ({"mode": "reweight", "word": word, "scale": float(scale)}, f"{text} [{word} x{float(scale):g}]",
                "Re-weight", {"word": word, "scale": float(scale)})
    return (_mirror_fields(mirror, mirror_method), f"{text} [mirror {mirror}]", "Mirror",
            {"mirror": mirror, "method": mirror_method})


def start_edit(config: WorkerConfig, obj: bpy.types.Object | None, *, new_prompt: str | None = None,
               word: str | None = None, scale: float | None = None, mirror: str | None = None,
               mirror_method: str = "geometric", action: bpy.types.Action | None = None,
               pool: WorkerPool | None = None) -> MotionJob:
    """Edit the object's SALAD action into a new Action (the old one stays untouched).

    Exactly one of: ``new_prompt`` (word swap or refinement, the worker picks and says why),
    ``word`` + ``scale`` (re-weight), ``mirror`` ("lower", "upper", "all"; ``mirror_method`` "geometric" =
    exact, "attention" = the paper's). The model comes from the
    action's metadata (edits regenerate the same source), device and threads from ``config``.
    """
    action = action or active_salad_action(obj)
    if obj is None or action is None:
        raise JobError("Select an armature that plays a SALAD action (generate a motion first).")
    meta = action_meta(action)
    _refuse_inversion(action, meta)
    source = current_prompt(meta)
    rig_prop = meta.get("salad_rig", "auto")
    rig: str | dict[str, str] = json.loads(rig_prop) if str(rig_prop).startswith("{") else str(rig_prop)
    check_rig(obj, rig)
    fields, name, what, _ = edit_choice(source, "current prompt", new_prompt, word, scale, mirror, mirror_method)
    req: dict[str, Any] = {"op": "edit", "source_prompt": source, **_edit_fields(meta), **fields}
    model = check_model(str(meta.get("salad_model") or "demo"))
    start = int(round(action.frame_range[0]))
    target = Target(kind="armature", armature=obj.name, rig=rig, scene=bpy.context.scene.name,
                    pin_feet=bool(meta.get("salad_pin_feet", True)), start_frame=start)
    parent_edits = list(meta["salad_edits"])
    parent_name = action.name

    def apply(result: dict) -> bpy.types.Action:
        wmeta = result.get("meta") or {}
        edits = parent_edits + list(wmeta.get("edits") or [])
        return _place_motion(result, target, prompt=source, meta=wmeta, model=model, name=name,
                             edits=edits, extra={"salad_parent": parent_name})

    cfg = WorkerConfig(config.python, model, config.device, config.threads, config.env)
    return _job("edit", what, cfg, req, apply, pool, describe=f"{what}: sampling")


# ------------------------------------------------------------------------------------------------
# Editing real (non-SALAD) animation: sample the armature, invert and edit it in the worker

HUMAN_HIP_HEIGHT = (0.6, 1.3)  # metres: a rest hip height in this range is taken as human-sized
TARGET_HIP_HEIGHT = 0.9  # metres: what other rigs are scaled to before the model sees them
MIN_REAL_FRAMES = 20  # model frames (1 s at 20 fps)


@dataclass
class SampledMotion:
    """An armature's animation as the model sees it.

    ``joints`` [T, 22, 3]: model space (metres, Y up), 20 fps. ``to_metres``: world units × this =
    the metres sent (object scale is in the world positions; a non-human-sized rig is also rescaled
    so its rest hip height is ~0.9 m). ``world`` [F, 22, 3]: the raw world-space samples (Blender
    space, one per scene frame from ``frame_start``), ``fps`` the scene's fps.
    """

    joints: np.ndarray
    to_metres: float
    world: np.ndarray
    frame_start: int
    fps: float


def rig_to_metres(obj: bpy.types.Object, mapping: dict[str, str]) -> float:
    """World units → metres for the model: 1 for a human-sized rig, else what makes hips 0.9 m high."""
    heads = armature.rig_rest_from_object(obj).joint_heads_world(mapping)
    zs = np.array([p[2] for p in heads.values()])
    hip = float(heads["pelvis"][2] - zs.min())
    if hip <= 1e-9:
        raise JobError(f"The armature '{obj.name}' has no height at rest (its pelvis is at its feet); "
                       "cannot measure it.")
    lo, hi = HUMAN_HIP_HEIGHT
    return 1.0 if lo <= hip <= hi else TARGET_HIP_HEIGHT / hip


def sample_world_joints(obj: bpy.types.Object, mapping: dict[str, str], frames: range,
                        scene: bpy.types.Scene | None = None) -> np.ndarray:
    """World-space heads [F, 22, 3] (Blender space) of the mapped bones at each frame (evaluated pose).

    Unmapped joints are filled from their nearest mapped ancestor. The scene's current frame is
    restored afterwards.
    """
    scene = scene or bpy.context.scene
    names = [mapping.get(n) for n in smpl22.JOINT_NAMES]
    src = list(range(smpl22.NUM_JOINTS))
    for j in range(smpl22.NUM_JOINTS):
        k = j
        while names[k] is None and smpl22.PARENTS[k] >= 0:
            k = smpl22.PARENTS[k]
        src[j] = k
    bones = [names[k] for k in src]
    if any(b is None for b in bones):
        raise JobError("The bone map must map 'pelvis'.")
    out = np.empty((len(frames), smpl22.NUM_JOINTS, 3))
    old_frame, old_sub = scene.frame_current, scene.frame_subframe
    try:
        for i, f in enumerate(frames):
            scene.frame_set(int(f))
            ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
            mw = np.array(ev.matrix_world)
            pb = ev.pose.bones
            heads = np.array([tuple(pb[b].head) for b in bones])
            out[i] = heads @ mw[:3, :3].T + mw[:3, 3]
    finally:
        scene.frame_set(old_frame, subframe=old_sub)
    return out


def resample_positions(points: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear resampling of [F, ...] samples from ``fps_in`` to ``fps_out`` (same start, no overshoot)."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if n < 2 or abs(fps_in - fps_out) < 1e-9:
        return points.copy()
    duration = (n - 1) / fps_in
    m = int(np.floor(duration * fps_out + 1e-6)) + 1
    t = np.arange(m) / fps_out * fps_in  # positions in input frames
    i0 = np.clip(np.floor(t).astype(int), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    w = (t - i0).reshape((-1,) + (1,) * (points.ndim - 1))
    return points[i0] * (1.0 - w) + points[i1] * w


def sample_motion(obj: bpy.types.Object, mapping: dict[str, str], frame_start: int, frame_end: int,
                  scene: bpy.types.Scene | None = None) -> SampledMotion:
    """Sample an armature's animation over [frame_start, frame_end] into model space at 20 fps."""
    scene = scene or bpy.context.scene
    world = sample_world_joints(obj, mapping, range(int(frame_start), int(frame_end) + 1), scene)
    to_m = rig_to_metres(obj, mapping)
    fps = actions.scene_fps(scene)
    joints = smpl22.blender_to_model(resample_positions(world, fps, smpl22.FPS) * to_m)
    return SampledMotion(joints.astype(np.float32), to_m, world, int(frame_start), fps)


def facing_heading(joints_model: np.ndarray) -> float:
    """Heading (radians about +Y, 0 = facing +Z) of one model-space pose [22, 3], from hips and shoulders."""
    j = np.asarray(joints_model, dtype=np.float64)
    i = smpl22.INDEX
    across = (j[i["right_hip"]] - j[i["left_hip"]]) + (j[i["right_shoulder"]] - j[i["left_shoulder"]])
    fwd = np.cross([0.0, 1.0, 0.0], across)
    return float(np.arctan2(fwd[0], fwd[2]))


def real_placement(sampled: SampledMotion, wmeta: dict[str, Any] | None = None) -> rt.Placement:
    """Where a canonical worker result (root at the origin, floor at 0, facing +Z) goes in the world.

    The input's first-frame root XZ and heading come from the worker's ``meta.placement`` when given
    (else from the sampled joints), the floor from the sampled clip's lowest joint; the scale undoes
    ``to_metres``. A model heading about +Y is the same angle as a Blender heading about +Z.
    """
    j = np.asarray(sampled.joints, dtype=np.float64)
    pl = (wmeta or {}).get("placement") or {}
    root_xz = pl.get("root_xz") or [float(j[0, 0, 0]), float(j[0, 0, 2])]
    heading = float(pl["heading"]) if "heading" in pl else facing_heading(j[0])
    ground = np.array([float(root_xz[0]), float(j[..., 1].min()), float(root_xz[1])])
    origin = smpl22.model_to_blender(ground) / sampled.to_metres
    return rt.Placement(scale=1.0 / sampled.to_metres, heading=heading, origin=origin)


def start_edit_real(config: WorkerConfig, obj: bpy.types.Object | None, caption: str, *,
                    new_prompt: str | None = None, word: str | None = None, scale: float | None = None,
                    mirror: str | None = None, mirror_method: str = "geometric",
                    rig: str | dict[str, str] = "auto",
                    action: bpy.types.Action | None = None, frame_range: tuple[int, int] | None = None,
                    steps: int | None = None, null_text_iters: int | None = None, guidance: float | None = None,
                    pin_feet: bool = True, pool: WorkerPool | None = None) -> MotionJob:
    """Edit any animation of an armature (mocap, keyframed, a SALAD action) with text: a new Action.

    The action (default: the active one) is sampled over its frame range (or ``frame_range``) into
    SMPL-22 joints, sent with ``caption`` (what the animation shows) to the worker's ``edit_real``
    with exactly one edit (``new_prompt``, ``word`` + ``scale`` or ``mirror``), and the result is
    written as a new Action placed where the original starts. The original action is not modified.
    """
    if obj is None or obj.type != "ARMATURE":
        raise JobError("Select an armature with an animation to edit.")
    ad = obj.animation_data
    action = action or (ad.action if ad is not None else None)
    if action is None:
        raise JobError(f"The armature '{obj.name}' has no animation (action) to edit.")
    if ad is not None and ad.use_tweak_mode:
        raise JobError(f"'{obj.name}' is in NLA tweak mode; leave it first.")
    if ad is None or ad.action != action:
        raise JobError(f"The action '{action.name}' is not the one '{obj.name}' plays; assign it first.")
    caption = " ".join((caption or "").split())
    if not caption:
        raise JobError("Describe the animation first (e.g. 'a person walks'): the model needs a caption of "
                       "what the original motion shows.")
    rig_name, mapping = check_rig(obj, rig)
    fields, name, what, edit = edit_choice(caption, "caption", new_prompt, word, scale, mirror, mirror_method)
    req: dict[str, Any] = {"op": "edit_real", "prompt": caption, **fields}
    for key, value in (("steps", steps), ("null_text_iters", null_text_iters)):
        if value is not None:
            if int(value) < (1 if key == "steps" else 0):
                raise JobError(f"{key.replace('_', ' ').capitalize()} must be at least {1 if key == 'steps' else 0}.")
            req[key] = int(value)
    if guidance is not None:
        req["guidance"] = float(guidance)
    scene = bpy.context.scene
    if frame_range is None:
        lo, hi = action.frame_range
        frame_range = (int(np.floor(lo + 1e-6)), int(np.ceil(hi - 1e-6)))
    start, end = int(frame_range[0]), int(frame_range[1])
    if end <= start:
        raise JobError(f"The action '{action.name}' has a single frame; there is no motion to edit.")
    sampled = sample_motion(obj, mapping, start, end, scene)
    if len(sampled.joints) < MIN_REAL_FRAMES:
        raise JobError(f"The animation is too short ({len(sampled.joints)} frames at 20 fps); the model needs "
                       f"at least {MIN_REAL_FRAMES / smpl22.FPS:g} s.")
    if not np.all(np.isfinite(sampled.joints)):
        raise JobError(f"The animation of '{obj.name}' has invalid (NaN) bone positions.")
    req["joints"] = sampled.joints
    model = check_model(config.model)
    obj_name, scene_name, source_name = obj.name, scene.name, action.name
    bone_map: str | dict[str, str] = mapping if rig_name == "custom" else rig_name

    def apply(result: dict) -> bpy.types.Action:
        target = bpy.data.objects.get(obj_name)
        if target is None:
            raise JobError(f"The armature '{obj_name}' was deleted or renamed during the edit; nothing was changed.")
        sc = _scene(scene_name)
        wmeta = result.get("meta") or {}
        joints = np.asarray(result["joints"], dtype=np.float64)
        contacts = result.get("contacts") if pin_feet else None
        edits = [{"op": "edit_real", **edit, **{k: wmeta[k] for k in ("mode", "why", "windows") if k in wmeta}}]
        new = actions.apply_motion(
            target, joints, prompt=caption, seed=0, model=model, guidance=float(wmeta.get("guidance", 0.0)),
            steps=int(wmeta.get("steps", req.get("steps", 0))), edits=edits, bone_map=bone_map, scene=sc,
            start_frame=start, contacts=None if contacts is None else np.asarray(contacts), frame_range="set",
            placement=real_placement(sampled, wmeta))
        new.name = actions.action_name(name)
        new["salad_source_action"] = source_name
        new["salad_source"] = "inversion"
        new["salad_rig"] = bone_map if isinstance(bone_map, str) else json.dumps(bone_map)
        new["salad_pin_feet"] = bool(pin_feet)
        new["salad_to_metres"] = float(sampled.to_metres)
        return new

    return _job("edit_real", f"{what} (real motion)", config, req, apply, pool,
                describe=f"{what}: inverting and editing")


def start_attention(config: WorkerConfig, *, action: bpy.types.Action | None = None, prompt: str = "",
                    sampling: Sampling | None = None, normalize: str = "global",
                    image_name: str = heatmap.IMAGE_NAME, pool: WorkerPool | None = None) -> MotionJob:
    """Cross-attention heat map of an action's generation (or of a prompt) → image "SALAD attention"."""
    if action is not None:
        meta = action_meta(action)
        _refuse_inversion(action, meta)
        prompt = current_prompt(meta)
        fields = _edit_fields(meta)
        model = check_model(str(meta.get("salad_model") or "demo"))
    else:
        prompt = " ".join((prompt or "").split())
        if not prompt:
            raise JobError("Type a prompt first.")
        sampling = sampling or Sampling()
        sampling.check()
        fields = sampling.fields()
        model = check_model(config.model)

    def apply(result: dict) -> bpy.types.Image:
        rgba, words = heatmap.heatmap_pixels(prompt, list(result["tokens"]), np.asarray(result["maps"]),
                                             normalize=normalize)
        img = heatmap.to_blender_image(rgba, image_name)
        img["salad_words"] = json.dumps(words)
        img["salad_prompt"] = prompt
        return img

    cfg = WorkerConfig(config.python, model, config.device, config.threads, config.env)
    op = {"op": "attention", "prompt": prompt, **fields}
    return _job("attention", "Attention map", cfg, op, apply, pool, describe="Recording attention")


def start_check(config: WorkerConfig, *, pool: WorkerPool | None = None) -> MotionJob:
    """Start the worker, load the model and report versions and device (the preferences' Check)."""
    pool = pool or POOL

    def apply(result: dict) -> dict:
        hello = dict(pool.client.info or {}) if pool.client is not None else {}
        report = {"hello": hello, "model": result}
        job.message = check_summary(report)
        return report

    job = _job("check", "Check", config, {"op": "model_info"}, apply, pool, describe="Reading model info")
    return job


def check_summary(report: dict) -> str:
    h, m = report.get("hello") or {}, report.get("model") or {}
    te = m.get("text_encoder") or {}
    return (f"Worker OK: Python {h.get('python')}, salad_model {h.get('salad_model')}, torch {h.get('torch')}"
            f" | model '{m.get('name')}' on {m.get('device')} ({m.get('threads')} threads), "
            f"text encoder {te.get('name')}, {m.get('min_frames')}-{m.get('max_frames')} frames "
            f"at {m.get('fps')} fps")


def shutdown() -> None:
    """End the session's worker (add-on unregister, Blender exit)."""
    POOL.close()
