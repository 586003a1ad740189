"""The model side's copies that add-on tests compare against, wherever the model package keeps them.

``salad_model`` is being reorganised into subpackages; this finds ``motion_process`` at its new
place (``salad_model.motion``) or its old one, so agreement tests do not depend on the layout.
"""

import importlib


def _first(*names: str):
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise ModuleNotFoundError(f"none of {names}")


motion_process = _first("salad_model.motion.motion_process", "salad_model.motion_process")
