"""sha256 checks of the weights we load: published pins, and the hashes recorded when a model was downloaded.

Third-party weights with a published hash (MiniLM's package file, CLIP's hub file) are pinned in code or
config and checked before loading. The SALAD authors publish no hashes for their Drive files, so
``download official`` records every file's sha256 in the download's ``salad_official.json`` and each later
load checks the files against that record: trust on first use. It catches a file that changed or was
swapped after the download, not a file that was already wrong on Drive (only strict loading checks those).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MARKER = "salad_official.json"  # written by salad_model.fetch.official once the model has loaded strictly
WEIGHT_SUFFIXES = frozenset({".tar", ".bin", ".safetensors", ".npy", ".npz", ".pt", ".pth", ".ckpt", ".h5",
                             ".msgpack", ".onnx"})

_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) → sha256, within one process


class IntegrityError(ValueError):
    """A weights file is not the one that was pinned or recorded; the message names file, expected and actual."""


def sha256_file(path: Path) -> str:
    """The file's sha256; hashed once per process while its size and modification time stay the same."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        digest = _DIGESTS[key] = h.hexdigest()
    return digest


MODEL_CONFIGS = ("config.json", "opt.txt")  # what makes a folder a model folder (ours, the official layout)


def weights_digest(folder: Path) -> str:
    """One sha256 over a model folder's weights and config (each file's own sha256, with its relative path).

    Why: results cached by model *folder* went stale when other weights were exported into the same folder;
    keyed by this digest they are recomputed. Files other than weights and configs (READMEs, logs) are left
    out, so editing a model card keeps the cache. An empty string for a folder that does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return ""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and (p.suffix.lower() in WEIGHT_SUFFIXES or p.name in MODEL_CONFIGS):
            h.update(f"{p.relative_to(folder).as_posix()}\0{sha256_file(p)}\n".encode())
    return h.hexdigest()


def check_sha256(path: Path, expected: str, remedy: str) -> None:
    """Raise IntegrityError naming the file, the expected and the actual hash, and what to do."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"Model weights not found: {path}")
    actual = sha256_file(path)
    if actual != expected.lower():
        raise IntegrityError(f"{path} has sha256 {actual}, expected {expected}: {remedy}")


def download_record(model_dir: Path) -> tuple[Path, dict] | None:
    """The download record (root folder, marker) of a model folder published by ``download official``."""
    model_dir = Path(model_dir).resolve()
    for root in list(model_dir.parents)[:4]:
        marker = root / MARKER
        if not marker.is_file():
            continue
        try:
            record = json.loads(marker.read_text(encoding="utf-8"))
            recorded_model = (root / record["model"]).resolve()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{marker} is unreadable ({exc}); delete {root} and download the model "
                                 "again.") from exc
        if recorded_model == model_dir:
            return root, record
    return None


def check_download(model_dir: Path) -> bool:
    """Check a downloaded official model against the sha256 recorded at download (trust on first use).

    Returns False for a folder that was not published by ``download official`` (nothing recorded to
    check); raises IntegrityError for a recorded file that is missing or changed, or a weights file in
    the download that was never recorded (it could be loaded instead of a checked one).
    """
    found = download_record(model_dir)
    if found is None:
        return False
    root, record = found
    files = record.get("files")
    again = (f"delete {root} and run `python -m salad_model download official --dataset "
             f"{record.get('dataset', 't2m')}` again")
    if not isinstance(files, dict) or not files:
        raise IntegrityError(f"{root / MARKER} records no file hashes; {again}.")
    for rel, meta in sorted(files.items()):
        path = root / rel
        if not path.is_file():
            raise IntegrityError(f"{path} was recorded at download but is missing; {again}.")
        want = str(meta.get("sha256", "")) if isinstance(meta, dict) else ""
        if "bytes" in meta and path.stat().st_size != meta["bytes"]:
            raise IntegrityError(f"{path} has {path.stat().st_size} bytes, {meta['bytes']} were recorded at "
                                 f"download (sha256 {want}): it changed since; {again}.")
        check_sha256(path, want, f"the file changed since it was downloaded and verified; {again}.")
    ckpt = root / "checkpoints"
    for path in sorted(ckpt.rglob("*")) if ckpt.is_dir() else ():
        rel = path.relative_to(root).as_posix()
        if path.is_file() and path.suffix.lower() in WEIGHT_SUFFIXES and rel not in files \
                and ".cache" not in path.relative_to(root).parts:
            raise IntegrityError(f"{path} was not part of the verified download (no recorded sha256) and could be "
                                 f"loaded in place of a checked file; remove it, or {again}.")
    return True
