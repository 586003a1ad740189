"""The ``download`` sub-command and the ``--model official[-kit]`` shortcut of the CLI."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .drive import DRIVE_URL


def add_download_command(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("download", help="download a model: 'official' = the authors' checkpoints + CLIP, verified")
    d.add_argument("what", choices=["official"])
    d.add_argument("--dataset", default="t2m", choices=["t2m", "kit"], help="HumanML3D (t2m) or KIT-ML")
    d.add_argument("--dir", type=Path, default=None,
                   help="where models live (default $SALAD_HOME/official or ~/.cache/salad/official)")
    d.add_argument("--drive-folder", default=None, help="Google Drive folder id of the checkpoints (overrides "
                   "salad_model/configs/official_sources.json)")
    d.add_argument("--drive-url", default=os.environ.get("SALAD_DRIVE_URL", DRIVE_URL), help=argparse.SUPPRESS)


def online_allowed() -> bool:
    """The command line's online switch: HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE (the hub honours both) or
    SALAD_OFFLINE set to 1/true means offline."""
    return not any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
                   for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "SALAD_OFFLINE"))


def run_download(args: argparse.Namespace) -> int:
    from .official import download_official

    path = download_official(args.dataset, args.dir, online=online_allowed(), drive_folder=args.drive_folder,
                             drive_url=args.drive_url, hf_endpoint=os.environ.get("HF_ENDPOINT") or None)
    print(path)
    return 0


def resolve_model(model: str) -> str:
    """``official`` / ``official-kit``: the verified download (a clear error if it is not there yet)."""
    if model not in ("official", "official-t2m", "official-kit"):
        return model
    from .drive import DownloadError
    from .official import default_root, official_model_dir

    dataset = "kit" if model.endswith("kit") else "t2m"
    path = official_model_dir(default_root(), dataset)
    if path is None:
        raise DownloadError(f"The official {dataset} model is not downloaded yet: run `python -m salad_model "
                            f"download official --dataset {dataset}` first.")
    return str(path)
