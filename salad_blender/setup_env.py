"""Set up the model environment: a virtual environment with salad_model, torch & co., made on request.

Why a separate environment: Blender's Python must stay untouched (pip into it breaks Blender and
other add-ons, and is often read-only), and the model needs torch, which Blender does not ship. The
add-on only ever runs ``python -m venv`` (Blender's own interpreter creating a *new* environment)
and then the *new environment's* pip; every pip command is checked to run from inside the target
environment.

Network: only when the user clicks the button, and only when Blender's "Allow Online Access" is on
(``bpy.app.online_access``); the caller passes that flag in, so this module needs no bpy and tests
can drive it with harmless commands instead of pip.

Like the model jobs, :class:`SetupJob` is polled (a timer in the UI, a loop in tests): each step is a
subprocess whose output lines a reader thread queues; ``poll()`` never blocks.
"""

from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TORCH_INDEXES = {"default": None, "cpu": "https://download.pytorch.org/whl/cpu"}
# What "Set Up Model Environment" downloads, per torch build (the one figure the UI and docs quote). Measured
# 2026-12 on Linux x86-64 from pip's resolution: CPU torch ~0.19 GB + the model package's other
# dependencies ~0.22 GB; PyPI's torch with its CUDA libraries ~2.7-3.0 GB + the same 0.22 GB.
DOWNLOAD_SIZES = {"cpu": "about 0.4 GB", "default": "about 3 GB"}
DEFAULT_PACKAGE = "salad-blender"  # the distribution that ships salad_model (pyproject name)
BUNDLED_WHEEL_DIR = "model"  # inside the extension: the model package as one wheel (tools/build_extension.py)
BUNDLED_WHEEL_GLOB = f"{DEFAULT_PACKAGE.replace('-', '_')}-*.whl"


def default_package(addon_dir: str | os.PathLike = Path(__file__).parent) -> str:
    """What "Set up model environment" installs by default.

    Running from a source checkout (the add-on folder sits next to the project's ``pyproject.toml``):
    that folder, so pip builds the model package from the very code the add-on came with. An installed
    extension: the wheel it carries (same version as the add-on, demo weights included). Otherwise the
    distribution name; the preferences let users point at a wheel, folder or git URL instead.
    """
    addon = Path(addon_dir).resolve()
    try:
        text = (addon.parent / "pyproject.toml").read_text(encoding="utf-8")
        if f'name = "{DEFAULT_PACKAGE}"' in text:
            return str(addon.parent)
    except OSError:
        pass
    wheels = sorted((addon / BUNDLED_WHEEL_DIR).glob(BUNDLED_WHEEL_GLOB))
    return str(wheels[-1]) if wheels else DEFAULT_PACKAGE


class SetupError(Exception):
    """The environment cannot be set up now; the message says what to do."""


@dataclass
class Step:
    label: str
    argv: list[str]


def venv_python(venv_dir: str | os.PathLike) -> Path:
    """The interpreter inside a virtual environment (Scripts\\python.exe on Windows)."""
    d = Path(venv_dir)
    return d / "Scripts" / "python.exe" if os.name == "nt" else d / "bin" / "python"


def check_online(online_access: bool, overridden: bool = False, *, target: str = "the model environment",
                 button: str = "Set Up Model Environment", downloads: str | None = None) -> None:
    """Refuse network use unless Blender allows it (Preferences > System > Network); ``target``, ``button`` and
    ``downloads`` word the refusal for the job that asked (the set-up, the official model)."""
    if online_access:
        return
    if overridden:
        raise SetupError("Online access is disabled from the command line (--offline-mode): restart "
                         f"Blender without it to download {target}.")
    if downloads is None:
        downloads = (f"torch and the model package with pip: {DOWNLOAD_SIZES['cpu']} with the CPU-only torch "
                     f"build, {DOWNLOAD_SIZES['default']} with PyPI's")
    raise SetupError("Online access is disabled. Enable 'Allow Online Access' in Preferences > System > "
                     f"Network, then click '{button}' again (it downloads {downloads}).")


def plan_steps(venv_dir: str | os.PathLike, *, base_python: str | None = None,
               package: str = DEFAULT_PACKAGE, torch_index: str = "default") -> list[Step]:
    """The commands that build the environment: venv, pip upgrade, torch, the model package, a check."""
    base = base_python or sys.executable
    py = str(venv_python(venv_dir))
    if os.path.realpath(base) == os.path.realpath(py):
        raise SetupError("The base interpreter is the environment's own python; pick another one.")
    pip = [py, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    torch = [*pip, "install", "--progress-bar", "off", "torch"]
    url = TORCH_INDEXES.get(torch_index, torch_index if "://" in str(torch_index) else None)
    if url:
        torch += ["--index-url", url]
    steps = [
        Step("Creating the virtual environment", [base, "-m", "venv", str(venv_dir)]),
        Step("Updating pip", [*pip, "install", "--progress-bar", "off", "--upgrade", "pip"]),
        Step("Installing torch (large download)", torch),
        Step("Installing the SALAD model package", [*pip, "install", "--progress-bar", "off", package]),
        Step("Checking the environment", [py, "-c", "import salad_model.serving.worker, torch; print('ok', "
                                                    "torch.__version__)"]),
    ]
    check_plan(steps, venv_dir)
    return steps


def check_plan(steps: Sequence[Step], venv_dir: str | os.PathLike) -> None:
    """Every pip command must run from the target environment's interpreter, never Blender's."""
    py = os.path.realpath(venv_python(venv_dir))
    for s in steps:
        if "pip" in s.argv[1:3] and os.path.realpath(s.argv[0]) != py:
            raise SetupError(f"refusing to run pip outside the model environment: {' '.join(s.argv[:3])}")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "VIRTUAL_ENV"):
        env.pop(key, None)  # Blender's values would point the new interpreter at Blender's stdlib
    env.update(PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONIOENCODING="utf-8")
    return env


def _reader(stream, lines: queue.SimpleQueue) -> None:
    try:
        for raw in stream:
            lines.put(raw.decode("utf-8", "replace").rstrip())
    except (OSError, ValueError):
        pass


class SetupJob:
    """Runs steps one after another; ``poll()`` advances, ``cancel()`` kills the running step.

    ``state``: running → done | failed | cancelled; ``progress`` 0..1 by steps; ``status`` the step
    and its latest output line; ``log`` the last output lines (shown after a failure).
    """

    def __init__(self, steps: Sequence[Step], *, python: str | os.PathLike | None = None, log_lines: int = 200):
        if not steps:
            raise SetupError("nothing to do")
        self.steps = list(steps)
        self.python = str(python) if python else ""
        self.state = "running"
        self.index = -1
        self.progress = 0.0
        self.status = ""
        self.message = ""
        self.log: collections.deque[str] = collections.deque(maxlen=log_lines)
        self.started = time.monotonic()
        self._proc: subprocess.Popen | None = None
        self._lines: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_next()

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def _start_next(self) -> None:
        self.index += 1
        if self.index >= len(self.steps):
            self.state, self.progress = "done", 1.0
            self.status = self.message = (f"Model environment ready ({self.python})" if self.python
                                          else "Model environment ready")
            return
        step = self.steps[self.index]
        self.status = f"{step.label} ({self.index + 1}/{len(self.steps)})"
        self.log.append(f"$ {' '.join(step.argv)}")
        kw: dict = {"start_new_session": True} if os.name == "posix" else {
            "creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
            | getattr(subprocess, "CREATE_NO_WINDOW", 0)}
        try:
            self._proc = subprocess.Popen(step.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, env=_child_env(), **kw)
        except OSError as exc:
            self._fail(f"{step.label} could not start: {exc.strerror or exc} ({step.argv[0]})")
            return
        self._lines = queue.SimpleQueue()
        self._thread = threading.Thread(target=_reader, args=(self._proc.stdout, self._lines), daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line.strip():
                self.log.append(line)
                step = self.steps[self.index]
                self.status = f"{step.label} ({self.index + 1}/{len(self.steps)}): {line.strip()[:80]}"

    def poll(self) -> bool:
        """Advance (never blocks); True once finished."""
        while not self.finished and self._proc is not None:
            self._drain()
            code = self._proc.poll()
            if code is None:
                return False
            if self._thread is not None:
                self._thread.join(timeout=2.0)
            self._drain()
            self._proc.stdout.close()
            self._proc = None
            if code != 0:
                step = self.steps[self.index]
                last = next((ln for ln in reversed(self.log) if ln.strip() and not ln.startswith("$ ")), "")
                self._fail(f"{step.label} failed (exit code {code}): {last[:200]}. Nothing in Blender was "
                           "changed; fix the problem (network, disk space, package name in the preferences) "
                           "and click 'Set Up Model Environment' again.")
                return True
            self.progress = (self.index + 1) / len(self.steps)
            self._start_next()
        return self.finished

    def cancel(self) -> None:
        if self.finished:
            return
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                if os.name == "posix":
                    os.killpg(proc.pid, signal.SIGTERM)
                else:
                    proc.terminate()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
        self._proc = None
        self.state = "cancelled"
        self.status = self.message = "Environment set-up cancelled (a half-made environment is reused next time)."

    def wait(self, timeout: float | None = None, interval: float = 0.05) -> SetupJob:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"environment set-up not finished after {timeout} s ({self.status})")
            time.sleep(interval)
        return self

    def _fail(self, message: str) -> None:
        self.state = "failed"
        self.status = self.message = message


def start_setup(venv_dir: str | os.PathLike, *, online_access: bool, online_overridden: bool = False,
                base_python: str | None = None, package: str = DEFAULT_PACKAGE, torch_index: str = "default",
                steps: Sequence[Step] | None = None) -> SetupJob:
    """Check online access, plan (or take) the steps, and start the first one."""
    check_online(online_access, online_overridden)
    if not str(package).strip():
        raise SetupError("Set the model package to install (a pip requirement, wheel, folder or git URL).")
    plan = list(steps) if steps is not None else plan_steps(venv_dir, base_python=base_python,
                                                             package=package, torch_index=torch_index)
    check_plan(plan, venv_dir)
    return SetupJob(plan, python=venv_python(venv_dir))


def managed_venv_dir(package: str, create: bool = False) -> str:
    """The add-on's own environment folder: the extension's user directory (Blender 4.2+)."""
    import bpy

    try:
        return bpy.utils.extension_path_user(package, path="venv", create=create)
    except (ValueError, AttributeError):  # not installed as an extension (development checkout)
        return os.path.join(bpy.utils.user_resource("CONFIG", path="salad_motion", create=create), "venv")


def managed_python(package: str) -> str | None:
    """The managed environment's interpreter if it exists."""
    p = venv_python(managed_venv_dir(package))
    return str(p) if p.is_file() else None
