"""Get Official Model: run ``python -m salad_model download official`` in the worker's environment.

Why a subprocess of the worker's Python: the download and its verification need torch and the model
package, which live in the model environment, never in Blender's Python. The job is a :class:`SetupJob`
(polled, cancellable; cancelling kills the download, whose finished files and ``.part`` file are resumed
next time) that reads the command's ``[ 42%]`` progress lines. Online access is checked before anything
starts. No bpy here: the preferences and operators pass paths and the online flag in.
"""

from __future__ import annotations

import json
import os
import queue
import re
from pathlib import Path

from .setup_env import SetupError, SetupJob, Step
from .setup_env import check_online as setup_check_online

MARKER = "salad_official.json"  # written by salad_model.fetch.official once the model has loaded strictly
DATASETS = {"t2m": "HumanML3D", "kit": "KIT-ML"}
_PERCENT = re.compile(r"^\[\s*(\d{1,3})%\]")


def official_model_path(root: str | os.PathLike, dataset: str = "t2m") -> str:
    """The verified model folder under ``root``, or "" while there is none (never a partial download)."""
    marker = Path(root) / dataset / MARKER
    try:
        model = json.loads(marker.read_text(encoding="utf-8"))["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    path = marker.parent / str(model)
    return str(path) if path.is_dir() else ""


def check_online(online_access: bool, overridden: bool = False) -> None:
    """The set-up's online check, worded for the official model's download."""
    setup_check_online(online_access, overridden, target="the official model", button="Get Official Model",
                       downloads="the authors' checkpoints from Google Drive and the CLIP text model from "
                                 "Hugging Face")


class DownloadJob(SetupJob):
    """One step (the download command); progress from its percentage lines; download-worded messages."""

    def __init__(self, python: str, root: str | os.PathLike, dataset: str, drive_folder: str = "") -> None:
        self.root, self.dataset = str(root), dataset
        argv = [str(python), "-m", "salad_model", "download", "official", "--dataset", dataset, "--dir", str(root)]
        if drive_folder:
            argv += ["--drive-folder", drive_folder]
        super().__init__([Step(f"Getting the official {DATASETS[dataset]} model", argv)])

    def _drain(self) -> None:
        while True:
            try:
                line = self._lines.get_nowait().strip()
            except queue.Empty:
                return
            if not line:
                continue
            self.log.append(line)
            self.status = line[:120]
            m = _PERCENT.match(line)
            if m:
                self.progress = min(int(m.group(1)), 99) / 100

    def _start_next(self) -> None:
        super()._start_next()
        if self.state == "done":
            path = official_model_path(self.root, self.dataset)
            self.status = self.message = (f"Official {DATASETS[self.dataset]} model ready: {path}" if path else
                                          "The download finished but no verified model was found")
            if not path:
                self.state = "failed"

    def _fail(self, message: str) -> None:
        error = next((ln[len("error: "):] for ln in reversed(self.log) if ln.startswith("error: ")), "")
        error = error.rstrip(".")  # the command's line is a sentence already
        super()._fail(f"Getting the official model failed: {error or message}. Nothing was changed; finished "
                      "files are kept and the next try resumes." if error else message)

    def cancel(self) -> None:
        super().cancel()
        self.status = self.message = "Download cancelled (the next 'Get Official Model' resumes it)."


def start_download(python: str, root: str | os.PathLike, dataset: str = "t2m", *, online_access: bool,
                   online_overridden: bool = False, drive_folder: str = "") -> DownloadJob:
    """Refuse when offline or without a worker environment (nothing started), else start the download."""
    check_online(online_access, online_overridden)
    if dataset not in DATASETS:
        raise SetupError(f"unknown dataset {dataset!r}")
    if not python:
        raise SetupError("No model environment yet: click 'Set Up Model Environment' first (the download "
                         "runs in that environment's Python).")
    return DownloadJob(python, root, dataset, drive_folder)


def official_root(package: str, create: bool = False) -> str:
    """Where the add-on keeps official models: the extension's user directory (like the environment)."""
    import bpy

    try:
        return bpy.utils.extension_path_user(package, path="official", create=create)
    except (ValueError, AttributeError):  # not installed as an extension (development checkout)
        return os.path.join(bpy.utils.user_resource("CONFIG", path="salad_motion", create=create), "official")
