"""salad_blender.operators and the UI around them: registration, operators (driven with
``blocking=True``: headless Blender runs no timers), and the
extension zip built by tools/build_extension.py installed into a temporary user repository."""

import importlib
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from needs import require_module

bpy = require_module("bpy")

from blender_state import world_heads  # noqa: E402
from fake_ui import FakeLayout  # noqa: E402

import salad_blender  # noqa: E402
from salad_blender import jobs  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OPERATORS = ("generate", "edit_prompt", "reweight", "mirror", "attention", "check_worker", "stop_worker",
             "cancel", "randomize_seed", "copy_prompt", "show_attention", "setup_env")
PANELS = ("SALAD_PT_generate", "SALAD_PT_edit", "SALAD_PT_attention")


def op_exists(name: str) -> bool:
    try:
        getattr(bpy.ops.salad, name).get_rna_type()
    except KeyError:
        return False
    return True


@pytest.fixture(autouse=True)
def _no_pref_saving():
    bpy.context.preferences.use_preferences_save = False


@pytest.fixture
def addon(scene, tiny_model_dir):
    """The checkout enabled as an add-on (so it has preferences), pointed at the tiny model."""
    import addon_utils

    addon_utils.enable("salad_blender", default_set=True)
    prefs = bpy.context.preferences.addons["salad_blender"].preferences
    prefs.python_path = sys.executable
    prefs.model_source = "FOLDER"
    prefs.model_folder = str(tiny_model_dir)
    prefs.device = "cpu"
    prefs.threads = 1
    s = bpy.context.scene.salad
    s.seconds, s.steps, s.seed = 4.0, 10, 4
    yield prefs
    addon_utils.disable("salad_blender", default_set=True)


def test_operators_check_generate_edit_and_errors(addon):
    """One add-on session (unregister stops the worker, so one test keeps one worker)."""
    from salad_blender import operators, runner

    assert bpy.ops.salad.check_worker(blocking=True) == {"FINISHED"}
    assert "Worker OK" in operators.RUNNER.check.message and "on cpu" in operators.RUNNER.check.message
    scene = bpy.context.scene
    s = scene.salad
    s.prompt = "a person walks forward"
    s.pin_feet = False
    # the UI path: the operator only starts the job and registers the timer; headless Blender never
    # fires timers, so call the timer function the way Blender would, until it unregisters itself
    assert bpy.ops.salad.generate() == {"FINISHED"}
    assert bpy.app.timers.is_registered(runner._tick) and operators.RUNNER.busy()
    assert not bpy.ops.salad.generate.poll()  # one motion job at a time
    while (interval := runner._tick()) is not None:  # returns None once the job ended (done or failed)
        assert interval == jobs.POLL_INTERVAL
        time.sleep(0.02)
    bpy.app.timers.unregister(runner._tick)
    assert operators.RUNNER.motion.state == "done", operators.RUNNER.motion.message
    arm = bpy.data.objects["SALAD Body"]
    first = arm.animation_data.action
    assert first["salad_prompt"] == "a person walks forward" and first["salad_steps"] == 10

    bpy.context.view_layer.objects.active = arm
    assert bpy.ops.salad.copy_prompt() == {"FINISHED"} and s.edit_prompt == "a person walks forward"
    s.edit_prompt = "a person runs forward"
    assert bpy.ops.salad.edit_prompt(blocking=True) == {"FINISHED"}
    from salad_blender.settings import _word_items

    assert [i[0] for i in _word_items(s, bpy.context)] == ["a", "person", "runs", "forward"]
    s.reweight_word = "runs"  # items: words (not sub-word tokens) of the active action's current prompt
    s.reweight_scale = -1.0
    assert bpy.ops.salad.reweight(blocking=True) == {"FINISHED"}
    assert bpy.ops.salad.mirror(side="lower", blocking=True) == {"FINISHED"}
    chain = jobs.action_meta(arm.animation_data.action)["salad_edits"]
    assert [e["mode"] for e in chain] == ["word_swap", "reweight", "mirror"]
    assert bpy.ops.salad.attention(blocking=True) == {"FINISHED"}
    assert "SALAD attention" in bpy.data.images

    seed = s.seed
    bpy.ops.salad.randomize_seed()
    assert s.seed != seed

    n_actions = len(bpy.data.actions)
    s.prompt = ""
    with pytest.raises(RuntimeError, match="Type a prompt"):
        bpy.ops.salad.generate(blocking=True)
    s.prompt = "a person jumps"
    s.target = "SELECTED"
    bpy.context.view_layer.objects.active = None
    with pytest.raises(RuntimeError, match="Select an armature"):
        bpy.ops.salad.generate(blocking=True)
    s.target = "NEW"
    addon.python_path = "/nonexistent/python"
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.salad.generate(blocking=True)
    assert len(bpy.data.actions) == n_actions


def test_setup_operator_refuses_offline(addon, tmp_path, monkeypatch):
    from salad_blender import setup_env

    assert bpy.app.online_access is False  # the bpy module starts offline
    venv = tmp_path / "venv"
    monkeypatch.setattr(setup_env, "managed_venv_dir", lambda package, create=False: str(venv))
    with pytest.raises(RuntimeError, match="Allow Online Access"):
        bpy.ops.salad.setup_env()
    assert not venv.exists()


def test_extension_zip_installs_and_runs(scene, tmp_path, tiny_model_dir):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        build_extension = importlib.import_module("build_extension")
    finally:
        sys.path.remove(str(REPO / "tools"))
    zpath = build_extension.build(tmp_path / "dist")
    assert zpath.name == "salad_motion-0.1.0.zip"
    names = build_extension.check_zip(zpath)
    assert "bench_retarget.py" not in names and "blender_manifest.toml" in names
    assert "model/salad_blender-0.1.0-py3-none-any.whl" in names  # the model package, for the worker's venv

    repos = bpy.context.preferences.extensions.repos
    repo = repos.new(name="SALAD test", module="salad_test", custom_directory=str(tmp_path / "repo"),
                     source="USER")
    mod = "bl_ext.salad_test.salad_motion"
    try:
        res = bpy.ops.extensions.package_install_files(filepath=str(zpath), repo="salad_test",
                                                       enable_on_install=True)
        assert res == {"FINISHED"}
        assert mod in bpy.context.preferences.addons and op_exists("check_worker")
        assert bpy.utils.extension_path_user(mod, path="venv").endswith("salad_motion/venv")
        prefs = bpy.context.preferences.addons[mod].preferences
        prefs.python_path = sys.executable
        prefs.model_source = "FOLDER"
        prefs.model_folder = str(tiny_model_dir)
        prefs.device, prefs.threads = "cpu", 1
        assert bpy.ops.salad.check_worker(blocking=True) == {"FINISHED"}
        installed = sys.modules[mod + ".operators"]
        assert installed is not sys.modules.get("salad_blender.operators")
        # "Set up model environment" installs the wheel the extension carries (no unpublished name, no checkout)
        wheel = Path(sys.modules[mod + ".setup_env"].default_package())
        assert wheel.name == "salad_blender-0.1.0-py3-none-any.whl" and wheel.is_file()
        assert prefs.package_spec == str(wheel)
        assert "Worker OK" in installed.RUNNER.check.message
        scene.salad.seconds, scene.salad.steps = 2.0, 2
        assert bpy.ops.salad.generate(blocking=True) == {"FINISHED"}
        assert bpy.data.objects["SALAD Body"].animation_data.action["salad_steps"] == 2
    finally:
        bpy.ops.extensions.package_uninstall(repo_index=list(repos).index(repo), pkg_id="salad_motion")
        repos.remove(repo)
    assert mod not in bpy.context.preferences.addons
    assert not op_exists("generate") and not hasattr(bpy.types.Scene, "salad")


class PrefsProxy:
    def __init__(self, prefs, layout):
        self._prefs, self.layout = prefs, layout

    def __getattr__(self, name):
        return getattr(self._prefs, name)


class FakeJob:
    finished, progress, status, state, message, details = False, 0.4, "Sampling: step 4/10", "running", "", ""
    label, kind = "Generate", "generate"


def test_panels_and_preferences_draw(addon, walk, monkeypatch):
    """Draw code runs headless against a recording layout, in the states users see."""
    from types import SimpleNamespace

    from salad_blender import actions, armature, heatmap, operators, panels, preferences

    def draw(panel_cls):
        calls = []
        panel_cls.draw(SimpleNamespace(layout=FakeLayout(calls)), bpy.context)
        return calls

    def draw_prefs():
        calls = []
        preferences.SALAD_AddonPreferences.draw(PrefsProxy(addon, FakeLayout(calls)), bpy.context)
        return calls

    s = bpy.context.scene.salad
    idle = draw(panels.SALAD_PT_generate)
    assert ("op", "salad.generate") in idle and ("prop", "prompt") in idle
    s.target, s.rig_preset = "SELECTED", "CUSTOM"
    assert ("prop", "bone_map_text") in draw(panels.SALAD_PT_generate)
    assert ("label", "Select an armature that plays an action") in draw(panels.SALAD_PT_edit)

    arm = armature.create_smpl22_armature(joints=walk, with_mesh=False)
    act = actions.apply_motion(arm, walk, prompt="a person walks", seed=1,
                               edits=[{"mode": "word_swap", "edit_prompt": "a person runs", "why": "1 word"}])
    bpy.context.view_layer.objects.active = arm
    edit = draw(panels.SALAD_PT_edit) + draw(panels.SALAD_PT_edit_prompt) + draw(panels.SALAD_PT_edit_reweight)
    edit += draw(panels.SALAD_PT_edit_mirror)
    assert ("label", act.name) in edit and ("label", "Why: 1 word") in edit
    assert {("op", "salad.edit_prompt"), ("op", "salad.reweight"), ("op", "salad.mirror")} <= set(edit)
    heatmap.to_blender_image(np.ones((4, 4, 4), dtype=np.float32))
    assert ("op", "salad.show_attention") in draw(panels.SALAD_PT_attention)

    monkeypatch.setattr(operators.RUNNER, "motion", FakeJob())
    monkeypatch.setattr(operators.RUNNER, "check", FakeJob())
    running = draw(panels.SALAD_PT_generate)
    assert any(c[0] == "progress" for c in running) and ("label", "Sampling: step 4/10") in running
    assert ("op", "salad.cancel") in running
    status = []
    panels.draw_status(SimpleNamespace(layout=FakeLayout(status)), bpy.context)
    assert any(c[0] == "progress" for c in status) and ("op", "salad.cancel") in status
    assert ("op", "salad.cancel") in draw_prefs()
    failed = FakeJob()
    failed.finished, failed.state, failed.message = True, "failed", "The model worker stopped (exit code 1)."
    monkeypatch.setattr(operators.RUNNER, "motion", failed)
    assert any("worker stopped" in c[1] for c in draw(panels.SALAD_PT_generate) if c[0] == "label")
    monkeypatch.setattr(operators.RUNNER, "check", None)
    prefs_calls = draw_prefs()
    assert {("op", "salad.check_worker"), ("op", "salad.setup_env"), ("prop", "python_path")} <= set(prefs_calls)
    # a worker Python is set: no online-access warning (test_ui_scene.py checks it without one)
    assert not any("Online access is off" in c[1] for c in prefs_calls if c[0] == "label")


def test_register_unregister_twice(scene):
    from salad_blender import panels

    for _ in range(2):
        salad_blender.register()
        try:
            assert all(op_exists(o) for o in OPERATORS)
            assert all(hasattr(bpy.types, p) for p in PANELS)
            assert bpy.types.SALAD_PT_generate.bl_category == "SALAD"
            assert hasattr(bpy.types.Scene, "salad") and bpy.context.scene.salad.seconds == 4.0
            assert panels.draw_status in bpy.types.STATUSBAR_HT_header._dyn_ui_initialize()
        finally:
            salad_blender.unregister()
        assert not any(op_exists(o) for o in OPERATORS)
        assert not any(hasattr(bpy.types, p) for p in PANELS)
        assert not hasattr(bpy.types.Scene, "salad")
        assert panels.draw_status not in bpy.types.STATUSBAR_HT_header._dyn_ui_initialize()


def test_mirror_operator_mirrors_only_the_chosen_side(addon):
    """Each side button's effect on the pose (issue 20: an operator ignoring ``side`` passed every test).

    Legs (``lower``) swap while the trunk and arms keep their exact positions; arms (``upper``) swap while the
    trunk and legs stay; ``all`` mirrors the whole body, trajectory included. Positions are compared in world
    space on a few frames (1e-4 m: float32 features through FK and retargeting).
    """
    from salad_blender import smpl22
    from salad_blender.retarget import kabsch

    s = bpy.context.scene.salad
    s.prompt, s.pin_feet, s.mirror_method = "a person walks forward", False, "geometric"
    assert bpy.ops.salad.generate(blocking=True) == {"FINISHED"}
    arm = bpy.data.objects["SALAD Body"]
    bpy.context.view_layer.objects.active = arm
    source = arm.animation_data.action
    names = smpl22.JOINT_NAMES
    legs = [j for j, n in enumerate(names) if n.startswith(("left_", "right_"))
            and n.split("_", 1)[1] in ("hip", "knee", "ankle", "foot")]
    arms = [j for j, n in enumerate(names) if n.startswith(("left_", "right_")) and j not in legs]
    trunk = [j for j in range(len(names)) if j not in legs and j not in arms]
    frames = (1, 20, 40, 70)

    def pose(action) -> np.ndarray:  # noqa: ANN001 - a bpy Action
        arm.animation_data.action = action
        return np.stack([world_heads(arm, names, f) for f in frames])

    before = pose(source)

    def moved(p: np.ndarray, joints: list[int]) -> float:
        return float(np.abs(p[:, joints] - before[:, joints]).max())

    result = {}
    for side in ("lower", "upper", "all"):
        arm.animation_data.action = source
        assert bpy.ops.salad.mirror(side=side, blocking=True) == {"FINISHED"}
        assert arm.animation_data.action != source
        result[side] = pose(arm.animation_data.action)
        assert jobs.action_meta(arm.animation_data.action)["salad_edits"][-1]["which"] == side
    def rigid_residual(p: np.ndarray, joints: list[int]) -> float:
        """How far ``joints`` are from a rigid motion of their old positions (per frame, best fit)."""
        a, b = before[:, joints], p[:, joints]
        ca, cb = a.mean(1, keepdims=True), b.mean(1, keepdims=True)
        rot = kabsch(a - ca, b - cb)
        return float(np.abs(np.einsum("fij,fkj->fki", rot, a - ca) + cb - b).max())

    tol = 1e-4
    upper_body = [j for j in trunk if j != 0] + arms
    # legs: they swap; the pelvis stays; the upper body only tilts with the pelvis (the hips of a random
    # model are not symmetric, so the pelvis orientation changes) but keeps its shape
    assert moved(result["lower"], legs) > 0.1 and moved(result["lower"], [0]) < tol
    assert rigid_residual(result["lower"], upper_body) < 5e-3  # 1.3 mm seen; a swapped arm is > 0.1 m
    # arms: they swap, and nothing below the neck moves
    below_neck = [j for j in trunk if j < smpl22.INDEX["neck"]] + legs
    assert moved(result["upper"], arms) > 0.1 and moved(result["upper"], below_neck) < tol
    assert moved(result["all"], trunk) > 0.01  # the trajectory and the spine mirror too
