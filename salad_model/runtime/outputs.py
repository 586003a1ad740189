"""Output files that are complete or absent: planned and checked before any work, written atomically.

Each file is written to a hidden temporary file in its own folder and renamed over the target
(``os.replace`` is atomic on one file system), so a reader never sees a half-written npz. All the
files of one result are renamed together under an exclusive lock on their folder (POSIX ``flock``),
so two processes writing the same ``--out`` leave an npz and a BVH from the same run. Torch-free.

Naming: ``--out`` names the result, with or without a known suffix: ``walk``, ``walk.npz`` and
``walk.bvh`` all mean ``walk.npz`` (+ ``walk.bvh``, ``walk.gif`` when asked), so no file of a result
can overwrite another of the same result; other suffixes are kept (``a.b`` → ``a.b.npz``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

KNOWN_SUFFIXES = (".npz", ".bvh", ".gif", ".mp4")


class OutputError(ValueError):
    """An output path that cannot or must not be written; the message names it."""


def output_stem(out: Path | str) -> Path:
    """``--out`` without a known result suffix (``walk.bvh`` → ``walk``)."""
    out = Path(out).expanduser()
    if str(out).endswith(("/", os.sep)) or out.name in ("", ".", ".."):
        raise OutputError(f"--out must name a file, not a folder: {out}")
    return out.with_suffix("") if out.suffix.lower() in KNOWN_SUFFIXES else out


def with_ext(stem: Path, ext: str) -> Path:
    """``stem`` + ``ext`` appended (not replacing: ``a.b`` + ``.npz`` = ``a.b.npz``)."""
    return stem.with_name(stem.name + ext)


def check_targets(paths: list[Path], force: bool = False) -> None:
    """Refuse folders, existing files (unless ``force``) and unwritable locations, before any work.

    Creates missing parent folders and proves each folder writable by creating and removing a file.
    """
    seen = set()
    for p in paths:
        p = Path(p)
        if p in seen:
            raise OutputError(f"two outputs would be written to {p}")
        seen.add(p)
        if p.is_dir():
            raise OutputError(f"{p} is a folder; --out must name a file")
        if p.exists() and not force:
            raise OutputError(f"{p} exists; choose another --out or pass --force to overwrite it")
        parent = p.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise OutputError(f"cannot write {p}: {parent} is not a folder") from exc
        except OSError as exc:
            raise OutputError(f"cannot create the folder {parent}: {exc.strerror or exc}") from exc
        try:
            fd, probe = tempfile.mkstemp(dir=parent, prefix=".salad-probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise OutputError(f"cannot write into {parent}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: renames stay atomic per file
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _temp_beside(target: Path) -> Path:
    """A new empty hidden file next to ``target`` (same suffix), made with the user's umask like any file they
    write: ``mkstemp`` makes 0600, so every result was unreadable to other accounts (a shared project folder)."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}{target.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {target}")


def write_outputs(writers: dict[Path, Callable[[Path], None]], force: bool = False) -> list[Path]:
    """Call each ``writer(tmp_path)`` (tmp keeps the target's suffix), then rename all into place.

    Returns the written paths in order. On any failure no target is touched and temporaries are removed.
    Without ``force``, a target that appeared meanwhile (another process) is not overwritten.
    """
    temps: dict[Path, Path] = {}
    try:
        for target, write in writers.items():
            target = Path(target)
            tmp = _temp_beside(target)
            temps[target] = tmp
            write(tmp)
        folders = sorted({t.parent.resolve() for t in temps})
        with contextlib.ExitStack() as stack:
            for folder in folders:
                stack.enter_context(_folder_lock(folder))
            if not force:
                taken = [t for t in temps if t.exists()]
                if taken:
                    raise OutputError(f"{taken[0]} was created meanwhile; pass --force to overwrite it")
            for target, tmp in temps.items():
                os.replace(tmp, target)
        return list(temps)
    finally:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
