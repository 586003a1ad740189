"""Operators: thin wrappers that read the UI settings and start :mod:`jobs`.

Operators only validate and schedule (like Blender's own io_anim_bvh operators): the work happens in
the job objects, which the :mod:`runner`'s 0.1 s ``bpy.app.timers`` callback polls on the main
thread, so Blender stays responsive while the model samples. ``blocking=True`` (scripts, headless
use) drives the same job to completion inside the operator instead.
"""

from __future__ import annotations

import os
import random
import shutil

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from . import heatmap, jobs, metadata, official_model, preferences, preview_actions, setup_env, ui_state
from .runner import RUNNER, redraw
from .settings import (
    MIRROR_SIDE_ITEMS,
    active_prompt,
    active_rig,
    sampling_from,
    scene_range,
    settings,
    target_from,
)

# Names that lived here before issue 17: still importable, with a DeprecationWarning.
_MOVED = {"Runner": "runner", "draw_progress": "runner", "SALAD_PG_settings": "settings"}


def __getattr__(name: str):  # noqa: ANN202
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    import warnings

    warnings.warn(f"salad_blender.operators.{name} moved to salad_blender.{_MOVED[name]}", DeprecationWarning,
                  stacklevel=2)
    return getattr(importlib.import_module(f".{_MOVED[name]}", __package__), name)


JOB_SLOT_ITEMS = [("motion", "Motion", ""), ("check", "Check", ""), ("setup", "Set-up", ""),
                  ("download", "Download", "")]  # runner slots


def finished_job(which: str):  # noqa: ANN201 - MotionJob or SetupJob
    """The runner's job in a slot once it has finished (None while it runs or when there is none)."""
    job = getattr(RUNNER, which)
    return job if job is not None and job.finished else None


def say_no(cls: type, reason: str) -> bool:
    """A poll result: True without a reason; else False, with the reason shown where Blender can (4.0+)."""
    if reason and hasattr(cls, "poll_message_set"):
        cls.poll_message_set(reason)
    return not reason


def setup_blocker(needs: str, context: bpy.types.Context) -> str:
    """Why a job that ``needs`` a worker ("worker") or also the chosen model ("model") cannot start ("" if it can)."""
    if needs == "model":
        return preferences.model_blocker(context)
    return preferences.worker_blocker(context) if needs == "worker" else ""


class _JobOperator:
    """Shared: start a motion job, or run it to the end when ``blocking`` (scripts, headless)."""

    blocking: BoolProperty(name="Blocking", default=False, options={"HIDDEN", "SKIP_SAVE"},
                           description="Wait for the result inside the operator (scripts and headless use)")
    slot = "motion"
    # What must be set up before the job can start: "model" (a worker and the preferences' model), "worker"
    # (a worker; the model comes from the action, as for edits) or "" (Check Worker: it shows what is wrong).
    needs = "model"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if RUNNER.busy(cls.slot):
            return say_no(cls, "A SALAD job is running: wait or cancel it")
        return say_no(cls, setup_blocker(cls.needed(context), context))

    @classmethod
    def needed(cls, context: bpy.types.Context) -> str:
        return cls.needs

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        raise NotImplementedError

    def execute(self, context: bpy.types.Context) -> set[str]:
        if RUNNER.busy(self.slot):  # a file browser executes without the poll: never cancel the running job
            self.report({"ERROR"}, "A SALAD job is running: wait for it or cancel it first.")
            return {"CANCELLED"}
        try:
            job = self.make_job(context)
        except jobs.JobError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        RUNNER.start(self.slot, job, timer=not self.blocking)
        if not self.blocking:
            self.report({"INFO"}, f"SALAD: {job.label} started")
            return {"FINISHED"}
        job.wait()
        RUNNER.finished(self.slot, job)
        if job.state != "done":
            self.report({"ERROR"} if job.state == "failed" else {"WARNING"}, job.message)
            return {"CANCELLED"}
        self.report({"INFO"}, job.message)
        return {"FINISHED"}


class SALAD_OT_generate(_JobOperator, bpy.types.Operator):
    """Generate a motion from the prompt as a new Action (runs in the background; Cancel stops it)"""

    bl_idname = "salad.generate"
    bl_label = "Generate Motion"

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        s = settings(context)
        return jobs.start_generate(preferences.worker_config(context), s.prompt, sampling_from(s),
                                   target_from(context, s))


class _EditOperator(_JobOperator):
    """Edits of the active object's SALAD action: only when it plays one made by generation."""

    needs = "worker"  # the action's own model (its metadata), not the preferences' choice

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _JobOperator.poll.__func__(cls, context) and say_no(cls, ui_state.edit_blocker(active_rig(context)))

    @staticmethod
    def start_edit(context: bpy.types.Context, **edit) -> jobs.MotionJob:  # noqa: ANN003 - start_edit's fields
        """The edit of the user's action: while a live preview plays, of the preview's source (the preview is
        dropped once the job has started; Apply Preview keeps it)."""
        obj = active_rig(context)
        job = jobs.start_edit(preferences.worker_config(context), obj, action=preview_actions.edit_source(obj),
                              scene_range=scene_range(settings(context)), **edit)
        preview_actions.end_session_for(obj)
        return job


class SALAD_OT_edit_prompt(_EditOperator, bpy.types.Operator):
    """Edit the active SALAD action with a new prompt (word swap or refinement, chosen automatically)"""

    bl_idname = "salad.edit_prompt"
    bl_label = "Edit with New Prompt"

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        return self.start_edit(context, new_prompt=settings(context).edit_prompt)


class SALAD_OT_reweight(_EditOperator, bpy.types.Operator):
    """Make one word of the active SALAD action's prompt matter more or less"""

    bl_idname = "salad.reweight"
    bl_label = "Re-weight Word"

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        s = settings(context)
        word = ui_state.resolve_word(s.reweight_word, active_prompt(context))
        return self.start_edit(context, word=word or None, scale=s.reweight_scale)


class SALAD_OT_mirror(_EditOperator, bpy.types.Operator):
    """Mirror the active SALAD action left/right (legs, arms or all) into a new Action"""

    bl_idname = "salad.mirror"
    bl_label = "Mirror"

    side: EnumProperty(name="Side", default="all", items=MIRROR_SIDE_ITEMS)

    @classmethod
    def description(cls, context: bpy.types.Context, properties: bpy.types.OperatorProperties) -> str:
        """Each of Mirror Legs / Arms / All says what it mirrors (one shared tooltip said "legs, arms or all")."""
        what = {key: text for key, _label, text in MIRROR_SIDE_ITEMS}.get(properties.side, "")
        return f"{what} of the active SALAD action, left/right, into a new Action" if what else cls.__doc__

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        return self.start_edit(context, mirror=self.side, mirror_method=settings(context).mirror_method)


class SALAD_OT_edit_real(_JobOperator, bpy.types.Operator):
    """Edit the active armature's animation (any action, e.g. mocap) with text into a new Action"""

    bl_idname = "salad.edit_real"
    bl_label = "Edit Animation with Text"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return (_JobOperator.poll.__func__(cls, context)
                and say_no(cls, ui_state.real_edit_blocker(active_rig(context))))

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        s = settings(context)
        rig: str | dict[str, str] = "auto" if s.rig_preset == "AUTO" else s.rig_preset.lower()
        if s.rig_preset == "CUSTOM":
            rig = jobs.load_bone_map(s.bone_map_source, s.bone_map_text.name if s.bone_map_text else "",
                                     s.bone_map_file)
        edit: dict = {"PROMPT": {"new_prompt": s.real_prompt or None},
                      "REWEIGHT": {"word": s.real_word or None, "scale": s.real_scale},
                      "MIRROR": {"mirror": s.real_mirror, "mirror_method": s.real_mirror_method}}[s.real_edit]
        return jobs.start_edit_real(preferences.worker_config(context), active_rig(context), s.real_caption,
                                    rig=rig, pin_feet=s.pin_feet, steps=s.steps, scene_range=scene_range(s),
                                    **edit)


class SALAD_OT_attention(_JobOperator, bpy.types.Operator):
    """Show which words drive which body parts over time (image "SALAD attention")"""

    bl_idname = "salad.attention"
    bl_label = "Attention Heat Map"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        act = ui_state.playing_action(active_rig(context))
        why = ui_state.regenerate_blocker(act) if act is not None else ""
        return _JobOperator.poll.__func__(cls, context) and say_no(cls, why)

    @classmethod
    def needed(cls, context: bpy.types.Context) -> str:
        """The heat map of the playing SALAD action uses that action's model; of the prompt, the chosen one."""
        return "worker" if metadata.active_salad_action(active_rig(context)) is not None else "model"

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        s = settings(context)
        act = metadata.active_salad_action(active_rig(context))
        return jobs.start_attention(preferences.worker_config(context), action=act, prompt=s.prompt,
                                    sampling=sampling_from(s), normalize=s.heatmap_normalize)


class SALAD_OT_check_worker(_JobOperator, bpy.types.Operator):
    """Start the model worker, load the model and show versions and device"""

    bl_idname = "salad.check_worker"
    bl_label = "Check Worker"
    slot = "check"
    needs = ""  # Check says what is wrong with the set-up: never greyed out for it

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        return jobs.start_check(preferences.worker_config(context))


class SALAD_OT_stop_worker(bpy.types.Operator):
    """Stop the model worker process (frees its memory; the next job starts it again)"""

    bl_idname = "salad.stop_worker"
    bl_label = "Stop Worker"

    def execute(self, context: bpy.types.Context) -> set[str]:
        for slot in ("motion", "check"):
            job = getattr(RUNNER, slot)
            if job is not None and not job.finished:
                job.cancel()
        jobs.shutdown()
        self.report({"INFO"}, "SALAD: worker stopped")
        return {"FINISHED"}


class SALAD_OT_cancel(bpy.types.Operator):
    """Cancel the running SALAD job; the scene stays as it was"""

    bl_idname = "salad.cancel"
    bl_label = "Cancel"

    which: EnumProperty(name="Job", default="motion", items=JOB_SLOT_ITEMS, options={"SKIP_SAVE"})
    job: IntProperty(name="Job Number", default=0, min=0, options={"HIDDEN", "SKIP_SAVE"},
                     description="The job of the slot this button belongs to (0: whichever runs there)")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return say_no(cls, "" if any(RUNNER.busy(slot) for slot in RUNNER.SLOTS) else "No SALAD job is running")

    def execute(self, context: bpy.types.Context) -> set[str]:
        which = self.which
        if not self.properties.is_property_set("which"):  # F3 / the menu name no job: the one that runs
            which = next((slot for slot in RUNNER.SLOTS if RUNNER.busy(slot)), which)
        job = getattr(RUNNER, which)
        if job is None or job.finished or (self.job and self.job != RUNNER.serials[which]):
            # a button names its job: never cancel another one (e.g. a generation, from Check's stale X)
            self.report({"INFO"}, "That SALAD job has already ended")
            return {"CANCELLED"}
        job.cancel()
        RUNNER.finished(which, job)
        redraw()
        self.report({"INFO"}, job.message)
        return {"FINISHED"}


class SALAD_OT_randomize_seed(bpy.types.Operator):
    """Pick a random seed"""

    bl_idname = "salad.randomize_seed"
    bl_label = "Random Seed"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings(context).seed = random.randint(0, 2**31 - 1)
        return {"FINISHED"}


class SALAD_OT_copy_prompt(bpy.types.Operator):
    """Put the active action's prompt into the edit field, to change a word of it"""

    bl_idname = "salad.copy_prompt"
    bl_label = "Copy Current Prompt"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return say_no(cls, ui_state.edit_blocker(active_rig(context)))

    def execute(self, context: bpy.types.Context) -> set[str]:
        act = metadata.active_salad_action(active_rig(context))
        if act is None:
            return {"CANCELLED"}
        settings(context).edit_prompt = metadata.current_prompt(metadata.action_meta(act))
        return {"FINISHED"}


class SALAD_OT_show_attention(bpy.types.Operator):
    """Show the "SALAD attention" image in an Image Editor (a new window if none is open)"""

    bl_idname = "salad.show_attention"
    bl_label = "Show in Image Editor"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return say_no(cls, "" if heatmap.IMAGE_NAME in bpy.data.images else "No attention map yet: record one first")

    def execute(self, context: bpy.types.Context) -> set[str]:
        img = bpy.data.images.get(heatmap.IMAGE_NAME)
        if img is None:
            self.report({"ERROR"}, "No attention map yet: click 'Attention Heat Map' first.")
            return {"CANCELLED"}
        for win in context.window_manager.windows:
            for area in win.screen.areas:
                if area.type == "IMAGE_EDITOR":
                    area.spaces.active.image = img
                    area.tag_redraw()
                    return {"FINISHED"}
        try:
            bpy.ops.wm.window_new()
            area = max(context.window_manager.windows[-1].screen.areas, key=lambda a: a.width * a.height)
            area.type = "IMAGE_EDITOR"
            area.spaces.active.image = img
        except (RuntimeError, IndexError, ValueError):
            self.report({"INFO"}, f"Open an Image Editor and pick the image '{heatmap.IMAGE_NAME}'.")
        return {"FINISHED"}


class SALAD_OT_setup_env(bpy.types.Operator):
    """Create the model environment and pip-install the model package and torch into it"""

    bl_description = ("Create the model environment (a Python venv in the add-on's user folder) and pip-install "
                      "the model package and torch into it. Needs online access; never touches Blender's own "
                      "Python")
    bl_idname = "salad.setup_env"
    bl_label = "Set Up Model Environment"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return say_no(cls, "The set-up is running" if RUNNER.busy("setup") else "")

    def execute(self, context: bpy.types.Context) -> set[str]:
        prefs = preferences.get_prefs(context)
        package = prefs.package_spec if prefs is not None else setup_env.default_package()
        torch_index = prefs.torch_index if prefs is not None else "cpu"
        try:
            setup_env.check_online(bpy.app.online_access, getattr(bpy.app, "online_access_override", False))
            venv = setup_env.managed_venv_dir(preferences.ADDON_ID, create=True)
            job = setup_env.start_setup(venv, online_access=bpy.app.online_access, package=package,
                                        torch_index=torch_index)
        except setup_env.SetupError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        RUNNER.start("setup", job)
        self.report({"INFO"}, f"SALAD: setting up the model environment in {venv}")
        return {"FINISHED"}


class SALAD_OT_get_official_model(bpy.types.Operator):
    """Download the authors' official model (HumanML3D) and its CLIP text model, verified before use"""

    bl_description = ("Download the authors' official SALAD checkpoints (Google Drive) and the CLIP text model "
                      "(Hugging Face) with the model environment's Python; the model is offered only after it "
                      "loaded strictly. Needs online access; resumes an interrupted download")
    bl_idname = "salad.get_official_model"
    bl_label = "Get Official Model"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return say_no(cls, "The download is running" if RUNNER.busy("download") else "")

    def execute(self, context: bpy.types.Context) -> set[str]:
        prefs = preferences.get_prefs(context)
        python = bpy.path.abspath(prefs.python_path) if prefs is not None and prefs.python_path else \
            preferences.default_python()
        dataset = prefs.official_dataset if prefs is not None else "t2m"
        try:
            official_model.check_online(bpy.app.online_access, getattr(bpy.app, "online_access_override", False))
            root = official_model.official_root(preferences.ADDON_ID, create=True)
            job = official_model.start_download(python, root, dataset, online_access=bpy.app.online_access)
        except setup_env.SetupError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        RUNNER.start("download", job)
        self.report({"INFO"}, f"SALAD: downloading the official model into {root}")
        return {"FINISHED"}


class _EnvOperator:
    """Acts on the managed model environment: only when it exists (and, if ``refuse_busy``, nothing runs)."""

    missing = "No model environment yet"
    refuse_busy = False

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if cls.refuse_busy and any(RUNNER.busy(slot) for slot in RUNNER.SLOTS):
            return say_no(cls, "Wait for the running SALAD job or cancel it")
        return say_no(cls, "" if os.path.isdir(setup_env.managed_venv_dir(preferences.ADDON_ID)) else cls.missing)


class SALAD_OT_open_env_folder(_EnvOperator, bpy.types.Operator):
    """Open the model environment's folder in the file browser of your system"""

    bl_idname = "salad.open_env_folder"
    bl_label = "Open Folder"

    def execute(self, context: bpy.types.Context) -> set[str]:
        bpy.ops.wm.path_open(filepath=setup_env.managed_venv_dir(preferences.ADDON_ID))
        return {"FINISHED"}


class SALAD_OT_remove_env(_EnvOperator, bpy.types.Operator):
    """Delete the model environment (torch and the model package; "Set Up Model Environment" makes it again)"""

    bl_idname = "salad.remove_env"
    bl_label = "Remove Environment"
    missing = "No model environment to remove"
    refuse_busy = True

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context: bpy.types.Context) -> set[str]:
        jobs.shutdown()
        folder = setup_env.managed_venv_dir(preferences.ADDON_ID)
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            self.report({"ERROR"}, f"Could not remove {folder}: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"SALAD: removed the model environment {folder}")
        return {"FINISHED"}


class _FinishedJobOperator:
    """Acts on the finished job of a runner slot (its message in a panel)."""

    which: EnumProperty(name="Job", default="motion", items=JOB_SLOT_ITEMS)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        done = any(finished_job(slot) is not None for slot in RUNNER.SLOTS)
        return say_no(cls, "" if done else "No finished SALAD job")


class SALAD_OT_dismiss(_FinishedJobOperator, bpy.types.Operator):
    """Hide the last SALAD job's message"""

    bl_idname = "salad.dismiss"
    bl_label = "Dismiss"

    def execute(self, context: bpy.types.Context) -> set[str]:
        if finished_job(self.which) is None:
            return {"CANCELLED"}
        setattr(RUNNER, self.which, None)
        redraw()
        return {"FINISHED"}


class SALAD_OT_job_details(_FinishedJobOperator, bpy.types.Operator):
    """Show the whole message of the last SALAD job and what the worker printed"""

    bl_idname = "salad.job_details"
    bl_label = "Details"

    def execute(self, context: bpy.types.Context) -> set[str]:
        job = finished_job(self.which)
        if job is None:
            return {"CANCELLED"}
        text = job.message
        details = getattr(job, "details", "") or "\n".join(list(getattr(job, "log", []))[-12:])

        def draw(menu: bpy.types.Menu, _context: bpy.types.Context) -> None:
            col = menu.layout.column(align=True)
            for line in ui_state.fit_lines(text, 90, 12):
                col.label(text=line)
            for line in details.splitlines()[-12:]:
                col.label(text=line[:120])

        icon = "ERROR" if job.state == "failed" else "INFO"
        context.window_manager.popup_menu(draw, title=f"SALAD: {job.label}", icon=icon)
        return {"FINISHED"}


class SALAD_OT_report(bpy.types.Operator):
    """Put a finished background job's message in the status bar and the Info log (called by the timer)"""

    bl_idname = "salad.report"
    bl_label = "Report"
    bl_options = {"INTERNAL"}

    level: EnumProperty(name="Level", default="INFO",
                        items=[("INFO", "Info", ""), ("WARNING", "Warning", ""), ("ERROR", "Error", "")])
    message: StringProperty(name="Message")

    def execute(self, context: bpy.types.Context) -> set[str]:
        self.report({self.level}, self.message)
        return {"FINISHED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        """Report from a modal step: only reports made there reach the status-bar banner (not ``bpy.ops`` ones)."""
        if context.window is None:
            return self.execute(context)
        self._timer = context.window_manager.event_timer_add(0.01, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        self.report({self.level}, self.message)
        return {"FINISHED"}


classes = (
    SALAD_OT_generate,
    SALAD_OT_edit_prompt,
    SALAD_OT_reweight,
    SALAD_OT_mirror,
    SALAD_OT_edit_real,
    SALAD_OT_attention,
    SALAD_OT_check_worker,
    SALAD_OT_stop_worker,
    SALAD_OT_cancel,
    SALAD_OT_randomize_seed,
    SALAD_OT_copy_prompt,
    SALAD_OT_show_attention,
    SALAD_OT_setup_env,
    SALAD_OT_get_official_model,
    SALAD_OT_open_env_folder,
    SALAD_OT_remove_env,
    SALAD_OT_dismiss,
    SALAD_OT_job_details,
    SALAD_OT_report,
)
