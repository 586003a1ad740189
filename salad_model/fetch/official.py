"""``python -m salad_model download official``: the authors' checkpoints and CLIP, verified before use.

Flow: list the authors' Drive folder, fetch only what the model needs (denoiser and its VAE: opt.txt +
model/net_best_fid.tar; Comp_v6_KLD005/meta/{mean,std}.npy) with gdown, fetch the CLIP snapshot with
huggingface_hub, all into ``<root>/<dataset>.partial/``; then load everything strictly (keys, shapes, the
text width the denoiser expects) and only then rename the folder to ``<root>/<dataset>/`` with a
``salad_official.json`` marker naming the model folder. An interrupted run resumes (finished files are
kept, gdown and the hub continue their partial files); a file that fails verification is deleted so the
next run fetches it again. Nothing half-downloaded is ever at the place where the model is offered.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from .. import CONFIGS_DIR
from ..runtime.integrity import MARKER, IntegrityError, check_download, sha256_file
from .drive import DRIVE_URL, DownloadError, DriveEntry, DriveFolder, http_error_message

STATS = "Comp_v6_KLD005"
CLIP_FOLDER = "clip-vit-base-patch32"
DATASETS = ("t2m", "kit")
Log = Callable[[str], None]


def sources() -> dict:
    """Where the release comes from and the pinned hashes: ``configs/official_sources.json``, or the file
    ``$SALAD_OFFICIAL_SOURCES`` names (a mirror of the release with its own pins; the tests' loopback copy)."""
    path = os.environ.get("SALAD_OFFICIAL_SOURCES") or CONFIGS_DIR / "official_sources.json"
    return json.loads(Path(path).read_text(encoding="utf-8"))


def default_root() -> Path:
    """``$SALAD_HOME/official`` or ``~/.cache/salad/official``."""
    home = os.environ.get("SALAD_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "salad") / "official"


def official_model_dir(root: Path, dataset: str = "t2m") -> Path | None:
    """The verified model folder under ``root`` (what ``--model`` takes), or None if none is there."""
    marker = Path(root) / dataset / MARKER
    try:
        model = json.loads(marker.read_text(encoding="utf-8"))["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    path = marker.parent / model
    return path if path.is_dir() else None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _Progress:
    """Overall progress by files, with the current file's bytes; a line per file and per ~10%."""

    def __init__(self, total_files: int, log: Log) -> None:
        self.total, self.done, self.log = max(total_files, 1), 0, log

    def file(self, name: str) -> Callable[[int, int | None], None]:
        last = [-1]

        def cb(got: int, size: int | None) -> None:
            frac = min(got / size, 1.0) if size else 0.0
            if int(frac * 10) == last[0]:
                return
            last[0] = int(frac * 10)
            overall = int(100 * (self.done + frac) / self.total)
            mb = f"{got / 1e6:.1f}" + (f"/{size / 1e6:.1f}" if size else "")
            self.log(f"[{overall:3d}%] ({self.done + 1}/{self.total}) {name} {mb} MB")
        return cb

    def finished(self, name: str, skipped: bool = False) -> None:
        self.done += 1
        pct = int(100 * self.done / self.total)
        self.log(f"[{pct:3d}%] ({self.done}/{self.total}) {name} {'already here' if skipped else 'done'}")


def _plan(entries: list[DriveEntry], denoiser_name: str) -> tuple[PurePosixPath, DriveEntry]:
    """The folder prefix of the dataset tree and the denoiser's opt.txt entry."""
    by_path = {e.path: e for e in entries}
    candidates = sorted(e.path.parent for e in entries
                        if e.path.name == "opt.txt" and "denoiser" in e.path.parent.name
                        and e.path.parent / "model" / "net_best_fid.tar" in by_path)
    if denoiser_name:
        candidates = [c for c in candidates if c.name == denoiser_name] or candidates
    if not candidates:
        raise DownloadError("The Drive folder holds no denoiser checkpoint (<name>/opt.txt and "
                            "<name>/model/net_best_fid.tar); it is incomplete or not the SALAD release.")
    ddir = candidates[0]
    return ddir.parent, by_path[ddir / "opt.txt"]


def _fetch_drive(folder: DriveFolder, entries: list[DriveEntry], ckpt: Path, dataset: str, denoiser_name: str,
                 progress_for: Callable[[int], _Progress], cancel: threading.Event | None) -> tuple[Path, _Progress]:
    from ..runtime.checkpoints import parse_opt

    prefix, dopt = _plan(entries, denoiser_name)
    local = ckpt / dataset
    by_path = {e.path: e for e in entries}
    ddir = dopt.path.parent
    opt_file = local / ddir.relative_to(prefix) / "opt.txt"
    if not opt_file.is_file():
        folder.download(dopt, opt_file, cancel=cancel)
    vae = parse_opt(opt_file).get("vae_name")
    if not vae:
        raise DownloadError(f"{opt_file} names no VAE (no 'vae_name' line): not a SALAD denoiser.")
    want = [ddir / "opt.txt", ddir / "model" / "net_best_fid.tar", prefix / str(vae) / "model" / "net_best_fid.tar",
            prefix / STATS / "meta" / "mean.npy", prefix / STATS / "meta" / "std.npy"]
    if prefix / str(vae) / "opt.txt" in by_path:
        want.insert(2, prefix / str(vae) / "opt.txt")
    missing = [str(p.relative_to(prefix)) for p in want if p not in by_path]
    if missing:
        raise DownloadError(f"The Drive folder is incomplete: it has no {', '.join(missing)}.")
    progress = progress_for(len(want))
    for p in want:
        rel = p.relative_to(prefix)
        dest = local / rel
        name = f"{dataset}/{rel}"
        if dest.is_file():
            progress.finished(name, skipped=True)
            continue
        folder.download(by_path[p], dest, progress=progress.file(name), cancel=cancel)
        progress.finished(name)
    return local / ddir.relative_to(prefix), progress


def _fetch_clip(clip: dict, dest: Path, endpoint: str | None, progress: _Progress) -> None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    what = f"downloading the CLIP text model {clip['repo']}"
    try:
        snapshot_download(clip["repo"], revision=clip.get("revision", "main"), local_dir=str(dest),
                          allow_patterns=list(clip["files"]), endpoint=endpoint, max_workers=2)
    except OfflineModeIsEnabled as exc:
        raise DownloadError(f"{what}: HF_HUB_OFFLINE is set; unset it to download.") from exc
    except (HfHubHTTPError, OSError, ValueError) as exc:
        status = _http_status(exc)
        if status:
            raise DownloadError(http_error_message(status, what)) from exc
        raise DownloadError(f"{what} was interrupted: {exc}. Run the command again to resume.") from exc
    progress.finished(f"{CLIP_FOLDER} ({clip['repo']})")


def _http_status(exc: BaseException | None) -> int:
    """The HTTP status anywhere in an exception chain (the hub wraps a refused HEAD in a cache error)."""
    while exc is not None:
        response = getattr(exc, "response", None)
        if response is not None and getattr(response, "status_code", None):
            return int(response.status_code)
        exc = exc.__cause__ or exc.__context__
    return 0


def verify(model_dir: Path, clip_dir: Path, dataset: str) -> dict:
    """Load the staged model exactly as it will be used; raise DownloadError naming what is wrong."""
    from ..runtime.checkpoints import CheckpointError, load_official
    from ..runtime.text_hf import ClipTextEncoder

    try:
        bundle = load_official(model_dir, clip_dir=clip_dir)
        encoder = ClipTextEncoder(clip_dir)
    except (CheckpointError, FileNotFoundError, ValueError, OSError) as exc:
        raise _Refused(str(exc)) from exc
    if bundle.info["dataset"] != dataset:
        raise _Refused(f"{model_dir} is a {bundle.info['dataset']} model, not {dataset}")
    if encoder.dim != bundle.denoiser.config.text_dim:
        raise _Refused(f"{clip_dir} gives {encoder.dim}-wide text features, the denoiser in {model_dir} needs "
                       f"{bundle.denoiser.config.text_dim}")
    return {"name": bundle.info["name"], "dataset": dataset, "text_dim": encoder.dim}


class _Refused(Exception):
    """Verification failed (message from the loader, naming file and key)."""


def _files(folder: Path) -> dict[str, dict]:
    return {p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and ".cache" not in p.relative_to(folder).parts}


def _check_pins(ckpt: Path, files: dict[str, dict], pins: dict[str, str]) -> None:
    """Published sha256 pins (paths relative to checkpoints/): a differing file is deleted and refused."""
    for rel, want in sorted(pins.items()):
        rel = rel.removeprefix("checkpoints/")
        got = files.get(rel, {}).get("sha256")
        if got is None:
            raise DownloadError(f"{ckpt / rel} was not downloaded, but it is the pinned weights file (sha256 "
                                f"{want}); the source no longer serves it. Update salad_model or report it.")
        if got != want.lower():
            (ckpt / rel).unlink()
            raise DownloadError(f"{ckpt / rel} has sha256 {got}, expected {want} (the published hash): refused "
                                "and deleted. Run the command again; if it happens again the source serves other "
                                "weights than the pinned release, so report it.")


def download_official(dataset: str = "t2m", root: Path | None = None, *, online: bool = True,
                      drive_folder: str | None = None, drive_url: str = DRIVE_URL, hf_endpoint: str | None = None,
                      log: Log = _stderr, cancel: threading.Event | None = None) -> Path:
    """Fetch, verify and publish the official model; returns the model folder for ``--model``."""
    if not online:
        raise DownloadError("Online access is off, so nothing was downloaded. Allow it (Blender: Preferences > "
                            "System > Network > Allow Online Access; command line: unset HF_HUB_OFFLINE, "
                            "TRANSFORMERS_OFFLINE and SALAD_OFFLINE) and try again.")
    if dataset not in DATASETS:
        raise DownloadError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    root = Path(root) if root is not None else default_root()
    final = root / dataset
    ready = official_model_dir(root, dataset)
    if ready is not None:
        try:
            check_download(ready)  # the files still have the sha256 recorded when they were downloaded
        except IntegrityError as exc:
            raise DownloadError(str(exc)) from exc
        log(f"The official {dataset} model is already here (files unchanged since the download): {ready}")
        return ready
    src = sources()
    folder_id = drive_folder or src[dataset]["drive_folder"]
    if not folder_id:
        raise DownloadError(f"No Google Drive folder is configured for the official {dataset} checkpoints: pass "
                            "--drive-folder ID (the id in the authors' Drive link, see their README).")
    stage = root / f"{dataset}.partial"
    ckpt = stage / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    log(f"Downloading the official SALAD {dataset} model into {stage} (resumable: run again after an interruption)")
    drive = DriveFolder(folder_id, base_url=drive_url)
    entries = list(drive.walk())
    holder: list[_Progress] = []

    def progress_for(n: int) -> _Progress:
        holder.append(_Progress(n + 1, log))  # + the CLIP snapshot
        return holder[-1]

    model_dir, progress = _fetch_drive(drive, entries, ckpt, dataset, src[dataset].get("denoiser", ""),
                                       progress_for, cancel)
    clip_dir = ckpt / CLIP_FOLDER
    _fetch_clip(src["clip"], clip_dir, hf_endpoint, progress)

    log("Verifying: loading the model strictly (keys, shapes, text width)")
    files = _files(ckpt)
    _check_pins(ckpt, files, {**src["clip"].get("sha256", {}), **src[dataset].get("sha256", {})})
    try:
        info = verify(model_dir, clip_dir, dataset)
    except _Refused as exc:
        bad = [ckpt / rel for rel in files if str(ckpt / rel) in str(exc)]
        for path in bad:
            path.unlink(missing_ok=True)
        again = (f" Deleted {', '.join(str(p.relative_to(stage)) for p in bad)}; run the command again to fetch "
                 "it again." if bad else f" Delete {stage} to start over.")
        raise DownloadError(f"The downloaded model was refused: {exc}.{again}") from exc
    marker = {"model": model_dir.relative_to(stage).as_posix(), "clip": clip_dir.relative_to(stage).as_posix(),
              **info, "drive_folder": folder_id, "clip_repo": src["clip"]["repo"],
              "clip_revision": src["clip"].get("revision", "main"),
              "files": {f"checkpoints/{k}": v for k, v in files.items()}}
    shutil.rmtree(ckpt / CLIP_FOLDER / ".cache", ignore_errors=True)  # the hub's resume bookkeeping
    (stage / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    if final.exists():  # an older, unverified or broken copy: replaced only now that the new one loads
        shutil.rmtree(final)
    os.replace(stage, final)
    path = final / marker["model"]
    log(f"Official {dataset} model verified and ready: {path}")
    return path
