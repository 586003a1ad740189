"""audit9b: shot results an animator would be surprised by (headless bpy, 4.2 legacy and 5.0 slotted actions).

In-between / Continue / Regenerate Parts of animation: *Keep Other Channels* keeps the channels of the action the
result was made from (an in-between's A), not those of whatever the rig plays when the result lands. Durations say
the length the worker makes (whole 0.2 s steps). A segment's own seed does not squeeze its Duration. A new result
plays at Replace, influence 1 over NLA strips. Scripted worker (shot_fakes); no timing.
"""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_state import world_heads  # noqa: E402
from shot_fakes import FakePool, ShotWorker  # noqa: E402
from test_shot_jobs_scripted import CONFIG, FAST, keyed_body, run  # noqa: E402
from test_shot_operators import draw  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, blender_data, shot_jobs, shot_panels, smpl22, ui_state  # noqa: E402
from salad_blender.inputs import ResultWarning  # noqa: E402


@pytest.fixture
def pool():
    return FakePool(ShotWorker(steps=2))


def _play(obj, action):
    actions.assign_action(obj, action, actions.object_slot(action, obj))


def _key_mood(obj, action, frames_values):
    """Key the rig object's custom property 'mood' into ``action`` (a channel no motion drives)."""
    _play(obj, action)
    for f, v in frames_values:
        obj["mood"] = v
        obj.keyframe_insert('["mood"]', frame=f)


def _mood(action):
    return next((fc for fc in actions.action_fcurves(action) if fc.data_path == '["mood"]'), None)


@pytest.mark.parametrize("playing", ["B", "C"])
def test_an_inbetween_keeps_the_channels_of_a_whatever_the_rig_plays(pool, playing):
    obj = keyed_body({"A": synthetic_walk(96), "B": synthetic_walk(60, turn_deg=-40.0), "C": synthetic_walk(40)})
    a, b, c = (bpy.data.actions[n] for n in "ABC")
    _key_mood(obj, a, [(1, 0.1), (90, 0.4)])
    _key_mood(obj, b, [(1, 0.9), (60, 0.9)])
    _key_mood(obj, c, [(1, -1.0), (40, -1.0)])
    _play(obj, b)  # the animator last looked at B, then picked A and B
    job = shot_jobs.start_inbetween(CONFIG, obj, a, b, "a person turns around", 1.0, sampling=FAST,
                                    pin_feet=False, pool=pool)
    _play(obj, bpy.data.actions[playing])  # ... or played something else while it ran
    new = run(job)
    mood = _mood(new)
    assert mood is not None
    want = _mood(a)
    for f in (1.0, 30.0, 60.5, 90.0):  # A's curve where A plays (within 1e-5: the trimmed copy keeps its shape)
        assert mood.evaluate(f) == pytest.approx(want.evaluate(f), abs=1e-5), f
    assert np.isclose(mood.evaluate(150.0), 0.9, atol=1e-5)  # B's part plays B's keys (audit10; C's never)


def test_a_continuation_keeps_the_continued_actions_channels(pool):
    obj = keyed_body({"Walk": synthetic_walk(96), "Other": synthetic_walk(40)})
    walk, other = bpy.data.actions["Walk"], bpy.data.actions["Other"]
    _key_mood(obj, walk, [(1, 0.2), (50, 0.7)])
    _key_mood(obj, other, [(1, -1.0)])
    _play(obj, walk)
    job = shot_jobs.start_continue(CONFIG, obj, "a person sits down", 2.0, sampling=FAST, pin_feet=False, pool=pool)
    _play(obj, other)
    new = run(job)
    assert _mood(new).evaluate(50.0) == pytest.approx(0.7, abs=1e-5)


# ------------------------------------------------------------------------ durations snap to 0.2 s steps

def test_the_hint_says_the_length_the_worker_makes():
    """audit9b: a 2.1 s Duration made a 2.0 s clip (the worker rounds to whole latent frames, half to even) and
    nothing said so; the hint now leads with the length that will be made when it is not the typed one."""
    shots = pytest.importorskip("salad_model.runtime.shots")
    director = SimpleNamespace(pipe=SimpleNamespace(fps=smpl22.FPS))
    for typed in (0.2, 0.3, 0.5, 1.0, 2.0, 2.1, 2.3, 2.9, 3.7, 4.0, 9.9, 12.5):
        held = float(np.float32(typed))  # what a Blender field sends (typed_seconds rounds it back)
        frames = 4 * shots.ShotDirector._check_seconds(director, ui_state.typed_seconds(held), "d", 0, 300)
        assert ui_state.model_frames_of(held) == frames, typed
        made = frames / smpl22.FPS
        assert ui_state.snap_hint(held) == ("" if abs(made - typed) < 1e-9 else f"Makes {made:.1f} s"), typed
    assert ui_state.duration_hint(2.1, 24.0) == "Makes 2.0 s: 47 scene frames at 24 fps"
    assert ui_state.duration_hint(2.3, 20.0) == "Makes 2.4 s: 48 scene frames at 20 fps"
    assert ui_state.duration_hint(4.0, 24.0) == "95 scene frames at 24 fps"  # a whole number of steps: as before


def test_the_shot_fields_say_the_length_that_will_be_made(addon):
    """audit9b: the segment, Continue and In-between Durations took 2.1 s and made 2.0 s without a word (the shot's
    total added the typed lengths). Each now says what will be made under the field; exact steps show nothing."""
    s = bpy.context.scene.salad_shot
    for seconds in (2.1, 4.0):
        seg = s.segments.add()
        seg.prompt, seg.seconds = "a person waves", seconds
    s.active_segment = 0
    s.continue_seconds, s.inbetween_seconds = 2.1, 0.5
    labels = [c[1] for c in draw(shot_panels.SALAD_PT_shot) if c[0] == "label"]
    assert "Makes 2.0 s (whole 0.2 s steps)" in labels and "2 segment(s), 6.0 s of 300 s" in labels, labels
    labels = [c[1] for c in draw(shot_panels.SALAD_PT_shot_continue) if c[0] == "label"]
    assert "Makes 2.0 s (whole 0.2 s steps)" in labels and "Makes 0.4 s (whole 0.2 s steps)" in labels, labels
    s.active_segment = 1
    s.continue_seconds, s.inbetween_seconds = 2.0, 0.6
    labels = [c[1] for c in draw(shot_panels.SALAD_PT_shot) + draw(shot_panels.SALAD_PT_shot_continue)
              if c[0] == "label"]
    assert not [t for t in labels if t.startswith("Makes")], labels


class RowsLayout:
    """Records which row (layout object) each property is drawn in; anything else is accepted."""

    def __init__(self, rows, name="panel"):
        self.rows, self.name, self.made = rows, name, 0
        self.enabled, self.scale_y, self.use_property_split, self.use_property_decorate = True, 1.0, False, False

    def row(self, **_):
        self.made += 1
        return RowsLayout(self.rows, f"{self.name}/{self.made}")

    column = box = split = row

    def prop(self, data, name, **_):
        assert name in data.bl_rna.properties, name
        self.rows.append((self.name, data, name))

    def __getattr__(self, _name):
        return lambda *a, **k: RowsLayout(self.rows, f"{self.name}/x")


def test_a_segment_seed_does_not_share_the_durations_row(addon):
    """audit9b (Blender 4.3 window, 291 px sidebar): with its own seed, the segment box's row held Duration, the
    lock and the seed, and read 'Durat… 2.1 s'. The seed now has a row of its own; Duration keeps the lock only."""
    s = bpy.context.scene.salad_shot
    seg = s.segments.add()
    seg.prompt, seg.seconds, seg.use_seed, seg.seed = "a person waves", 2.1, True, 42
    s.active_segment = 0
    rows = []
    shot_panels.SALAD_PT_shot.draw(SimpleNamespace(layout=RowsLayout(rows)), bpy.context)
    where = {name: row for row, data, name in rows if data == seg and name != "prompt"}  # not the shot seed
    assert set(where) == {"seconds", "use_seed", "seed"}, rows
    assert where["seconds"] == where["use_seed"] != where["seed"], rows


# ------------------------------------------------------------------------ a result plays at full strength

@pytest.mark.parametrize("influence, blend", [(0.3, "REPLACE"), (1.0, "ADD"), (0.5, "COMBINE")])
def test_a_new_result_plays_at_replace_full_influence_over_nla_strips(influence, blend):
    """audit9b: over an NLA strip (the animator's pushed-down base), a result took over the active action's
    influence 0.3 (or blend mode Add): it played 30 % of the motion (or on top of the base) — a broken-looking
    body. The result gets Blender's defaults (Replace, 1.0) and says what it changed; a failed apply gives them
    back (place_motion's undo)."""
    walk, other = synthetic_walk(60), synthetic_walk(60, turn_deg=-40.0)
    obj = keyed_body({"Base": walk, "Layer": other})
    base, layer = bpy.data.actions["Base"], bpy.data.actions["Layer"]
    _play(obj, base)
    actions.push_to_nla(obj)
    _play(obj, layer)
    ad = obj.animation_data
    ad.action_influence, ad.action_blend_type = influence, blend
    before = blender_data.playing([obj])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new = actions.apply_motion(obj, walk[::-1].copy(), prompt="back", bone_map="smpl22", start_frame=1)
    said = [str(w.message) for w in caught if issubclass(w.category, ResultWarning)]
    assert (ad.action, ad.action_influence, ad.action_blend_type) == (new, 1.0, "REPLACE")
    assert len(said) == 1 and "'Mocap' played its action with" in said[0], said
    names = list(smpl22.JOINT_NAMES)
    heads = world_heads(obj, names, 20)
    ad.nla_tracks.remove(ad.nla_tracks[0])  # the result alone: what it plays must not depend on the base
    assert np.abs(world_heads(obj, names, 20) - heads).max() < 1e-4
    blender_data.undo_actions([new], before)
    assert (ad.action, round(ad.action_influence, 6), ad.action_blend_type) == (layer, influence, blend)


def test_a_result_on_a_rig_at_full_strength_says_nothing():
    obj = keyed_body({"Base": synthetic_walk(60)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        actions.apply_motion(obj, synthetic_walk(60), prompt="walk", bone_map="smpl22", start_frame=1)
    assert not [w for w in caught if issubclass(w.category, ResultWarning)]


# ------------------------------------------------------------------------ a trimmed parent's Manual Frame Range

@pytest.mark.parametrize("cyclic", [False, True])
@pytest.mark.parametrize("kind", ["reroll", "parts", "edit"])
def test_a_version_of_a_trimmed_clip_keeps_its_manual_frame_range(kind, cyclic):
    """audit9b: an edit, re-roll or part regeneration of a clip trimmed with Manual Frame Range (40-70, maybe Cyclic
    Animation: the part the animator plays or loops) lands on the same frames but came out untrimmed: every version
    had to be trimmed again (Blender's own copy of an action keeps the range). A continuation is longer: untouched."""
    from test_manual_frame_range import CONFIG as EDIT_CONFIG
    from test_manual_frame_range import clip, shot, start_version, trimmed_parent

    body, parent, fake_pool = trimmed_parent(shot if kind == "reroll" else clip)
    parent.use_cyclic = cyclic
    job = start_version(kind, body, fake_pool)
    new = run(job)
    assert new is not parent and new.use_frame_range
    assert (new.frame_start, new.frame_end, new.use_cyclic) == (40.0, 70.0, cyclic)
    longer = run(shot_jobs.start_continue(EDIT_CONFIG, body, "a person sits down", 2.0, sampling=FAST,
                                          pin_feet=False, pool=fake_pool))
    assert not longer.use_frame_range


@pytest.mark.parametrize("kind", ["reroll", "parts", "edit"])
def test_a_version_keeps_its_parents_other_channels_whatever_the_rig_plays(kind):
    """audit9b: the other channels of an edit / re-roll / part regeneration came from whatever the rig played when
    the result landed (the animator looked at another action meanwhile): now from the parent it was made from."""
    from test_manual_frame_range import clip, shot, start_version, trimmed_parent

    body, parent, fake_pool = trimmed_parent(shot if kind == "reroll" else clip)
    other = bpy.data.actions.new("Other")
    _key_mood(body, other, [(1, -1.0)])
    _key_mood(body, parent, [(11, 0.25), (60, 0.75)])  # plays the parent again: the job starts from it
    job = start_version(kind, body, fake_pool)
    _play(body, other)
    new = run(job)
    assert _mood(new).evaluate(60.0) == pytest.approx(0.75, abs=1e-5)
