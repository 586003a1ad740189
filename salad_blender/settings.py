"""Scene settings of the SALAD panels (saved with the .blend: they describe the animation, not the machine).

Also the two readers that turn them into job inputs (:func:`sampling_from`, :func:`target_from`).
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import jobs, metadata
from . import protocol as P
from .inputs import Sampling, Target, split_words

_WORD_ITEMS: list[tuple[str, str, str]] = []  # kept alive: Blender does not copy dynamic enum strings


def _word_items(self, context):  # noqa: ANN001, ANN202 - Blender callback signature
    obj = getattr(context, "active_object", None) if context is not None else None
    act = metadata.active_salad_action(obj)
    words = split_words(metadata.current_prompt(metadata.action_meta(act))) if act is not None else []
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


def sampling_from(s: SALAD_PG_settings) -> Sampling:
    return Sampling(seconds=s.seconds, seed=s.seed, guidance=s.guidance, steps=s.steps, sampler=s.sampler)


def target_from(context: bpy.types.Context, s: SALAD_PG_settings) -> Target:
    if s.target == "NEW":
        return Target(kind="new", pin_feet=s.pin_feet, scene=context.scene.name)
    obj = context.active_object
    rig: str | dict[str, str] = s.rig_preset.lower()
    if s.rig_preset == "CUSTOM":
        rig = jobs.load_bone_map(s.bone_map_source, s.bone_map_text.name if s.bone_map_text else "",
                                 s.bone_map_file)
    return Target(kind="armature", armature=obj.name if obj is not None else "", rig=rig,
                       pin_feet=s.pin_feet, scene=context.scene.name)


classes = (SALAD_PG_settings,)


def register() -> None:
    """Add ``scene.salad`` (after :data:`classes` are registered)."""
    bpy.types.Scene.salad = PointerProperty(type=SALAD_PG_settings)


def unregister() -> None:
    del bpy.types.Scene.salad
