"""salad_blender.ui_state without Blender: what the panels show and what the operator polls allow (issue 21)."""

from types import SimpleNamespace

import numpy as np
from test_motion_job import Answer, ScriptedClient

from salad_blender import motion_job, ui_state
from salad_blender import retarget as rt


class Action(dict):
    """An Action stand-in: custom properties and a name (what metadata reads)."""

    def __init__(self, name, **props):
        super().__init__(props)
        self.name = name


def armature(action=None, *, mode="OBJECT", kind="ARMATURE", name="Rig", tweak=False):
    ad = SimpleNamespace(action=action, use_tweak_mode=tweak)
    return SimpleNamespace(name=name, type=kind, mode=mode, animation_data=ad)


GENERATED = Action("SALAD: a person walks", salad_prompt="a person walks", salad_seed=4, salad_frames=80,
                   salad_edits="[]")
INVERTED = Action("SALAD: walk [mirror all]", salad_prompt="a person walks", salad_seed=0, salad_frames=95,
                  salad_edits='[{"op": "edit_real", "mirror": "all"}]', salad_source="inversion",
                  salad_source_action="mocap walk")


def test_reweight_word_defaults_to_the_first_content_word_and_survives_a_prompt_switch():
    assert ui_state.default_word("a person walks forward and waves") == "walks"
    assert ui_state.default_word("the a an") == "the"  # all filler: still a word of the prompt
    assert ui_state.default_word("") == ""
    # a stored word the new prompt lacks falls back to that prompt's first content word, not to blank
    assert ui_state.resolve_word("waves", "a man jumps high") == "jumps"
    assert ui_state.resolve_word("HIGH", "a man jumps high") == "high"
    assert ui_state.resolve_word("", "a man jumps high") == "jumps"


def test_edits_refuse_actions_made_from_real_animation_with_a_reason():
    assert ui_state.edit_blocker(armature(GENERATED)) == ""
    assert "real animation" in ui_state.edit_blocker(armature(INVERTED))
    assert "not made by SALAD" in ui_state.edit_blocker(armature(Action("mocap")))
    assert "plays no action" in ui_state.edit_blocker(armature(None))
    assert ui_state.edit_blocker(None) == "Select an armature"
    assert "not an armature" in ui_state.edit_blocker(armature(GENERATED, kind="MESH", name="Cube"))
    assert "Edit Mode" in ui_state.edit_blocker(armature(GENERATED, mode="EDIT"))
    # the real-animation edit takes any action, including its own results
    assert ui_state.real_edit_blocker(armature(INVERTED)) == ""
    assert ui_state.real_edit_blocker(armature(Action("mocap"))) == ""
    assert "tweak" in ui_state.real_edit_blocker(armature(Action("mocap"), tweak=True))
    assert "no action" in ui_state.real_edit_blocker(armature(None))


def test_summary_shows_scene_frames_and_no_fake_seed_for_real_animation():
    # audit9: "96 frames" (4 s x 24 fps) for an action keyed on 95 frames (1-95); seen in Blender 4.3 as "173
    # frames" for a 7.2 s shot keyed 101-272 at 23.976 fps. The count is now the keys the result gets.
    assert ui_state.frames_summary(80, 24.0) == "95 frames (4.0 s, 80 model frames)"
    assert ui_state.frames_summary(144, 24 / 1.001).startswith("172 frames (7.2 s")
    lines = ui_state.action_summary(GENERATED, 24.0)
    assert lines == ["Seed 4, 95 frames (4.0 s, 80 model frames)"]
    lines = ui_state.action_summary(INVERTED, 24.0)
    assert not any("Seed" in line for line in lines)
    assert lines == ["Edited from the animation 'mocap walk'", "1 edit"]


def test_only_the_exact_mirror_of_real_animation_needs_no_caption():
    assert not ui_state.caption_needed("MIRROR", "geometric")
    assert ui_state.caption_needed("MIRROR", "attention")
    assert ui_state.caption_needed("PROMPT", "geometric") and ui_state.caption_needed("REWEIGHT", "geometric")


def test_fit_lines_wraps_and_marks_a_cut_with_an_ellipsis():
    text = "Loading the model: the text encoder and the denoiser weights from the model folder"
    assert ui_state.fit_lines(text, 200, 2) == [text]
    lines = ui_state.fit_lines(text, 30, 2)
    assert len(lines) == 2 and lines[-1].endswith("…") and all(len(x) <= 30 for x in lines)
    assert lines[0] == "Loading the model: the text"  # cut at word boundaries, from the start
    assert ui_state.fit_lines("", 30, 2) == [""]
    assert ui_state.chars_for_width(300, 1.0) > ui_state.chars_for_width(300, 2.0) >= 8


def test_results_wait_outside_edit_and_sculpt_mode():
    assert "Edit Mode" in ui_state.apply_hold("EDIT_MESH") and "Edit Mode" in ui_state.apply_hold("EDIT_ARMATURE")
    assert "Sculpt Mode" in ui_state.apply_hold("SCULPT")
    assert ui_state.apply_hold("POSE") == "" and ui_state.apply_hold("OBJECT") == ""


def test_a_held_job_applies_only_once_the_hold_lifts():
    applied = []
    client = ScriptedClient({"load": Answer({}), "generate": Answer({"value": 1})})
    job = motion_job.MotionJob("generate", "Generate", client, Answer({"pid": 1}), load={"op": "load"},
                               op={"op": "generate"}, apply=lambda r: applied.append(r) or "action")
    mode = ["EDIT_MESH"]
    job.hold = lambda: ui_state.apply_hold(mode[0])
    assert not job.poll() and not job.poll()  # polled again by the timer: still waiting, nothing applied
    assert applied == [] and job.state == "running" and "leave Edit Mode" in job.status
    mode[0] = "OBJECT"
    assert job.poll() and job.state == "done" and applied == [{"value": 1}]
    assert client.sent == ["load", "generate"]  # the request was not sent twice


def test_a_selected_mesh_means_the_rig_that_deforms_it():
    rig = armature(GENERATED)
    child = SimpleNamespace(name="Body", type="MESH", parent=rig, modifiers=[])
    modded = SimpleNamespace(name="Body", type="MESH", parent=None,
                             modifiers=[SimpleNamespace(type="SUBSURF"), SimpleNamespace(type="ARMATURE", object=rig)])
    loose = SimpleNamespace(name="Cube", type="MESH", parent=None, modifiers=[])
    assert ui_state.armature_of(child) is rig and ui_state.armature_of(modded) is rig
    assert ui_state.armature_of(loose) is loose and ui_state.armature_of(None) is None
    assert ui_state.edit_blocker(child) == "" and "not an armature" in ui_state.edit_blocker(loose)


def test_which_actions_belong_to_a_rig():
    assert ui_state.bone_of_path('pose.bones["hand.L"].location') == "hand.L"
    assert ui_state.bone_of_path('pose.bones["a \\"q\\" b"].scale') == 'a "q" b'
    assert ui_state.bone_of_path("location") == ""
    paths = ['pose.bones["pelvis"].location', 'pose.bones["head"].rotation_quaternion', "location"]
    assert ui_state.fits_rig(paths, {"pelvis", "head", "neck"})
    assert not ui_state.fits_rig(paths, {"pelvis"}) and not ui_state.fits_rig(["location"], {"pelvis"})
    edit = Action("SALAD: a person runs", salad_prompt="a person walks", salad_seed=4, salad_frames=80,
                  salad_edits='[{"edit_prompt": "a person runs"}]', salad_parent="SALAD: a person walks")
    assert ui_state.action_row(edit) == ("a person runs", "seed 4, edit of 'SALAD: a person walks'")
    assert ui_state.action_row(INVERTED)[1] == "from 'mocap walk'"
    assert ui_state.ab_partner(edit, "") == "SALAD: a person walks"  # an edit goes to its source
    assert ui_state.ab_partner(GENERATED, "SALAD: a person runs") == "SALAD: a person runs"  # and back
    assert ui_state.ab_partner(None, "x") == ""


def test_the_duration_hint_counts_the_frames_the_clip_is_keyed_on():
    """audit9: Text to Motion's Duration said "96 scene frames at 24 fps" (4 s; "120 at 30 fps") and the clip was
    keyed on 95 (119): the last key is at or before the model's last frame (retarget.resample). Now the hint says
    what the result gets: the model's whole latent frames of the duration, keyed at the scene's fps."""
    assert ui_state.duration_hint(4.0, 24.0) == "95 scene frames at 24 fps"
    assert ui_state.duration_hint(4.0, 30.0) == "119 scene frames at 30 fps"
    assert ui_state.duration_hint(4.0, 20.0) == "80 scene frames at 20 fps"
    assert ui_state.duration_hint(2.2, 24 / 1.001) == "52 scene frames at 23.976 fps"  # 44 model frames
    # as the field holds it; 2.9 s makes 2.8 s, which the hint says first (audit9b)
    assert ui_state.duration_hint(float(np.float32(2.9)), 20.0) == "Makes 2.8 s: 56 scene frames at 20 fps"
    for seconds in (2.0, 2.2, 3.4, 9.8):
        for fps in (20.0, 23.976, 24.0, 25.0, 29.97, 30.0, 60.0):
            frames = int(round(seconds * 20 / 4)) * 4  # the model's length (pipeline.frames_for)
            res = rt.resample(rt.RetargetResult(["a"], np.tile([1.0, 0, 0, 0], (frames, 1, 1)), "a",
                                                np.zeros((frames, 3)), 20.0, None), fps)
            assert ui_state.duration_hint(seconds, fps).startswith(f"{res.num_frames} scene frames"), (seconds, fps)
