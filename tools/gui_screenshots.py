"""Screenshots of the add-on's panels for docs/blender_addon.md, taken in a real Blender window.

    python tools/build_extension.py --no-model-wheel --out-dir /tmp/dist
    SALAD_GUI_PYTHON=/path/to/worker-python ../shared/tools/blender-gui --size 1600x1500 \
        --zip /tmp/dist/salad_motion-0.1.0.zip --out docs/img/gui tools/gui_screenshots.py

Runs inside Blender (blender-gui: Blender 4.3 on a virtual display, the extension installed with Blender's
own command). The worker Python is $SALAD_GUI_PYTHON, else the checkout's .venv; the demo model, 20 steps.
Writes full-screen PNGs plus ``<name>_panel.png`` crops of the sidebar (ImageMagick inside the root).
Sub-panels are opened by re-registering them without DEFAULT_CLOSED (Blender has no API to open one).
"""

import os
import subprocess
import sys

import bpy
import guishot

PROJECT = os.environ.get("PROJECT", os.getcwd())
PY = os.environ.get("SALAD_GUI_PYTHON") or os.path.join(PROJECT, ".venv", "bin", "python")
ADDON = next(k for k in bpy.context.preferences.addons.keys() if k.endswith("salad_motion"))
BVH = os.path.join(PROJECT, "tests", "data", "dataset-2_raise-up-left-hand_active_020.bvh")
RIG = os.path.join(PROJECT, "tests", "data", "rigify_human.blend")
state: dict = {}

def mod(name: str):  # noqa: ANN201
    return sys.modules[f"{ADDON}.{name}"]


def view3d():  # noqa: ANN201 - (window, area, sidebar region)
    win = bpy.context.window_manager.windows[0]
    area = max((a for a in win.screen.areas if a.type == "VIEW_3D"), key=lambda a: a.width * a.height)
    region = next(r for r in area.regions if r.type == "UI")
    return win, area, region


def run_op(op, **kw) -> None:  # noqa: ANN001
    """Call an operator in the 3D view's sidebar; a refusal is printed (the panel shows it), not fatal."""
    win, area, region = view3d()
    with bpy.context.temp_override(window=win, area=area, region=region):
        try:
            print("op", op.idname_py(), op(**kw))
        except RuntimeError as exc:
            print("op refused:", exc)


HIDDEN = ("SALAD_PT_attention", "SALAD_PT_shot", "SALAD_PT_regenerate_parts")


def panels_open(*open_ids: str, hide: tuple[str, ...] = HIDDEN) -> None:
    """Re-register the add-on's panels: the named ones open, ``hide`` not drawn (shorter crops).

    Blender keeps a panel's open/closed state by idname, so an opened panel gets a new idname each time.
    """
    classes = [c for c in bpy.types.Panel.__subclasses__() if c.__name__.startswith("SALAD_PT")]
    base = state.setdefault("base", {c.__name__: (set(getattr(c, "bl_options", set())), c.__dict__.get("poll"))
                                     for c in classes})
    for c in classes:
        if getattr(c, "is_registered", False):
            bpy.utils.unregister_class(c)
    state["n"] = state.get("n", 0) + 1
    idname = {}
    for c in classes:
        opts, poll = base[c.__name__]
        idname[c.__name__] = c.__name__ + (f"_v{state['n']}" if c.__name__ in open_ids else "")
        c.bl_idname = idname[c.__name__]
        c.bl_options = opts - {"DEFAULT_CLOSED"} if c.__name__ in open_ids else opts
        if c.__name__ in hide:
            c.poll = classmethod(lambda cls, ctx: False)
        elif poll is not None:
            c.poll = poll
        elif "poll" in c.__dict__:
            del c.poll
    for c in classes:
        parent = getattr(c, "bl_parent_id", "")
        if parent:
            c.bl_parent_id = idname.get(parent.split("_v")[0], parent)
    done: set[str] = set()
    while len(done) < len(classes):
        for c in classes:
            parent = getattr(c, "bl_parent_id", "")
            if c.bl_idname not in done and (not parent or parent in done):
                bpy.utils.register_class(c)
                done.add(c.bl_idname)
    redraw()


def redraw() -> None:
    for win in bpy.context.window_manager.windows:
        for area in win.screen.areas:
            area.tag_redraw()


def snap(name: str) -> None:
    """Full screen, and a crop of the sidebar (from the top of the region to the bottom of the screen)."""
    path = guishot.shot(name)
    win, area, region = view3d()
    top = win.height - (region.y + region.height)
    crop = f"{region.width}x{region.height}+{region.x}+{top}"
    subprocess.run(["convert", path, "-crop", crop, "+repage", path.replace(".png", "_panel.png")], check=False)
    whole = f"{area.width}x{area.height}+{area.x}+{win.height - (area.y + area.height)}"
    subprocess.run(["convert", path, "-crop", whole, "+repage", path.replace(".png", "_view.png")], check=False)
    print("shot", name, crop)


def setup() -> None:
    os.environ["PYTHONPATH"] = PROJECT  # the worker (inherits this) imports this checkout's salad_model
    os.environ["OMP_NUM_THREADS"] = "1"
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.python_path, prefs.model_source, prefs.device, prefs.threads = "/usr/bin/false", "DEMO", "cpu", 1
    state["prefs"] = prefs
    for obj in list(bpy.data.objects):
        if obj.type == "MESH":
            bpy.data.objects.remove(obj)
    s = bpy.context.scene.salad
    s.prompt, s.steps, s.seconds = "a person walks forward and waves with the right hand", 20, 4.0
    win, area, region = view3d()
    area.spaces[0].show_region_ui = True
    panels_open("SALAD_PT_generate_sampling")
    return 1.0


def find_tab():
    """Click down the sidebar's tab column until the SALAD tab is active (4.3: the category is read-only)."""
    win, area, region = view3d()
    if region.active_panel_category == "SALAD":
        return 0.5
    k = state["tab_try"] = state.get("tab_try", -1) + 1
    if k > 60:
        raise RuntimeError("no SALAD tab found")
    top = win.height - (region.y + region.height)
    guishot.click(region.x + region.width - 10, top + 12 + 12 * k)
    return False


def away():
    subprocess.run(["xdotool", "mousemove", "5", "1490"], check=False)
    return 1.5


def shoot_idle():
    snap("addon_idle")


def start_failing():
    run_op(bpy.ops.salad.generate)  # /usr/bin/false as the worker: fails at once


def failed():
    job = mod("runner").RUNNER.motion
    return job is not None and job.finished and 0.5


def shoot_error():
    snap("addon_error")
    state["prefs"].python_path = PY
    subprocess.run(["xdotool", "mousemove", "5", "1490"], check=False)  # the report banner follows the mouse
    return 1.5


def start_generate():
    run_op(bpy.ops.salad.generate)


def sampling():
    job = mod("runner").RUNNER.motion
    return job is not None and (job.finished or job.progress >= 0.2) and 0.05


def shoot_running():
    snap("addon_running")


def done():
    job = mod("runner").RUNNER.motion
    if job is not None and job.finished:
        print("job", job.state, job.message)
        return 1.0
    return False


def shoot_result():
    bpy.context.scene.frame_set(40)
    panels_open("SALAD_PT_generate_result", "SALAD_PT_actions")
    return 1.5


def shoot_result2():
    snap("addon_result")


def load_bvh():
    """The Bandai clip as a plain (non-SALAD) action on an SMPL-22 body, like mocap a user brings."""
    import numpy as np

    # SMPL-22 joints of the clip, made outside Blender (salad_model needs scipy, Blender's Python has none):
    # python -c "from salad_model.motion.bandai_rig import bvh_to_smpl22; ..." → build/gui/*.npy
    joints = np.load(os.path.join(PROJECT, "build", "gui", "raise_left_hand_joints.npy"))
    arm = mod("armature").create_smpl22_armature("Mocap", joints, location=(1.5, 0.0, 0.0))
    act = mod("actions").apply_motion(arm, joints, prompt="mocap", bone_map="smpl22", scene=bpy.context.scene,
                                      start_frame=1)
    for key in [k for k in act.keys() if k.startswith("salad_")]:
        del act[key]
    act.name = "raise up left hand (mocap)"
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    arm.select_set(True)
    bpy.context.view_layer.objects.active = arm
    s = bpy.context.scene.salad
    s.real_caption, s.target, s.rig_preset = "", "SELECTED", "AUTO"
    panels_open("SALAD_PT_edit_real")
    return 1.5


def shoot_edit_real():
    bpy.context.scene.frame_set(60)
    snap("addon_edit_real")
    run_op(bpy.ops.salad.edit_real)


def settle():
    bpy.context.scene.frame_set(60)
    return 1.5


def shoot_edit_real_result():
    snap("addon_edit_real_result")


def shoot_shot_panel():
    sh = bpy.context.scene.salad_shot
    for prompt, sec in (("a person walks forward", 4.0), ("a person waves with the right hand", 3.0),
                        ("a person runs off", 4.0)):
        run_op(bpy.ops.salad.shot_segment_add)
        seg = sh.segments[len(sh.segments) - 1]
        seg.prompt, seg.seconds = prompt, sec
    panels_open("SALAD_PT_shot", hide=("SALAD_PT_attention", "SALAD_PT_regenerate_parts", "SALAD_PT_edit"))
    return 1.5


def shoot_shot2():
    snap("addon_shot")


def load_rigify():
    state["prefs"].python_path = PY
    with bpy.data.libraries.load(RIG) as (src, dst):
        dst.objects = ["rig"]  # its widget meshes come along as custom shapes, unlinked
    rig = dst.objects[0]
    bpy.context.scene.collection.objects.link(rig)
    rig.location = (-2.5, 0.0, 0.0)
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
        if o is not rig and o.type in ("ARMATURE", "MESH"):
            o.hide_set(True)  # the rig alone in the result shot
    rig.select_set(True)
    bpy.context.view_layer.objects.active = rig
    s = bpy.context.scene.salad
    s.target, s.rig_preset, s.prompt = "SELECTED", "AUTO", "a person walks forward and waves with the right hand"
    s.make_cyclic, s.in_place = False, False
    panels_open()
    return 1.5


def shoot_rigify():
    snap("addon_rigify_detected")
    run_op(bpy.ops.salad.generate)


def shoot_rigify_result():
    bpy.context.scene.frame_set(45)
    win, area, region = view3d()
    main = next(r for r in area.regions if r.type == "WINDOW")
    with bpy.context.temp_override(window=win, area=area, region=main):
        bpy.ops.view3d.view_axis(type="FRONT")
        bpy.ops.view3d.view_selected()
    return 1.0


def shoot_rigify2():
    snap("addon_rigify_result")
    s = bpy.context.scene.salad
    s.target = "NEW"
    panels_open("SALAD_PT_generate_result")
    return 1.5


def shoot_result_options():
    snap("addon_result_options")


if os.path.exists(os.path.join(PROJECT, "build", "gui", "only_rigify")):  # re-take the Rigify shots alone
    guishot.steps(setup, find_tab, away, load_rigify, shoot_rigify, done, shoot_rigify_result, shoot_rigify2,
                  shoot_result_options, first=3.0, limit=2400.0)
else:
    guishot.steps(setup, find_tab, away, shoot_idle, start_failing, failed, shoot_error, start_generate, sampling,
                  shoot_running, done, shoot_result, shoot_result2, load_bvh, shoot_edit_real, done, settle,
                  shoot_edit_real_result, shoot_shot_panel, shoot_shot2, load_rigify, shoot_rigify, done,
                  shoot_rigify_result, shoot_rigify2, shoot_result_options,
                  first=3.0, limit=2400.0)
