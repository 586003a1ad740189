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

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from . import official_model, setup_env, ui_state
from .inputs import PREFS_HINT, JobError, check_model, resolve_python
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
                    "environment made by 'Set Up Model Environment')")
    model_source: EnumProperty(
        name="Model", default="DEMO",
        items=[("DEMO", "Demo Model", "The small demo model that ships with the worker package"),
               ("OFFICIAL", "Official Model", "The authors' model trained on HumanML3D or KIT-ML (Get Official "
                "Model downloads it)"),
               ("FOLDER", "Model Folder", "An official SALAD checkpoint folder or a model in our format")])
    official_dataset: EnumProperty(
        name="Dataset", default="t2m",
        items=[("t2m", "HumanML3D", "The general-purpose model (HumanML3D, 20 fps)"),
               ("kit", "KIT-ML", "The KIT-ML model (12.5 fps)")])
    model_folder: StringProperty(name="Model Folder", subtype="DIR_PATH",
                                 description="Official checkpoint folder (with opt.txt) or our model folder")
    device: EnumProperty(name="Device", items=DEVICES, default="auto")
    threads: IntProperty(name="CPU Threads", default=0, min=0, max=256,
                         description="Torch CPU threads in the worker (0: number of physical cores)")
    package_spec: StringProperty(
        name="Model Package", default=setup_env.default_package(),
        description="What pip installs into the environment: a requirement, a wheel, a folder or a git URL")
    torch_index: EnumProperty(
        name="Torch Build", default="cpu",
        items=[("cpu", "CPU Only (Smaller)", "CPU wheels from download.pytorch.org (environment: "
                f"{setup_env.DOWNLOAD_SIZES['cpu']})"),
               ("default", "Default (PyPI)", "PyPI's torch: CUDA-enabled on Linux and Windows (environment: "
                f"{setup_env.DOWNLOAD_SIZES['default']})")])

    show_advanced: BoolProperty(name="Advanced", default=False,
                                description="What pip installs into the model environment")

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        width = prefs_width(context)
        managed = setup_env.managed_python(ADDON_ID)
        configured = bool(self.python_path) or bool(default_python())

        # 1. the environment: what a new user needs first
        box = layout.box()
        box.label(text="Model Environment", icon="CONSOLE")
        setup = RUNNER.setup
        if setup is not None and not setup.finished:
            draw_progress(box, setup.progress, setup.status, cancel="setup", width=width)
        else:
            row = box.row(align=True)  # its own row: beside two more buttons its label was cut
            row.scale_y = 1.0 if configured else 1.4
            row.operator("salad.setup_env", icon="IMPORT")
            row = box.row(align=True)
            row.operator("salad.open_env_folder", icon="FILE_FOLDER")
            row.operator("salad.remove_env", icon="TRASH")
        if not bpy.app.online_access and not configured:
            wrapped(box, "Online access is off: enable it in Preferences > System > Network to download torch "
                         "and the model package", width, 3, "ERROR")
        if setup is not None and setup.finished:
            for i, line in enumerate(ui_state.fit_lines(setup.message, width, 4)):
                box.label(text=line, icon=("ERROR" if setup.state == "failed" else "INFO") if i == 0 else "BLANK1")
            if setup.state == "failed":
                for line in list(setup.log)[-5:]:
                    box.label(text=line[:140])
        box.label(text=f"Folder: {setup_env.managed_venv_dir(ADDON_ID)}")
        box.prop(self, "show_advanced", icon="TRIA_DOWN" if self.show_advanced else "TRIA_RIGHT", emboss=False)
        if self.show_advanced:
            col = box.column()
            col.prop(self, "package_spec")
            col.prop(self, "torch_index")
        if self.torch_index == "cpu":
            wrapped(box, "The CPU torch build cannot use CUDA: choose Default (PyPI) under Advanced for an "
                         "NVIDIA GPU" if self.device == "cuda" else "Torch build: CPU only (no CUDA)", width, 3, "INFO")

        # 2. the worker: which interpreter, model and device
        col = layout.column()
        col.prop(self, "python_path")
        if not self.python_path:
            col.label(text=f"Using: {managed}" if managed else "No environment yet: set one up above",
                      icon="INFO")
        col.row().prop(self, "model_source", expand=True)
        if self.model_source == "FOLDER":
            col.prop(self, "model_folder")
        if self.model_source == "OFFICIAL":
            draw_official(col.box(), self, width)
        row = col.row()
        row.prop(self, "device")
        row.prop(self, "threads")

        box = layout.box()
        check = RUNNER.check
        if check is not None and not check.finished:
            draw_progress(box, check.progress, check.status, cancel="check", width=width)
        else:
            row = box.row()
            row.operator("salad.check_worker", icon="CHECKMARK")
            row.operator("salad.stop_worker", icon="PAUSE")
        if check is not None and check.finished:
            for i, line in enumerate(ui_state.fit_lines(check.message, width, 4)):
                box.label(text=line, icon=("ERROR" if check.state == "failed" else "INFO") if i == 0 else "NONE")
            for line in (check.details or "").splitlines()[-6:]:
                box.label(text=line[:140])


def prefs_width(context: bpy.types.Context) -> int:
    """Characters that fit across the add-on's boxes in the Preferences window.

    Why measured: a fixed 110 let Blender cut messages in the middle ("Online access is off: enable it in
    Prefere… download torch") in the window Preferences opens at (its main region is ~520 px wide).
    """
    region = getattr(context, "region", None)
    prefs = getattr(context, "preferences", None)
    scale = prefs.system.ui_scale if prefs is not None else 1.0
    return ui_state.chars_for_width(region.width - 40 * (scale or 1.0), scale) if region is not None else 110


def wrapped(layout: bpy.types.UILayout, text: str, width: int, max_lines: int, icon: str) -> None:
    """``text`` as labels of at most ``width`` characters (the icon on the first)."""
    for i, line in enumerate(ui_state.fit_lines(text, width, max_lines)):
        layout.label(text=line, icon=icon if i == 0 else "BLANK1")


def draw_official(box: bpy.types.UILayout, prefs: SALAD_AddonPreferences, width: int) -> None:
    """The official model: where it is, or the button (and the download's progress) to get it."""
    box.prop(prefs, "official_dataset")
    root = official_model.official_root(ADDON_ID)
    path = official_model.official_model_path(root, prefs.official_dataset)
    job = RUNNER.download
    if job is not None and not job.finished:
        draw_progress(box, job.progress, job.status, cancel="download", width=width)
    else:
        box.operator("salad.get_official_model", icon="IMPORT", text="Get Official Model" if not path
                     else "Check Official Model Again")
        if not bpy.app.online_access and not path:
            wrapped(box, "Online access is off: enable it in Preferences > System > Network", width, 2, "ERROR")
    if job is not None and job.finished:
        for i, line in enumerate(ui_state.fit_lines(job.message, width, 4)):
            box.label(text=line, icon=("ERROR" if job.state == "failed" else "INFO") if i == 0 else "BLANK1")
    box.label(text=f"Ready: {path}" if path else "Not downloaded yet (the authors' checkpoints and CLIP)",
              icon="CHECKMARK" if path else "INFO")


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


def worker_missing(context: bpy.types.Context | None = None) -> bool:
    """True when no worker Python is set or found (the panel then offers "Set Up Model…")."""
    prefs = get_prefs(context)
    if prefs is not None and prefs.python_path:
        return False
    return not default_python()


def worker_blocker(context: bpy.types.Context | None = None) -> str:
    """Why no worker can start ("" when the Worker Python is there): the reason a greyed-out job button shows."""
    try:
        resolve_python(worker_config(context, with_model=False).python)
    except JobError as exc:
        return str(exc)
    return ""


def model_blocker(context: bpy.types.Context | None = None) -> str:
    """Why a generation cannot start ("" when it can): no worker, or no usable model chosen in the preferences.

    Why a poll asks this: the click used to start and fail with a message; a greyed-out button says why
    before the click, and the panel offers "Choose Model…" (:func:`model_missing`).
    """
    why = worker_blocker(context)
    if why:
        return why
    try:
        check_model(worker_config(context).model)
    except JobError as exc:
        return str(exc)
    return ""


def model_missing(context: bpy.types.Context | None = None) -> bool:
    """True when the worker could start but the preferences name no usable model (the panel's "Choose Model…")."""
    return not worker_blocker(context) and bool(model_blocker(context))


def worker_config(context: bpy.types.Context | None = None, *, with_model: bool = True) -> WorkerConfig:
    """Worker settings from the preferences (or the environment variables described above).

    ``with_model=False``: without the model (the preferences' choice is not checked; "demo" stands for it), for jobs
    whose model comes from elsewhere (edits use their action's).
    """
    prefs = get_prefs(context)
    if prefs is None:
        return WorkerConfig(python=default_python(), model=os.environ.get("SALAD_MODEL", "demo"),
                                 device=os.environ.get("SALAD_DEVICE", "auto"))
    if not with_model:
        model = "demo"
    elif prefs.model_source == "FOLDER":
        if not prefs.model_folder.strip():
            raise JobError(f"Pick the model folder in {PREFS_HINT} (or choose the demo model).")
        model = bpy.path.abspath(prefs.model_folder)
    elif prefs.model_source == "OFFICIAL":
        model = official_model.official_model_path(official_model.official_root(ADDON_ID), prefs.official_dataset)
        if not model:
            raise JobError(f"The official model is not downloaded yet: click 'Get Official Model' in {PREFS_HINT} "
                           "(or choose the demo model).")
    else:
        model = "demo"
    return WorkerConfig(python=bpy.path.abspath(prefs.python_path) if prefs.python_path
                             else default_python(), model=model, device=prefs.device, threads=prefs.threads)


class SALAD_OT_choose_model(bpy.types.Operator):
    """Choose the model folder new generations use (an official SALAD checkpoint folder or a model in our format)"""

    bl_idname = "salad.choose_model"
    bl_label = "Choose Model…"

    directory: StringProperty(name="Model Folder", subtype="DIR_PATH", options={"SKIP_SAVE"})
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if get_prefs(context) is None and hasattr(cls, "poll_message_set"):
            cls.poll_message_set("The add-on has no preferences here (registered without Blender's add-on system)")
        return get_prefs(context) is not None

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        prefs = get_prefs(context)
        if prefs is not None and prefs.model_folder and not self.directory:
            self.directory = bpy.path.abspath(prefs.model_folder)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        prefs = get_prefs(context)
        folder = bpy.path.abspath(self.directory.strip()) if self.directory.strip() else ""
        if prefs is None or not folder:
            self.report({"ERROR"}, "Choose a model folder (an official checkpoint folder or one in our format).")
            return {"CANCELLED"}
        try:
            folder = check_model(folder)
        except JobError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        prefs.model_source, prefs.model_folder = "FOLDER", folder
        self.report({"INFO"}, f"SALAD: new generations use the model in {folder}")
        return {"FINISHED"}


classes = (SALAD_AddonPreferences, SALAD_OT_choose_model)
