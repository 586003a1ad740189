"""What ``tools/batch.py`` writes: .bvh and .fbx exports, the .blend, each file all or nothing, and the out folder.

Blender's exporters are add-on operators on the active selection; this is the only place the batch selects.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def export_bvh(arm, path: Path, scene) -> None:  # noqa: ANN001 - bpy objects
    import addon_utils
    import bpy

    try:
        bpy.ops.export_anim.bvh.get_rna_type()
    except KeyError:  # Blender's BVH add-on is off (ships with Blender, also in the bpy wheel)
        addon_utils.enable("io_anim_bvh", default_set=False)
    _activate(arm)
    res = bpy.ops.export_anim.bvh(filepath=str(path), check_existing=False, frame_start=scene.frame_start,
                                  frame_end=scene.frame_end, rotate_mode="NATIVE", root_transform_only=False)
    if "FINISHED" not in res:
        raise RuntimeError(f"BVH export failed: {res}")


def export_fbx(arm, path: Path) -> None:  # noqa: ANN001
    import bpy

    _activate(arm, with_children=True)
    res = bpy.ops.export_scene.fbx(filepath=str(path), check_existing=False, use_selection=True,
                                   object_types={"ARMATURE", "MESH"}, add_leaf_bones=False, bake_anim=True,
                                   bake_anim_use_all_actions=False, bake_anim_use_nla_strips=False)
    if "FINISHED" not in res:
        raise RuntimeError(f"FBX export failed: {res}")


def _activate(obj, with_children: bool = False) -> None:  # noqa: ANN001
    import bpy

    vl = bpy.context.view_layer
    for o in vl.objects:
        o.select_set(False)
    obj.select_set(True)
    if with_children:
        for c in obj.children:
            c.select_set(True)
    vl.objects.active = obj


def save_blend(path: Path) -> None:
    """Save the .blend without Blender's ``.blend1`` backup of the file it replaces: ``--force`` means overwrite,
    and a batch run leaves only its outputs (the user's "Save Versions" preference is put back afterwards)."""
    import bpy

    prefs = bpy.context.preferences.filepaths
    versions = prefs.save_version
    prefs.save_version = 0
    try:
        bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)
    finally:
        prefs.save_version = versions


def write_output(path: Path, write, written: list[Path]) -> None:  # noqa: ANN001 - write(path) makes the file
    """Write through a temporary name, renamed once complete (Blender's exporters write in place: a full disk
    left a truncated file under the final name). The .blend: Blender saves so itself. Errors: one line."""
    tmp = path if path.suffix == ".blend" else path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        write(tmp)
        if tmp != path:
            os.replace(tmp, path)
    except (RuntimeError, OSError) as exc:
        if tmp != path:
            tmp.unlink(missing_ok=True)
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("Location:")]
        why = re.sub(r"^(Error: )?(Python: )?(\w*Error: )?(\[Errno \d+\] )?", "", lines[-1] if lines else "")
        done = f" ({', '.join(p.name for p in written)} written)" if written else ""
        raise OSError(f"cannot write {path.name}: {getattr(exc, 'strerror', None) or why or exc}{done}") from None


def check_out_folder(out: Path) -> str | None:
    """Why ``--out`` cannot be the output folder (a file, not creatable, not writable), else None."""
    import tempfile

    if out.exists() and not out.is_dir():
        return f"--out {out} is a file; it must be a folder (it will hold one .blend per prompt)"
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".salad-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write into --out {out}: {exc.strerror or exc}"
    return None
