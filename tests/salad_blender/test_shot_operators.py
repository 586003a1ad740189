"""The Shot panel's operators and panels in the registered add-on: the segment list, presets, recipes,
every job button (``blocking=True``; the worker is the scripted shot_fakes.ShotWorker), errors reported."""

import json
from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy")

from blender_state import snapshot  # noqa: E402
from fake_ui import FakeLayout  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import actions, armature, metadata, shot_panels  # noqa: E402

SHOT_OPERATORS = ("shot_segment_add", "shot_segment_remove", "shot_segment_move", "shot_use_recipe",
                  "shot_parts_preset", "generate_shot", "reroll_segment", "continue_action", "inbetween",
                  "regenerate_parts")


class ListLayout(FakeLayout):
    """FakeLayout plus what the Shot panel uses: a UIList and separators."""

    def row(self, **_):
        return ListLayout(self.calls)

    column = box = row

    def separator(self, **_):
        pass

    def prop_enum(self, data, prop, value, **_):
        assert value in {i.identifier for i in data.bl_rna.properties[prop].enum_items}, value
        self.calls.append(("prop", prop))

    def template_list(self, list_id, _name, data, prop, active_data, active_prop, **_):
        assert list_id in dir(bpy.types), list_id
        assert prop in data.bl_rna.properties and active_prop in active_data.bl_rna.properties
        self.calls.append(("list", prop))


def draw(panel_cls):
    calls = []
    panel_cls.draw(SimpleNamespace(layout=ListLayout(calls)), bpy.context)
    return calls


def test_segment_list_generate_reroll_and_recipe(addon):
    for name in SHOT_OPERATORS:
        getattr(bpy.ops.salad, name).get_rna_type()  # registered
    s = bpy.context.scene.salad_shot
    for prompt, seconds in (("a person walks forward", 4.0), ("a person waves", 3.0), ("a person runs off", 2.0)):
        assert bpy.ops.salad.shot_segment_add() == {"FINISHED"}
        s.segments[s.active_segment].prompt, s.segments[s.active_segment].seconds = prompt, seconds
    assert [r.prompt for r in s.segments] == ["a person walks forward", "a person waves", "a person runs off"]
    s.active_segment = 2
    assert bpy.ops.salad.shot_segment_move(direction="UP") == {"FINISHED"} and s.active_segment == 1
    assert [r.prompt for r in s.segments][1:] == ["a person runs off", "a person waves"]
    assert bpy.ops.salad.shot_segment_remove() == {"FINISHED"}
    assert [r.prompt for r in s.segments] == ["a person walks forward", "a person waves"]
    s.segments[1].use_seed, s.segments[1].seed = True, 42
    s.seed = 5
    assert ("list", "segments") in draw(shot_panels.SALAD_PT_shot)

    assert bpy.ops.salad.generate_shot(blocking=True) == {"FINISHED"}
    req = addon.worker.ops[-1]
    assert req["segments"] == [{"prompt": "a person walks forward", "seconds": 4.0},
                               {"prompt": "a person waves", "seconds": 3.0, "seed": 42}] and req["seed"] == 5
    body = bpy.data.objects["SALAD Body"]
    shot = body.animation_data.action
    bpy.context.view_layer.objects.active = body
    calls = draw(shot_panels.SALAD_PT_shot)
    assert ("op", "salad.reroll_segment") in calls and ("op", "salad.shot_use_recipe") in calls

    s.reroll_segment = 2
    assert bpy.ops.salad.reroll_segment(seed=7, blocking=True) == {"FINISHED"}
    assert [seg.get("seed") for seg in addon.worker.ops[-1]["segments"]] == [1050, 7]
    assert body.animation_data.action != shot and shot.name in bpy.data.actions
    s.segments.clear()
    assert bpy.ops.salad.shot_use_recipe() == {"FINISHED"}
    assert [(r.prompt, r.seconds, r.use_seed, r.seed) for r in s.segments] == [
        ("a person walks forward", 4.0, True, 1050), ("a person waves", 3.0, True, 7)]

    n = len(bpy.data.actions)
    s.segments[0].prompt = ""
    with pytest.raises(RuntimeError, match="Segment 1 has no prompt"):
        bpy.ops.salad.generate_shot(blocking=True)
    s.segments[0].prompt = "a person walks"
    s.segments[0].seconds = 299.0  # the field allows it; the total does not
    with pytest.raises(RuntimeError, match="the limit is 300 s"):
        bpy.ops.salad.generate_shot(blocking=True)
    assert len(bpy.data.actions) == n


def test_continue_inbetween_and_parts_buttons(addon):
    scene = bpy.context.scene
    walk = synthetic_walk(60)
    obj = armature.create_smpl22_armature("Mocap", walk, with_mesh=False)
    b = actions.apply_motion(obj, synthetic_walk(50), prompt="b", bone_map="smpl22", start_frame=1)
    a = actions.apply_motion(obj, walk, prompt="a", bone_map="smpl22", start_frame=1, seed=3)
    bpy.context.view_layer.objects.active = obj
    s = scene.salad_shot
    assert ("op", "salad.continue_action") in draw(shot_panels.SALAD_PT_shot_continue)
    parts_calls = draw(shot_panels.SALAD_PT_regenerate_parts)
    assert ("op", "salad.shot_parts_preset") in parts_calls and ("prop", "parts") in parts_calls
    assert shot_panels.SALAD_PT_regenerate_parts.bl_parent_id == "SALAD_PT_edit"

    s.parts_prompt = "a person waves"
    before = snapshot()
    with pytest.raises(RuntimeError, match="No body part selected"):
        bpy.ops.salad.regenerate_parts(blocking=True)
    assert snapshot() == before and not addon.worker.ops
    assert bpy.ops.salad.shot_parts_preset(preset="upper") == {"FINISHED"}
    assert s.parts == {"torso", "left_arm", "right_arm", "head"}
    assert bpy.ops.salad.regenerate_parts(blocking=True) == {"FINISHED"}
    req = addon.worker.ops[-1]
    assert req["source_prompt"] == "a"  # a plain generation: regenerated from its recipe
    assert req["prompt"] == "a person waves" and sorted(req["parts"]) == sorted(s.parts)  # the preset's parts

    actions.assign_action(obj, a, a.slots[0] if hasattr(a, "slots") else None)
    s.continue_prompt, s.continue_seconds = "a person sits down", 2.0
    assert bpy.ops.salad.continue_action(blocking=True) == {"FINISHED"}
    req = addon.worker.ops[-1]
    assert (req["op"], req["prompt"], req["seconds"]) == ("continue", "a person sits down", 2.0)

    actions.assign_action(obj, a, a.slots[0] if hasattr(a, "slots") else None)
    s.action_a, s.action_b, s.inbetween_prompt, s.inbetween_seconds = a, b, "a person turns", 1.0
    assert bpy.ops.salad.inbetween(blocking=True) == {"FINISHED"}
    req = addon.worker.ops[-1]
    assert (req["op"], req["prompt"], req["seconds"]) == ("inbetween", "a person turns", 1.0)
    # A (60 model frames) then B (50), each sampled over its whole range (24 fps keys back to 20 fps: 59 / 49)
    assert len(req["joints_a"]) > len(req["joints_b"]) > 45
    new = obj.animation_data.action
    assert metadata.shot_recipe(metadata.action_meta(new))["sources"] == [a.name, b.name]
    s.action_b = None
    with pytest.raises(RuntimeError, match="Pick both actions"):
        bpy.ops.salad.inbetween(blocking=True)


def test_shot_buttons_are_greyed_out_saying_why_with_nothing_to_act_on(addon):
    """ui5: with the default scene's cube selected, Continue / In-between / Regenerate Parts / Generate Shot were
    clickable (only the click said what was missing); now their polls fail with the reason as the tooltip."""
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    shot = bpy.context.scene.salad_shot
    shot.parts = {"left_arm"}
    cases = (("continue_action", "'Cube' is not an armature"), ("regenerate_parts", "'Cube' is not an armature"),
             ("inbetween", "'Cube' is not an armature"), ("generate_shot", r"Add a segment \(\+\)"))
    for name, why in cases:
        assert not getattr(bpy.ops.salad, name).poll(), name
        with pytest.raises(RuntimeError, match=why):
            getattr(bpy.ops.salad, name)(blocking=True)
    walk = synthetic_walk(60)
    obj = armature.create_smpl22_armature("Rig", walk, with_mesh=False)
    bpy.context.view_layer.objects.active = obj
    for name, why in (("continue_action", "'Rig' plays no action to continue"),
                      ("regenerate_parts", "'Rig' plays no action to regenerate"),
                      ("inbetween", "Pick both actions")):
        with pytest.raises(RuntimeError, match=why):
            getattr(bpy.ops.salad, name)(blocking=True)
    act = actions.apply_motion(obj, walk, prompt="a", bone_map="smpl22", start_frame=1)
    shot.parts = set()
    assert bpy.ops.salad.continue_action.poll()
    assert not bpy.ops.salad.regenerate_parts.poll()  # nothing ticked
    shot.parts = {"left_arm"}
    shot.action_a = shot.action_b = act
    assert bpy.ops.salad.regenerate_parts.poll() and bpy.ops.salad.inbetween.poll()
    assert bpy.ops.salad.shot_segment_add() == {"FINISHED"} and bpy.ops.salad.generate_shot.poll()
    assert cube.name == "Cube"


def test_every_sub_panel_of_edit_motion_starts_closed():
    """ui5: Regenerate Parts alone was open by default — eleven rows of part toggles under 'Select an armature that
    plays an action' in a new file, pushing the Shot panel out of the sidebar; the guide says every edit kind starts
    closed."""
    from salad_blender import action_library, panels

    subs = [c for m in (panels, shot_panels, action_library) for c in vars(m).values()
            if isinstance(c, type) and issubclass(c, bpy.types.Panel)
            and getattr(c, "bl_parent_id", "") == "SALAD_PT_edit"]
    assert shot_panels.SALAD_PT_regenerate_parts in subs and len(subs) >= 6
    assert all("DEFAULT_CLOSED" in getattr(c, "bl_options", set()) for c in subs), \
        [c.__name__ for c in subs if "DEFAULT_CLOSED" not in getattr(c, "bl_options", set())]


def duration_props():  # noqa: ANN201
    """A new segment and every Duration property: (class, name, RNA property)."""
    shot = bpy.context.scene.salad_shot
    segment = shot.segments.add()
    props = [(type(segment), "seconds"), (type(shot), "continue_seconds"), (type(shot), "inbetween_seconds"),
             (type(bpy.context.scene.salad), "seconds")]
    return segment, [(cls, name, cls.bl_rna.properties[name]) for cls, name in props]


def _shown(prop, value: float) -> str:
    """What a float field shows (Blender's own unit formatting for a time unit, else the number at its precision)."""
    if prop.unit in ("TIME", "TIME_ABSOLUTE"):
        return bpy.utils.units.to_string("METRIC", "TIME", value, precision=prop.precision)
    return f"{value:.{prop.precision}f}"


def test_every_duration_reads_in_seconds(addon):
    """audit10 (Blender 4.3 window): with the TIME_ABSOLUTE unit (ui5) Blender picks the scale per value, so one
    panel read a 0.5 s gap as '500 ms', a 0.4 s continuation as '400 ms', 2.2 s as '2.2 s' and a 72.6 s segment as
    '1.21 min'. Every Duration is now plain seconds, named so, showing the value held to the hundredth (audit9:
    2.2 s must not read '2 s')."""
    for cls, name, prop in duration_props()[1]:
        assert prop.name == "Duration (s)", (cls.__name__, name)
        for value in (0.2, 0.4, 0.5, 2.2, 3.4, 4.0, 9.8, 12.6, 59.8, 72.6, 300.0):
            shown = _shown(prop, value)
            assert float(shown) == pytest.approx(value, abs=1e-9), (cls.__name__, name, value, shown)


class RowLayout(FakeLayout):
    """A segment row's layout: records split factors and, per part, its props and labels (with their icons)."""

    def __init__(self, calls, part="row"):
        super().__init__(calls)
        self.part = part

    def split(self, factor=0.0, **_):
        self.calls.append(("split", factor))
        return RowLayout(self.calls, "split")

    def row(self, **_):
        n = sum(1 for c in self.calls if c[0] == "part")
        self.calls.append(("part", n))
        return RowLayout(self.calls, f"part{n}")

    def prop(self, data, name, **_):
        super().prop(data, name)
        self.calls.append((self.part, "prop", name))

    def label(self, text="", icon="NONE", **_):
        self.calls.append((self.part, "label", text, icon))


def test_a_segment_with_its_own_seed_still_shows_its_duration(addon):
    """audit9 (Blender 4.3 screenshot): a segment with its own seed showed '#42' (or '#…') where its duration was —
    the seed's text took the duration's column. The row now marks an own seed with a lock icon (the seed is in the
    box below) and gives the duration the room '12.6 s' and the icon need (split 0.62 of the default sidebar: audit11,
    '172.6 s' and the lock fit in Blender 4.3's default sidebar). audit11: the duration shows its unit ('12.6 s'; a
    bare '72.60' was the only unit-less duration on the panel)."""
    from salad_blender import shot_panels

    shot = bpy.context.scene.salad_shot
    seg = shot.segments.add()
    seg.prompt, seg.seconds, seg.use_seed, seg.seed = "a person waves", 12.6, True, 1234567
    calls = []
    shot_panels.SALAD_UL_shot_segments.draw_item(None, bpy.context, RowLayout(calls), shot, seg, 0, shot,
                                                 "active_segment", 1)
    factor = next(c[1] for c in calls if c[0] == "split")
    assert factor <= 0.62
    right = [c[1:] for c in calls if c[0] == "part2"]  # the split's second part: number row is part1 inside part0
    assert ("label", "12.6 s", "NONE") in right and not any("#" in str(c) for c in right), right
    assert ("label", "", "LOCKED") in right


def test_end_on_last_segment_is_on_the_panel_sent_and_restored_from_a_recipe(addon):
    """The Shot panel's 'End on Last Segment' (on by default; its tooltip says the cost and how to keep every
    frame when appending) reaches the compose request either way, and 'Use This Shot's Segments' sets it back as
    the shot was made — off for a shot whose recipe predates the option."""
    s = bpy.context.scene.salad_shot
    assert s.trim_last is True and ("prop", "trim_last") in draw(shot_panels.SALAD_PT_shot)
    tip = type(s).bl_rna.properties["trim_last"].description
    assert "a segment added after it later re-makes" in tip and "Untick to keep every frame" in tip
    for prompt in ("a person walks forward", "a person waves"):
        assert bpy.ops.salad.shot_segment_add() == {"FINISHED"}
        s.segments[s.active_segment].prompt = prompt
    assert bpy.ops.salad.generate_shot(blocking=True) == {"FINISHED"}
    assert addon.worker.ops[-1]["trim_last"] is True
    body = bpy.data.objects["SALAD Body"]
    trimmed = body.animation_data.action
    s.trim_last = False
    assert bpy.ops.salad.generate_shot(blocking=True) == {"FINISHED"}
    assert addon.worker.ops[-1]["trim_last"] is False
    assert body.animation_data.action == trimmed  # the second shot went onto a new body
    bpy.context.view_layer.objects.active = body
    assert bpy.ops.salad.shot_use_recipe() == {"FINISHED"} and s.trim_last is True
    recipe = json.loads(trimmed["salad_shot"])
    del recipe["trim_last"]  # as recorded before the option existed: made untrimmed
    trimmed["salad_shot"] = json.dumps(recipe)
    assert bpy.ops.salad.shot_use_recipe() == {"FINISHED"} and s.trim_last is False
