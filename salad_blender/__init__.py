"""SALAD Motion for Blender: text to 3D human animation, edited by editing the text.

The add-on is a thin client: the model runs in a separate worker process (its own Python with torch),
and this package only needs bpy and numpy. bpy is imported inside :func:`register` so the pure-numpy
modules (``smpl22``, ``facing``, ``retarget``, ``rigs``, ``heatmap``, ``client``, ``setup_env``,
``inputs``, ``metadata``, ``real_motion``, ``worker_pool``, ``motion_job``, ``shot_inputs``, ``ui_state``)
import without Blender, e.g. in the model environment's tests.

Extension metadata: ``blender_manifest.toml`` next to this file (Blender 4.2+).
"""

from __future__ import annotations

__version__ = "0.1.0"

# Blender before 4.2 has no extensions: it unpacks the zip into its add-ons folder as a legacy add-on (the
# zip keeps everything in one salad_motion/ folder, so it lands as one package) and reads this bl_info,
# then register() refuses with a clear message. Blender 4.2+ ignores bl_info for blender_manifest.toml.
# Keep it a literal with no blank line inside: old Blenders parse it without importing the module.
bl_info = {
    "name": "SALAD Motion",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "category": "Animation",
    "description": "Text to 3D human animation, edited by editing the text",
    "warning": "Needs Blender 4.2 or newer",
}

MIN_BLENDER = (4, 2, 0)

_registered: list = []


def blender_version_problem(version: tuple) -> str | None:
    """Why this Blender cannot run the add-on (None when it can): registering on 3.x-4.1 fails on APIs they lack."""
    if tuple(version[:3]) >= MIN_BLENDER:
        return None
    have = ".".join(str(v) for v in version[:3])
    return (f"SALAD Motion needs Blender 4.2 or newer (this is Blender {have}); install Blender 4.2 LTS or later "
            "and install the zip there with Get Extensions > Install from Disk")


def register() -> None:
    """Register preferences, scene settings, operators and panels (the add-on system calls this)."""
    import bpy

    problem = blender_version_problem(tuple(bpy.app.version))
    if problem:
        raise RuntimeError(problem)  # Blender shows it as the enable operator's error report

    from . import (
        action_library,
        keymaps,
        menus,
        operators,
        panels,
        preferences,
        preview_actions,
        runner,
        settings,
        shot_operators,
        shot_panels,
        shot_settings,
        video_operators,
    )

    for cls in (*preferences.classes, *settings.classes, *operators.classes, *panels.classes,
                *action_library.classes, *menus.classes, *shot_settings.classes, *shot_operators.classes,
                *shot_panels.classes, *video_operators.classes, *preview_actions.CLASSES, *keymaps.CLASSES):
        bpy.utils.register_class(cls)
        _registered.append(cls)
    settings.register()
    shot_settings.register()
    runner.register()
    preview_actions.register()
    panels.register_status()
    menus.register()
    keymaps.register()


def unregister() -> None:
    """Stop jobs and the worker, then unregister everything in reverse order."""
    import bpy

    from . import keymaps, menus, panels, preview_actions, runner, settings, shot_settings

    keymaps.unregister()
    menus.unregister()
    panels.unregister_status()
    preview_actions.unregister()
    runner.unregister()
    shot_settings.unregister()
    settings.unregister()
    while _registered:
        bpy.utils.unregister_class(_registered.pop())
