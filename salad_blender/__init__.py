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

_registered: list = []


def register() -> None:
    """Register preferences, scene settings, operators and panels (the add-on system calls this)."""
    import bpy

    from . import (
        action_library,
        menus,
        operators,
        panels,
        preferences,
        runner,
        settings,
        shot_operators,
        shot_panels,
        shot_settings,
        video_operators,
    )

    for cls in (*preferences.classes, *settings.classes, *operators.classes, *panels.classes,
                *action_library.classes, *menus.classes, *shot_settings.classes, *shot_operators.classes,
                *shot_panels.classes, *video_operators.classes):
        bpy.utils.register_class(cls)
        _registered.append(cls)
    settings.register()
    shot_settings.register()
    runner.register()
    panels.register_status()
    menus.register()


def unregister() -> None:
    """Stop jobs and the worker, then unregister everything in reverse order."""
    import bpy

    from . import menus, panels, runner, settings, shot_settings

    menus.unregister()
    panels.unregister_status()
    runner.unregister()
    shot_settings.unregister()
    settings.unregister()
    while _registered:
        bpy.utils.unregister_class(_registered.pop())
