"""Add-on preferences: where the model worker runs (interpreter, model, device, threads) and its set-up.

Why the worker settings live here and not in the scene: they describe the user's machine, not the
animation, so they must not travel inside .blend files. Without the preferences (the package
registered by hand in a development session), :func:`worker_config` falls back to environment
variables (``SALAD_WORKER_PYTHON``, ``SALAD_MODEL``, ``SALAD_DEVICE``) and to this interpreter if
it can import salad_model.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import textwrap

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from . import setup_env
from .inputs import PREFS_HINT, JobError
from .runner import RUNNER, draw_progress
from .worker_pool import WorkerConfig

ADDON_ID = __package__  # "salad_blender" in a checkout, "bl_ext.<repo>.salad_motion" as an extension

DEVICES = [
    ("auto", "Auto", "CUDA if available, then Apple MPS, else CPU"),
    ("cpu", "CPU", "Always the CPU"),
    ("cuda", "CUDA", "NVIDIA GPU (the worker environment needs a CUDA build of torch)"),
    ("mps", "Apple MPS", "Apple-silicon GPU"),
]


class SALAD_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: StringProperty(
        name="Worker Python", subtype="FILE_PATH",
        description="Python interpreter of an environment with salad_model and torch (empty: the "
                    "environment made by 'Set up model environment')")
    model_source: EnumProperty(
        name="Model", default="DEMO",
        items=[("DEMO", "Demo model", "The small demo model that ships with the worker package"),
               ("FOLDER", "Model folder", "An official SALAD checkpoint folder or a model in our format")])
    model_folder: StringProperty(name="Model folder", subtype="DIR_PATH",
                                 description="Official checkpoint folder (with opt.txt) or our model folder")
    device: EnumProperty(name="Device", items=DEVICES, default="auto")
    threads: IntProperty(name="CPU threads", default=0, min=0, max=256,
                         description="Torch CPU threads in the worker (0: number of physical cores)")
    package_spec: StringProperty(
        name="Model package", default=setup_env.default_package(),
        description="What pip installs into the environment: a requirement, a wheel, a folder or a git URL")
    torch_index: EnumProperty(
        name="Torch build", default="cpu",
        items=[("cpu", "CPU only (smaller)", "CPU wheels from download.pytorch.org (~200 MB)"),
               ("default", "Default (PyPI)", "PyPI's torch: CUDA-enabled on Linux and Windows (~2.5 GB)")])

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        col = layout.column()
        col.prop(self, "python_path")
        if not self.python_path:
            managed = setup_env.managed_python(ADDON_ID)
            col.label(text=f"Using: {managed}" if managed else "No environment yet: set one up below",
                      icon="INFO")
        col.prop(self, "model_source", expand=True)
        if self.model_source == "FOLDER":
            col.prop(self, "model_folder")
        row = col.row()
        row.prop(self, "device")
        row.prop(self, "threads")

        box = layout.box()
        row = box.row()
        runner = RUNNER
        check = runner.check
        if check is not None and not check.finished:
            draw_progress(row, check.progress, check.status)
            row.operator("salad.cancel", text="", icon="X").which = "check"
        else:
            row.operator("salad.check_worker", icon="CHECKMARK")
            row.operator("salad.stop_worker", icon="PAUSE")
        if check is not None and check.finished:
            for i, line in enumerate(textwrap.wrap(check.message or "", 110)):
                box.label(text=line, icon=("ERROR" if check.state == "failed" else "INFO") if i == 0 else "NONE")
            for line in (check.details or "").splitlines()[-6:]:
                box.label(text=line[:140])

        box = layout.box()
        box.label(text="Model environment (downloads torch and the model package with pip)")
        row = box.row()
        row.prop(self, "package_spec")
        row.prop(self, "torch_index", text="")
        setup = runner.setup
        row = box.row()
        if setup is not None and not setup.finished:
            draw_progress(row, setup.progress, setup.status)
            row.operator("salad.cancel", text="", icon="X").which = "setup"
        else:
            row.operator("salad.setup_env", icon="IMPORT")
        if not bpy.app.online_access:
            box.label(text="Online access is off: enable it in Preferences > System > Network", icon="ERROR")
        if setup is not None and setup.finished:
            box.label(text=setup.message[:200], icon="ERROR" if setup.state == "failed" else "INFO")
            if setup.state == "failed":
                for line in list(setup.log)[-5:]:
                    box.label(text=line[:140])
        box.label(text=f"Folder: {setup_env.managed_venv_dir(ADDON_ID)}")


def get_prefs(context: bpy.types.Context | None = None) -> SALAD_AddonPreferences | None:
    """The add-on's preferences, or None when the package was registered without the add-on system."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None


def default_python() -> str:
    """Interpreter when none is configured: $SALAD_WORKER_PYTHON, the managed venv, or this Python
    if it can import salad_model (a development environment, ``python tools/batch.py``)."""
    env = os.environ.get("SALAD_WORKER_PYTHON", "")
    if env:
        return env
    managed = setup_env.managed_python(ADDON_ID)
    if managed:
        return managed
    if importlib.util.find_spec("salad_model") is not None and "python" in os.path.basename(sys.executable):
        return sys.executable
    return ""


def worker_config(context: bpy.types.Context | None = None) -> WorkerConfig:
    """Worker settings from the preferences (or the environment variables described above)."""
    prefs = get_prefs(context)
    if prefs is None:
        return WorkerConfig(python=default_python(), model=os.environ.get("SALAD_MODEL", "demo"),
                                 device=os.environ.get("SALAD_DEVICE", "auto"))
    if prefs.model_source == "FOLDER":
        if not prefs.model_folder.strip():
            raise JobError(f"Pick the model folder in {PREFS_HINT} (or choose the demo model).")
        model = bpy.path.abspath(prefs.model_folder)
    else:
        model = "demo"
    return WorkerConfig(python=bpy.path.abspath(prefs.python_path) if prefs.python_path
                             else default_python(), model=model, device=prefs.device, threads=prefs.threads)


classes = (SALAD_AddonPreferences,)
