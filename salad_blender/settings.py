"""Scene settings of the SALAD panels (saved with the .blend: they describe the animation, not the machine).

Also the two readers that turn them into job inputs (:func:`sampling_from`, :func:`target_from`).
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import jobs, metadata, ui_state
from . import protocol as P
from .inputs import Sampling, Target, split_words

MODEL_GUIDANCE = 7.5  # what the demo and official weights use; shown while "Model Default" is on
MIRROR_SIDE_ITEMS = [("lower", "Legs", "Mirror the legs (lower body)"), ("upper", "Arms", "Mirror the arms and "
                     "upper body"), ("all", "All", "Mirror the whole body")]


def active_rig(context) -> object:  # noqa: ANN001 - bpy.types.Context or a stand-in
    """The armature the user means: the active object, or the rig deforming the active mesh."""
    return ui_state.armature_of(getattr(context, "active_object", None) if context is not None else None)


def active_prompt(context) -> str:  # noqa: ANN001 - bpy.types.Context or a stand-in
    """The current prompt of the active object's SALAD action ("" without one)."""
    act = metadata.active_salad_action(active_rig(context))
    if act is None or metadata.metadata_problem(act):
        return ""
    return metadata.current_prompt(metadata.action_meta(act))


def _reweight_moved(self, context):  # noqa: ANN001, ANN202 - Blender callback signature
    """Live preview (fast mode): the UI only schedules; preview_actions / live_preview do the work."""
    from . import preview_actions

    preview_actions.slider_changed(context)


def _word_items(self, context):  # noqa: ANN001, ANN202 - Blender callback signature
    """(word, word, tooltip) for each word of the active action's prompt."""
    words = split_words(active_prompt(context))
    return [(w, w, f"Re-weight '{w}'") for w in words] or [("NONE", "(no SALAD action)", "")]


def _word_search(self, context, edit_text):  # noqa: ANN001, ANN202 - Blender search callback
    """The re-weight field's search list: the words of the active action's prompt."""
    return [w for w in split_words(active_prompt(context)) if edit_text.lower() in w.lower()]


class SALAD_PG_settings(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt", default="a person walks forward and waves with the right hand",
                           description="What the character does, in plain English")
    seconds: FloatProperty(name=ui_state.DURATION, default=4.0, min=2.0, max=9.8, step=20, precision=2,
                           description="Length of the motion in seconds (the demo model "
                                                             "makes 2 to 9.8 s)")
    seed: IntProperty(name="Seed", default=0, min=0, description="Same prompt and seed give the same motion")
    use_model_guidance: BoolProperty(name="Model Default", default=True,
                                     description="Use the guidance the model was tuned with (7.5 for the "
                                                 "official and demo weights); off: the value below is sent")
    guidance: FloatProperty(name="Guidance", default=MODEL_GUIDANCE, min=P.GUIDANCE_MIN, max=P.GUIDANCE_MAX,
                            soft_max=15.0, description="How strongly the motion follows the text (classifier-free "
                                                       "guidance; 1 = none)")
    steps: IntProperty(name="Steps", default=50, min=P.STEPS_MIN, max=P.STEPS_MAX, soft_max=200,
                       description="Denoising steps (DDIM 50 = the paper; DPM-Solver++ needs ~20)")
    sampler: EnumProperty(name="Sampler", default="ddim",
                          items=[("ddim", "DDIM", "The paper's sampler (50 steps)"),
                                 ("dpm++", "DPM-Solver++", "Multistep solver: similar quality in fewer steps")])
    fast: BoolProperty(name="Fast", default=False,
                       description="Fast mode: the worker's quick sampler preset (DPM-Solver++, few steps) "
                                   "instead of Steps and Sampler; edits of the result regenerate it the same way")
    target: EnumProperty(name="Target", default="NEW",
                         items=[("NEW", "New SMPL-22 Body", "Create an armature with a simple skinned body"),
                                ("SELECTED", "Selected Armature", "Retarget onto the active armature")])
    set_scene_range: BoolProperty(name="Set Scene Range", default=False,
                                  description="Make the scene's frame range the new clip (off: only extend the "
                                              "end when the clip runs past it)")
    start_at_current: BoolProperty(name="Start at Current Frame", default=False,
                                   description="Start a new motion at the current frame (off: at the scene start)")
    at_cursor: BoolProperty(name="Place at 3D Cursor", default=True,
                            description="Put a new body at the 3D cursor in the active collection (off: at the "
                                        "world origin in the scene collection)")
    in_place: BoolProperty(name="In Place", default=False,
                           description="Remove the root's travel over the ground: the motion stays on the spot")
    make_cyclic: BoolProperty(name="Make Cyclic", default=False,
                              description="Make the result a seamless loop: its end is blended into its start "
                                          "and every curve gets a Cycles modifier (the root's travel goes on)")
    cyclic_blend: IntProperty(name="Blend Frames", default=12, min=1, soft_max=48,
                              description="Scene frames over which the end of the clip is blended into its start")
    all_selected: BoolProperty(name="All Selected", default=False,
                               description="Apply the motion to every selected armature (or the rig of a "
                                           "selected mesh), each as its own new Action")
    select_new: BoolProperty(name="Select New Body", default=True,
                             description="Make a new body the selected, active object (never while you are in "
                                         "Pose or Edit Mode on another object)")
    rig_preset: EnumProperty(name="Rig", default="AUTO",
                             items=[("AUTO", "Auto-Detect", "Recognise SMPL-22, Mixamo or Rigify bone names"),
                                    ("SMPL22", "SMPL-22 Names", "Bones named pelvis, left_hip, ..."),
                                    ("MIXAMO", "Mixamo", "mixamorig:Hips, ... (any prefix)"),
                                    ("RIGIFY_CONTROL", "Rigify Control Rig", "A generated Rigify rig: keys its torso, "
                                     "FK spine and FK limb controls and switches the limbs to FK"),
                                    ("RIGIFY", "Rigify Deform Bones", "DEF-spine, DEF-thigh.L, ... (deform-only "
                                     "exports; in a generated rig the DEF bones follow constraints)"),
                                    ("CUSTOM", "Custom Bone Map", "JSON {SMPL-22 joint: bone} from a text or file")])
    bone_map_source: EnumProperty(name="Bone Map From", default="TEXT",
                                  items=[("TEXT", "Text", "A text datablock (Text Editor)"),
                                         ("FILE", "File", "A JSON file")])
    bone_map_text: PointerProperty(name="Bone Map Text", type=bpy.types.Text)
    bone_map_file: StringProperty(name="Bone Map File", subtype="FILE_PATH")
    keep_other_channels: BoolProperty(name="Keep Other Channels", default=True,
                                      description="A result on an animated rig keeps that rig's keys on the "
                                                  "channels the motion does not drive (fingers, face, props, "
                                                  "custom properties), trimmed to the result's frames")
    pin_feet: BoolProperty(name="Pin Feet", default=True,
                           description="Hold planted feet still (removes foot sliding) using the model's contacts")
    edit_prompt: StringProperty(name="New Prompt",
                                description="Change a word (word swap) or add details (refinement); the "
                                            "motion keeps its structure")
    reweight_word: StringProperty(name="Word", default="", search=_word_search,
                                  description="The word whose influence changes (empty or not in the prompt: "
                                              "its first content word)")
    reweight_scale: FloatProperty(name="Weight", default=2.0, min=P.REWEIGHT_MIN, max=P.REWEIGHT_MAX,
                                  description="1 = unchanged, >1 stronger, 0 = ignore the word, <0 = opposite. "
                                              "With Fast on, moving it previews the edit live",
                                  update=_reweight_moved)
    real_caption: StringProperty(name="Caption", default="",
                                 description="What the selected animation shows, e.g. 'a person walks' (the model "
                                             "inverts the motion under this text)")
    real_edit: EnumProperty(name="Edit", default="MIRROR",
                            items=[("PROMPT", "New Prompt", "Change a word of the caption or add details"),
                                   ("REWEIGHT", "Re-weight", "Make a word of the caption matter more or less"),
                                   ("MIRROR", "Mirror", "Swap left and right")])
    real_prompt: StringProperty(name="New Prompt", default="",
                                description="The caption with a word changed or details added")
    real_word: StringProperty(name="Word", default="", description="A word of the caption to re-weight")
    real_scale: FloatProperty(name="Weight", default=2.0, min=P.REWEIGHT_MIN, max=P.REWEIGHT_MAX,
                              description="1 = unchanged, >1 stronger, 0 = ignore the word, <0 = opposite")
    real_mirror: EnumProperty(name="Side", default="all", items=MIRROR_SIDE_ITEMS)
    mirror_method: EnumProperty(name="Method", default="geometric",
                                items=[("geometric", "Exact", "The exact mirror image of the motion (instant)"),
                                       ("attention", "Attention (Paper)",
                                        "SALAD's swap of left/right attention rows: re-generates the motion; "
                                        "on the demo model it rarely changes sides")])
    real_mirror_method: EnumProperty(name="Method", default="geometric",
                                items=[("geometric", "Exact", "The exact mirror image of the motion (instant)"),
                                       ("attention", "Attention (Paper)",
                                        "SALAD's swap of left/right attention rows: re-generates the motion; "
                                        "on the demo model it rarely changes sides")])
    heatmap_normalize: EnumProperty(name="Scale", default="global",
                                    items=[("global", "Shared", "One colour scale for all words"),
                                           ("word", "Per Word", "Each word stretched to its own range")])


def settings(context: bpy.types.Context) -> SALAD_PG_settings:
    return context.scene.salad


def sampling_from(s: SALAD_PG_settings) -> Sampling:
    return Sampling(seconds=s.seconds, seed=s.seed, guidance=None if s.use_model_guidance else s.guidance,
                    steps=s.steps, sampler=s.sampler, fast=s.fast)


def scene_range(s: SALAD_PG_settings) -> str:
    """What a result does to the scene's frame range: "set" when asked, else only "extend" the end."""
    return "set" if s.set_scene_range else "extend"


def result_options(context: bpy.types.Context, s: SALAD_PG_settings) -> dict:
    """Target fields that say what a result may change in the user's scene (see :class:`inputs.Target`)."""
    out: dict = {"scene": context.scene.name, "scene_ref": context.scene, "scene_range": scene_range(s),
                 "select": s.select_new, "in_place": s.in_place, "cyclic_blend": s.cyclic_blend if s.make_cyclic else 0,
                 "start_frame": context.scene.frame_current if s.start_at_current else None}
    if s.at_cursor:
        out["location"] = tuple(context.scene.cursor.location)
        layer = context.view_layer.active_layer_collection if context.view_layer is not None else None
        coll = layer.collection if layer is not None else None
        out["collection"] = coll.name if coll is not None and coll != context.scene.collection else ""
    return out


def target_from(context: bpy.types.Context, s: SALAD_PG_settings) -> Target:
    if s.target == "NEW":
        return Target(kind="new", pin_feet=s.pin_feet, **result_options(context, s))
    obj = active_rig(context)
    rig: str | dict[str, str] = s.rig_preset.lower()
    if s.rig_preset == "CUSTOM":
        rig = jobs.load_bone_map(s.bone_map_source, s.bone_map_text.name if s.bone_map_text else "",
                                 s.bone_map_file)
    opts = result_options(context, s)
    opts.pop("location", None), opts.pop("collection", None)
    return Target(kind="armature", armature=obj.name if obj is not None else "", armature_ref=obj, rig=rig,
                  pin_feet=s.pin_feet, **others_of(context, s.all_selected), **opts)


def others_of(context, all_selected: bool) -> dict:  # noqa: ANN001 - bpy.types.Context or a stand-in
    """Target fields of 'All Selected': the other armatures' names and the objects themselves (renames)."""
    rigs = selected_armature_objects(context) if all_selected else ()
    return {"others": tuple(r.name for r in rigs), "other_refs": rigs}


def selected_armature_objects(context) -> tuple:  # noqa: ANN001 - bpy.types.Context or a stand-in
    """The armatures the selection means (selected armatures, rigs of selected meshes), in order."""
    out: list = []
    for obj in getattr(context, "selected_objects", None) or ():
        rig = ui_state.armature_of(obj)
        if getattr(rig, "type", "") == "ARMATURE" and rig not in out:
            out.append(rig)
    return tuple(out)


def selected_armatures(context) -> tuple[str, ...]:  # noqa: ANN001 - bpy.types.Context or a stand-in
    """Names of the armatures the selection means, in order."""
    return tuple(r.name for r in selected_armature_objects(context))


classes = (SALAD_PG_settings,)


def register() -> None:
    """Add ``scene.salad`` (after :data:`classes` are registered)."""
    bpy.types.Scene.salad = PointerProperty(type=SALAD_PG_settings)


def unregister() -> None:
    del bpy.types.Scene.salad
