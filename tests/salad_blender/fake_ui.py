"""A recording stand-in for bpy.types.UILayout: draw() code runs headless and every property and
operator name it uses is checked against Blender's RNA."""

import bpy


class FakeLayout:
    """Records what a draw() call asks for and checks every property and operator name exists."""

    def __init__(self, calls):
        self.calls = calls
        self.enabled, self.scale_y, self.use_property_split = True, 1.0, False

    def row(self, **_):
        return FakeLayout(self.calls)

    column = box = row

    def prop(self, data, name, **_):
        assert name in data.bl_rna.properties, name
        self.calls.append(("prop", name))

    def operator(self, idname, **_):
        mod, name = idname.split(".")
        rna = getattr(getattr(bpy.ops, mod), name).get_rna_type()
        self.calls.append(("op", idname))
        return FakeOpProps(rna)

    def label(self, text="", **_):
        self.calls.append(("label", text))

    def progress(self, factor=0.0, type="BAR", text=""):  # noqa: A002 - Blender's keyword
        assert 0.0 <= factor <= 1.0
        self.calls.append(("progress", text))

    def template_icon(self, icon_value=0, scale=1.0):
        self.calls.append(("icon", icon_value))


class FakeOpProps:
    def __init__(self, rna):
        object.__setattr__(self, "_rna", rna)

    def __setattr__(self, key, value):
        prop = self._rna.properties[key]  # KeyError: a typo in the panel
        if prop.type == "ENUM":
            assert value in prop.enum_items.keys(), (key, value)
