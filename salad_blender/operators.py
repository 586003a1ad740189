"""Operators and the job runner: thin wrappers that read the UI settings and start :mod:`jobs`.

Operators only validate and schedule (like Blender's own io_anim_bvh operators): the work happens in
the job objects, which a 0.1 s ``bpy.app.timers`` callback polls on the main thread, so Blender stays
responsive while the model samples. ``blocking=True`` (scripts, headless use) drives the same job to
completion inside the operator instead.
"""

from __future__ import annotations

import random
import sys

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import heatmap, jobs, preferences, setup_env
from . import protocol as P

# ------------------------------------------------------------------------------------------------
# Runner: the jobs of this session and the timer that polls them


class Runner:
    """At most one motion job (generate / edit / attention), one check and one environment set-up."""

    SLOTS = ("motion", "check", "setup")

    def __init__(self) -> None:
        self.motion: jobs.MotionJob | None = None
        self.check: jobs.MotionJob | None = None
        self.setup: setup_env.SetupJob | None = None

    def busy(self, slot: str = "motion") -> bool:
        job = getattr(self, slot)
        return job is not None and not job.finished

    def start(self, slot: str, job, timer: bool = True) -> None:  # noqa: ANN001 - MotionJob or SetupJob
        old = getattr(self, slot)
        if old is not None and not old.finished:
            old.cancel()
        setattr(self, slot, job)
        if timer and not bpy.app.timers.is_registered(_tick):
            bpy.app.timers.register(_tick, first_interval=jobs.POLL_INTERVAL, persistent=True)

    def tick(self) -> float | None:
        """Poll every running job once; None (stop the timer) when nothing runs any more."""
        running = False
        for slot in self.SLOTS:
            job = getattr(self, slot)
            if job is None or job.finished:
                continue
            with _window_context():
                if job.poll():
                    self.finished(slot, job)
                else:
                    running = True
        _redraw()
        return jobs.POLL_INTERVAL if running else None

    def finished(self, slot: str, job) -> None:  # noqa: ANN001
        """Tell the user (console + panel) and make the change undoable."""
        stream = sys.stderr if job.state == "failed" else sys.stdout
        print(f"SALAD: {job.message}", file=stream)
        details = getattr(job, "details", "")
        if details:
            print(details, file=sys.stderr)
        if slot == "motion" and job.state == "done":
            try:
                bpy.ops.ed.undo_push(message=f"SALAD {job.label}")
            except RuntimeError:
                pass

    def cancel_all(self) -> None:
        for slot in self.SLOTS:
            job = getattr(self, slot)
            if job is not None and not job.finished:
                job.cancel()


RUNNER = Runner()


def _tick() -> float | None:
    try:
        return RUNNER.tick()
    except Exception:  # noqa: BLE001 - a raising timer is unregistered silently; keep polling visible
        import traceback

        traceback.print_exc()
        return jobs.POLL_INTERVAL


class _window_context:
    """Run the apply step with a window in context when there is one (timers have a bare context)."""

    def __enter__(self) -> None:
        wm = getattr(bpy.context, "window_manager", None)
        win = wm.windows[0] if wm is not None and len(wm.windows) and bpy.context.window is None else None
        self._cm = bpy.context.temp_override(window=win) if win is not None else None
        if self._cm is not None:
            self._cm.__enter__()

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        if self._cm is not None:
            self._cm.__exit__(*exc)


def _redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for win in wm.windows:
        for area in win.screen.areas:
            if area.type in ("VIEW_3D", "PREFERENCES", "STATUSBAR", "IMAGE_EDITOR"):
                area.tag_redraw()


def draw_progress(layout: bpy.types.UILayout, factor: float, text: str) -> None:
    """A progress bar (Blender 4.0+), else the percentage as text."""
    if hasattr(layout, "progress"):
        layout.progress(factor=float(factor), type="BAR", text=f"{text[:70]} ({factor * 100:.0f}%)")
    else:
        layout.label(text=f"{text[:70]}: {factor * 100:.0f}%")


# ------------------------------------------------------------------------------------------------
# Scene settings (saved with the .blend: they describe the animation, not the machine)

_WORD_ITEMS: list[tuple[str, str, str]] = []  # kept alive: Blender does not copy dynamic enum strings


def _word_items(self, context):  # noqa: ANN001, ANN202 - Blender callback signature
    obj = getattr(context, "active_object", None) if context is not None else None
    act = jobs.active_salad_action(obj)
    words = jobs.split_words(jobs.current_prompt(jobs.action_meta(act))) if act is not None else []
    _WORD_ITEMS[:] = [(w, w, f"Re-weight '{w}'") for w in words] or [("NONE", "(no SALAD action)", "")]
    return _WORD_ITEMS


class SALAD_PG_settings(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt", default="a person walks forward and waves with the right hand",
                           description="What the character does, in plain English")
    seconds: FloatProperty(name="Duration", default=4.0, min=2.0, max=9.8, step=20, precision=1, unit="TIME",
                           description="Length of the motion in seconds (the demo model makes 2-9.8 s)")
    seed: IntProperty(name="Seed", default=0, min=0, description="Same prompt + seed = same motion")
    guidance: FloatProperty(name="Guidance", default=0.0, min=P.GUIDANCE_MIN, max=P.GUIDANCE_MAX, soft_max=15.0,
                            description="How strongly the motion follows the text (classifier-free guidance); "
                                        "0 = the model's default (7.5 for the official weights, tuned for the demo): "
                                        "0 is sent as 'not given', never as guidance 0")
    steps: IntProperty(name="Steps", default=50, min=P.STEPS_MIN, max=P.STEPS_MAX, soft_max=200,
                       description="Denoising steps (DDIM 50 = the paper; DPM-Solver++ needs ~20)")
    sampler: EnumProperty(name="Sampler", default="ddim",
                          items=[("ddim", "DDIM", "The paper's sampler (50 steps)"),
                                 ("dpm++", "DPM-Solver++", "Multistep solver: similar quality in fewer steps")])
    target: EnumProperty(name="Target", default="NEW",
                         items=[("NEW", "New SMPL-22 body", "Create an armature with a simple skinned body"),
                                ("SELECTED", "Selected armature", "Retarget onto the active armature")])
    rig_preset: EnumProperty(name="Rig", default="AUTO",
                             items=[("AUTO", "Auto-detect", "Recognise SMPL-22, Mixamo or Rigify bone names"),
                                    ("SMPL22", "SMPL-22 names", "Bones named pelvis, left_hip, ..."),
                                    ("MIXAMO", "Mixamo", "mixamorig:Hips, ... (any prefix)"),
                                    ("RIGIFY", "Rigify deform bones", "DEF-spine, DEF-thigh.L, ..."),
                                    ("CUSTOM", "Custom bone map", "JSON {SMPL-22 joint: bone} from a text or file")])
    bone_map_source: EnumProperty(name="Bone map from", default="TEXT",
                                  items=[("TEXT", "Text", "A text datablock (Text Editor)"),
                                         ("FILE", "File", "A JSON file")])
    bone_map_text: PointerProperty(name="Bone map text", type=bpy.types.Text)
    bone_map_file: StringProperty(name="Bone map file", subtype="FILE_PATH")
    pin_feet: BoolProperty(name="Pin feet", default=True,
                           description="Hold planted feet still (removes foot sliding) using the model's contacts")
    edit_prompt: StringProperty(name="New prompt",
                                description="Change a word (word swap) or add details (refinement); the "
                                            "motion keeps its structure")
    reweight_word: EnumProperty(name="Word", items=_word_items, description="The word whose influence changes")
    reweight_scale: FloatProperty(name="Weight", default=2.0, min=P.REWEIGHT_MIN, max=P.REWEIGHT_MAX,
                                  description="1 = unchanged, >1 stronger, 0 = ignore the word, <0 = opposite")
    real_caption: StringProperty(name="Caption", default="",
                                 description="What the selected animation shows, e.g. 'a person walks' (the model "
                                             "inverts the motion under this text)")
    real_edit: EnumProperty(name="Edit", default="MIRROR",
                            items=[("PROMPT", "New prompt", "Change a word of the caption or add details"),
                                   ("REWEIGHT", "Re-weight", "Make a word of the caption matter more or less"),
                                   ("MIRROR", "Mirror", "Swap left and right")])
    real_prompt: StringProperty(name="New prompt", default="",
                                description="The caption with a word changed or details added")
    real_word: StringProperty(name="Word", default="", description="A word of the caption to re-weight")
    real_scale: FloatProperty(name="Weight", default=2.0, min=P.REWEIGHT_MIN, max=P.REWEIGHT_MAX,
                              description="1 = unchanged, >1 stronger, 0 = ignore the word, <0 = opposite")
    real_mirror: EnumProperty(name="Side", default="all",
                              items=[("lower", "Lower", "Legs"), ("upper", "Upper", "Arms"),
                                     ("all", "All", "Whole body")])
    mirror_method: EnumProperty(name="Method", default="geometric",
                                items=[("geometric", "Exact", "The exact mirror image of the motion (instant)"),
                                       ("attention", "Attention (paper)",
                                        "SALAD's swap of left/right attention rows: re-generates the motion; "
                                        "on the demo model it rarely changes sides")])
    heatmap_normalize: EnumProperty(name="Scale", default="global",
                                    items=[("global", "Shared", "One colour scale for all words"),
                                           ("word", "Per word", "Each word stretched to its own range")])


def settings(context: bpy.types.Context) -> SALAD_PG_settings:
    return context.scene.salad


def sampling_from(s: SALAD_PG_settings) -> jobs.Sampling:
    return jobs.Sampling(seconds=s.seconds, seed=s.seed, guidance=s.guidance, steps=s.steps, sampler=s.sampler)


def target_from(context: bpy.types.Context, s: SALAD_PG_settings) -> jobs.Target:
    if s.target == "NEW":
        return jobs.Target(kind="new", pin_feet=s.pin_feet, scene=context.scene.name)
    obj = context.active_object
    rig: str | dict[str, str] = s.rig_preset.lower()
    if s.rig_preset == "CUSTOM":
        rig = jobs.load_bone_map(s.bone_map_source, s.bone_map_text.name if s.bone_map_text else "",
                                 s.bone_map_file)
    return jobs.Target(kind="armature", armature=obj.name if obj is not None else "", rig=rig,
                       pin_feet=s.pin_feet, scene=context.scene.name)


# ------------------------------------------------------------------------------------------------
# Operators


class _JobOperator:
    """Shared: start a motion job, or run it to the end when ``blocking`` (scripts, headless)."""

    blocking: BoolProperty(name="Blocking", default=False, options={"HIDDEN", "SKIP_SAVE"},
                           description="Wait for the result inside the operator (scripts and headless use)")
    slot = "motion"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not RUNNER.busy(cls.slot)

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        raise NotImplementedError

    def execute(self, context: bpy.types.Context) -> set[str]:
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


class SALAD_OT_edit_prompt(_JobOperator, bpy.types.Operator):
    """Edit the active SALAD action with a new prompt (word swap or refinement, chosen automatically)"""

    bl_idname = "salad.edit_prompt"
    bl_label = "Edit with New Prompt"

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        return jobs.start_edit(preferences.worker_config(context), context.active_object,
                               new_prompt=settings(context).edit_prompt)


class SALAD_OT_reweight(_JobOperator, bpy.types.Operator):
    """Make one word of the active SALAD action's prompt matter more or less"""

    bl_idname = "salad.reweight"
    bl_label = "Re-weight Word"

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        s = settings(context)
        word = s.reweight_word
        if word == "NONE":
            raise jobs.JobError("Select an armature that plays a SALAD action first.")
        return jobs.start_edit(preferences.worker_config(context), context.active_object, word=word,
                               scale=s.reweight_scale)


class SALAD_OT_mirror(_JobOperator, bpy.types.Operator):
    """Mirror the active SALAD action left/right (legs, arms or all) into a new Action"""

    bl_idname = "salad.mirror"
    bl_label = "Mirror"

    side: EnumProperty(name="Side", default="all",
                       items=[("lower", "Lower", "Legs"), ("upper", "Upper", "Arms"),
                              ("all", "All", "Whole body")])

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        return jobs.start_edit(preferences.worker_config(context), context.active_object, mirror=self.side,
                               mirror_method=settings(context).mirror_method)


class SALAD_OT_edit_real(_JobOperator, bpy.types.Operator):
    """Edit the active armature's animation (any action, e.g. mocap) with text into a new Action"""

    bl_idname = "salad.edit_real"
    bl_label = "Edit Selected Animation with Text"

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        s = settings(context)
        rig: str | dict[str, str] = "auto" if s.rig_preset == "AUTO" else s.rig_preset.lower()
        if s.rig_preset == "CUSTOM":
            rig = jobs.load_bone_map(s.bone_map_source, s.bone_map_text.name if s.bone_map_text else "",
                                     s.bone_map_file)
        edit: dict = {"PROMPT": {"new_prompt": s.real_prompt or None},
                      "REWEIGHT": {"word": s.real_word or None, "scale": s.real_scale},
                      "MIRROR": {"mirror": s.real_mirror, "mirror_method": s.mirror_method}}[s.real_edit]
        return jobs.start_edit_real(preferences.worker_config(context), context.active_object, s.real_caption,
                                    rig=rig, pin_feet=s.pin_feet, steps=s.steps, **edit)


class SALAD_OT_attention(_JobOperator, bpy.types.Operator):
    """Show which words drive which body parts over time (image "SALAD attention")"""

    bl_idname = "salad.attention"
    bl_label = "Attention Heat Map"

    def make_job(self, context: bpy.types.Context) -> jobs.MotionJob:
        s = settings(context)
        act = jobs.active_salad_action(context.active_object)
        return jobs.start_attention(preferences.worker_config(context), action=act, prompt=s.prompt,
                                    sampling=sampling_from(s), normalize=s.heatmap_normalize)


class SALAD_OT_check_worker(_JobOperator, bpy.types.Operator):
    """Start the model worker, load the model and show versions and device"""

    bl_idname = "salad.check_worker"
    bl_label = "Check"
    slot = "check"

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
        jobs.POOL.close()
        self.report({"INFO"}, "SALAD: worker stopped")
        return {"FINISHED"}


class SALAD_OT_cancel(bpy.types.Operator):
    """Cancel the running SALAD job; the scene stays as it was"""

    bl_idname = "salad.cancel"
    bl_label = "Cancel"

    which: EnumProperty(name="Job", default="motion",
                        items=[("motion", "Motion", ""), ("check", "Check", ""), ("setup", "Set-up", "")])

    def execute(self, context: bpy.types.Context) -> set[str]:
        job = getattr(RUNNER, self.which)
        if job is None or job.finished:
            return {"CANCELLED"}
        job.cancel()
        RUNNER.finished(self.which, job)
        _redraw()
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
    bl_label = "Current Prompt"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        act = jobs.active_salad_action(context.active_object)
        if act is None:
            return {"CANCELLED"}
        settings(context).edit_prompt = jobs.current_prompt(jobs.action_meta(act))
        return {"FINISHED"}


class SALAD_OT_show_attention(bpy.types.Operator):
    """Show the "SALAD attention" image in an Image Editor (a new window if none is open)"""

    bl_idname = "salad.show_attention"
    bl_label = "Show in Image Editor"

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
    """Create the model environment (a Python venv in the add-on's user folder) and pip-install the
    model package and torch into it. Needs online access; never touches Blender's own Python"""

    bl_idname = "salad.setup_env"
    bl_label = "Set up model environment"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not RUNNER.busy("setup")

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


classes = (
    SALAD_PG_settings,
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
)


@bpy.app.handlers.persistent
def _cancel_on_load(*_args) -> None:  # noqa: ANN002
    """A motion job must not land in another file's objects that happen to share a name."""
    job = RUNNER.motion
    if job is not None and not job.finished:
        job.cancel()
        print(f"SALAD: {job.label} cancelled because another file was opened")


def register_props() -> None:
    bpy.types.Scene.salad = PointerProperty(type=SALAD_PG_settings)
    bpy.app.handlers.load_pre.append(_cancel_on_load)


def unregister_props() -> None:
    if _cancel_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_cancel_on_load)
    RUNNER.cancel_all()
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    jobs.shutdown()
    del bpy.types.Scene.salad
