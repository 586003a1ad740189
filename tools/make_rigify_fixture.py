"""Build tests/data/rigify_human.blend: Rigify's Human metarig, generated, saved compressed.

Needs a Blender with Rigify (the bpy wheel has none), e.g. the real Blender 4.3 of blender-gui:

    ../shared/tools/blender-gui tools/make_rigify_fixture.py

Runs inside Blender; writes into the checkout ($PROJECT, or the current directory) and quits.
"""

import os

import addon_utils
import bpy

rigify = next(m.__name__ for m in addon_utils.modules() if m.__name__.split(".")[-1] == "rigify")
addon_utils.enable(rigify, default_set=True)
for obj in list(bpy.data.objects):
    bpy.data.objects.remove(obj)
bpy.ops.object.armature_human_metarig_add()
meta = bpy.context.view_layer.objects.active
bpy.ops.pose.rigify_generate()
rig = next(o for o in bpy.data.objects if o.type == "ARMATURE" and o is not meta)
bpy.data.objects.remove(meta)  # the metarig is not what animators pose
for arm in list(bpy.data.armatures):
    if arm.users == 0:
        bpy.data.armatures.remove(arm)
bpy.context.view_layer.objects.active = rig
bpy.context.preferences.filepaths.save_version = 0  # no .blend1 backup beside the fixture
out = os.path.join(os.environ.get("PROJECT", os.getcwd()), "tests", "data", "rigify_human.blend")
bpy.ops.wm.save_as_mainfile(filepath=out, compress=True, copy=True)
print(f"saved {out} ({os.path.getsize(out)} bytes; Blender {bpy.app.version_string})")
os._exit(0)  # quit_blender() does not end a windowed Blender from a start-up script
