"""Bandai-Namco Research Motion Dataset → SMPL-22 joints → HumanML3D 263-dim features.

Reads the BVH clips straight from ``dataset-{1,2}.tar.xz`` (no unpacking), maps the 22-joint Bandai
skeleton onto the 22 SMPL joints, converts centimetres to metres, resamples 30 → 20 fps (slerp of
the local rotations, so bones keep their length), canonicalises (floor at 0, root at the origin,
facing +Z at frame 0) and computes features. Build with::

    python -m salad_model.training.data.bandai build --out data_cache/bandai [--limit N] [--workers 1]

The data is CC BY-NC 4.0 (Bandai Namco Research Inc.); everything built from it is non-commercial.
See ``write_dataset`` for the output layout.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp_
import os
import random
import sys
import tarfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salad_model.motion.bandai_rig import bvh_to_smpl22
from salad_model.motion.motion_process import (
    canonicalize,
    facing_angle,
    joints_to_features,
    mirror_feature_permutation,
)
from salad_model.motion.skeleton import T2M
from salad_model.training.data.captions import make_captions, mirror_content
from salad_model.training.data.shared import shared_data

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_DATA_DIR = shared_data("bandai-namco")  # $SALAD_SHARED, else the nearest shared/ (data/shared.py)
ARCHIVES = ("dataset-1.tar.xz", "dataset-2.tar.xz")
SOURCE_FPS = 30.0
TARGET_FPS = 20.0
LICENCE_NOTE = (
    "Derived from the Bandai-Namco Research Motion Dataset (c) 2022 Bandai Namco Research Inc., "
    "https://github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset, licensed CC BY-NC 4.0 "
    "(https://creativecommons.org/licenses/by-nc/4.0/). Changes: retargeted to SMPL-22 joint positions, "
    "resampled to 20 fps, canonicalised, converted to HumanML3D features, captions generated from labels. "
    "Non-commercial use only."
)

@dataclass(frozen=True)
class ClipLabel:
    """Labels parsed from ``dataset-<N>_<content>_<style>_<take>``."""

    name: str
    dataset: int
    content: str
    style: str
    take: int

    @classmethod
    def parse(cls, stem: str) -> ClipLabel:
        parts = stem.split("_")
        if len(parts) != 4 or not parts[0].startswith("dataset-"):
            raise ValueError(f"unexpected Bandai clip name {stem!r}")
        return cls(stem, int(parts[0].split("-")[1]), parts[1], parts[2], int(parts[3]))


def process_clip(item: tuple[str, str]) -> dict:
    """One clip: BVH text → canonical joints, features and a few facts used for label checks."""
    name, text = item
    joints = canonicalize(bvh_to_smpl22(text))
    feats = joints_to_features(joints)
    heading = np.unwrap(facing_angle(joints))
    return {
        "name": name,
        "joints": joints.astype(np.float32),
        "features": feats.astype(np.float32),
        "turn_deg": float(np.degrees(heading[-1] - heading[0])),
        "end_xz": [float(joints[-1, 0, 0]), float(joints[-1, 0, 2])],
    }


def iter_bvh_texts(data_dir: Path, limit: int | None = None, archives: tuple[str, ...] = ARCHIVES
                   ) -> Iterator[tuple[str, str]]:
    """(clip name, BVH text) for every ``.bvh`` member, streamed from the archives in order."""
    n = 0
    for arc in archives:
        path = Path(data_dir) / arc
        if not path.exists():
            raise FileNotFoundError(f"{path} not found (set --data to the bandai-namco folder)")
        with tarfile.open(path, "r|xz") as tf:
            for member in tf:
                if not member.isfile() or not member.name.endswith(".bvh"):
                    continue
                f = tf.extractfile(member)
                assert f is not None
                yield Path(member.name).stem, f.read().decode("utf-8")
                n += 1
                if limit is not None and n >= limit:
                    return


def fix_turn_label(label: ClipLabel, turn_deg: float, end_xz: list[float]) -> str:
    """Content label after a geometric check of walk-turn clips.

    A few walk-turn clips turn the other way than their label (dataset README). Relabel only when
    both the body heading change and the travel direction disagree with the label (+ = left: the
    person's left is +X when facing +Z at frame 0).
    """
    if not label.content.startswith("walk-turn-"):
        return label.content
    labelled_left = label.content == "walk-turn-left"
    heading_left = turn_deg > 0
    travel_left = end_xz[0] > 0
    if heading_left != labelled_left and travel_left != labelled_left and abs(turn_deg) > 45:
        return "walk-turn-right" if labelled_left else "walk-turn-left"
    return label.content


def make_splits(labels: list[tuple[str, int, str, str]], seed: int = 0,
                fractions: tuple[float, float] = (0.1, 0.1), min_group: int = 5) -> dict[str, str]:
    """Clip name → "train" / "val" / "test", stratified by (dataset, content, style).

    Strata with fewer than ``min_group`` clips are pooled by (dataset, content) (dataset-1 has one
    or two takes per content×style); pools still below ``min_group`` go to train (a content seen
    only in evaluation is useless). Each clip appears in exactly one split.
    """
    strata: dict[tuple, list[str]] = defaultdict(list)
    for name, ds, content, style in labels:
        strata[(ds, content, style)].append(name)
    groups: dict[tuple, list[str]] = defaultdict(list)
    for (ds, content, style), names in strata.items():
        key = (ds, content, style) if len(names) >= min_group else (ds, content, "*")
        groups[key].extend(names)
    rng = random.Random(seed)
    out: dict[str, str] = {}
    for key in sorted(groups):
        names = sorted(groups[key])
        if len(names) < min_group:
            out.update({n: "train" for n in names})
            continue
        rng.shuffle(names)
        n_val = max(1, round(len(names) * fractions[0]))
        n_test = max(1, round(len(names) * fractions[1]))
        for i, n in enumerate(names):
            out[n] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return out


def feature_stats(features: list[np.ndarray], eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std [263] over the given clips and their mirror images, HumanML3D style.

    Including the mirrored clips makes the statistics exactly mirror-symmetric, so mirroring stays a
    channel permutation with sign flips in normalised space too. The std is averaged within each
    block (root rot-vel, root lin-vel, root height, ric, rot, vel, contacts), as HumanML3D's
    ``mean_variance`` does, so all channels of a block share one scale; then floored at ``eps``.
    """
    idx, sign = mirror_feature_permutation(T2M)
    d = features[0].shape[-1]
    s1 = np.zeros(d)
    s2 = np.zeros(d)
    n = 0
    for f in features:
        f64 = f.astype(np.float64)
        fm = f64[:, idx] * sign
        s1 += f64.sum(0) + fm.sum(0)
        s2 += (f64 ** 2).sum(0) + (fm ** 2).sum(0)
        n += 2 * len(f)
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean ** 2, 0.0))
    j = T2M.num_joints
    bounds = [0, 1, 3, 4, 4 + 3 * (j - 1), 4 + 9 * (j - 1), 4 + 9 * (j - 1) + 3 * j, d]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        std[a:b] = std[a:b].mean()
    return mean.astype(np.float32), np.maximum(std, eps).astype(np.float32)


def clip_captions(name: str, content: str, style: str, n_train: int = 10, n_heldout: int = 5,
                  seed: int = 0) -> dict[str, list[str]]:
    from salad_model.training.data.captions import clip_seed

    s = clip_seed(name, seed)
    m = mirror_content(content)
    return {
        "train": make_captions(content, style, n_train, s),
        "heldout": make_captions(content, style, n_heldout, s + 1, heldout=True),
        "mirror_train": make_captions(m, style, n_train, s),
        "mirror_heldout": make_captions(m, style, n_heldout, s + 1, heldout=True),
    }


def build(out: Path, data_dir: Path = DEFAULT_DATA_DIR, limit: int | None = None, workers: int = 1,
          seed: int = 0) -> dict:
    """Run the whole pipeline and write the dataset folder (see module docstring / README)."""
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    items = iter_bvh_texts(data_dir, limit)
    results: list[dict] = []
    if workers > 1:
        ctx = mp_.get_context("fork")
        with ctx.Pool(workers) as pool:
            for r in pool.imap(process_clip, items, chunksize=4):
                results.append(r)
                _progress(len(results), r["name"], t0)
    else:
        for item in items:
            results.append(process_clip(item))
            _progress(len(results), results[-1]["name"], t0)
    return write_dataset(out, results, seed=seed, t0=t0, data_dir=data_dir)


def _progress(n: int, name: str, t0: float) -> None:
    if n % 100 == 0 or n < 3:
        print(f"[{time.time() - t0:7.1f}s] {n} clips processed (last: {name})", flush=True)


def write_dataset(out: Path, results: list[dict], seed: int, t0: float, data_dir: Path) -> dict:
    """Write the packed dataset.

    Layout of ``out``:
      joints.npy    float32 [sum T_i, 22, 3]     canonical SMPL-22 positions, metres, 20 fps, all clips
      features.npy  float32 [sum (T_i−1), 263]   HumanML3D features (not normalised), all clips
      clips.json    list of per-clip records: name, dataset, content, style, take, original_content,
                    split, frames (T_i), joint_start, feature_start (row offsets into the arrays)
      mean.npy, std.npy  float32 [263]           train split + its mirror, block-averaged std
      splits.json   {"train": [...], "val": [...], "test": [...], plus the rule and seed}
      captions.json {clip name: {"train", "heldout", "mirror_train", "mirror_heldout": [str]}}
      meta.json     fps, dims, counts, licence, build facts
    """
    records = []
    for r in results:
        lab = ClipLabel.parse(r["name"])
        content = fix_turn_label(lab, r["turn_deg"], r["end_xz"])
        if content != lab.content:
            print(f"relabelled {lab.name}: {lab.content} -> {content} (turn {r['turn_deg']:.0f} deg, "
                  f"end x {r['end_xz'][0]:+.2f} m)", flush=True)
        records.append({"name": lab.name, "dataset": lab.dataset, "content": content, "style": lab.style,
                        "take": lab.take, "original_content": lab.content,
                        "frames": int(len(r["joints"])), "turn_deg": round(r["turn_deg"], 1)})
    split = make_splits([(c["name"], c["dataset"], c["content"], c["style"]) for c in records], seed=seed)
    j_off = f_off = 0
    for c in records:
        c["split"] = split[c["name"]]
        c["joint_start"], c["feature_start"] = j_off, f_off
        j_off += c["frames"]
        f_off += c["frames"] - 1
    joints = np.concatenate([r["joints"] for r in results])
    feats = np.concatenate([r["features"] for r in results])
    np.save(out / "joints.npy", joints)
    np.save(out / "features.npy", feats)
    mean, std = feature_stats([r["features"] for r, c in zip(results, records, strict=True)
                               if c["split"] == "train"])
    np.save(out / "mean.npy", mean)
    np.save(out / "std.npy", std)
    (out / "clips.json").write_text(json.dumps(records, indent=0))
    splits = {k: sorted(c["name"] for c in records if c["split"] == k) for k in ("train", "val", "test")}
    splits["rule"] = ("stratified by (dataset, content, style), 10% val / 10% test per stratum; strata "
                      "with <5 clips pooled by (dataset, content); pools with <5 clips all train; clip-level")
    splits["seed"] = seed
    (out / "splits.json").write_text(json.dumps(splits, indent=1))
    caps = {c["name"]: clip_captions(c["name"], c["content"], c["style"], seed=seed) for c in records}
    (out / "captions.json").write_text(json.dumps(caps, indent=1))
    counts = {k: len(splits[k]) for k in ("train", "val", "test")}
    frames = {k: int(sum(c["frames"] for c in records if c["split"] == k)) for k in ("train", "val", "test")}
    meta = {
        "format": "salad-bandai-v1", "fps": TARGET_FPS, "feature_dim": int(feats.shape[1]), "joints": 22,
        "units": "metres, Y up, floor y=0, facing +Z and root XZ at origin at frame 0, left = +X",
        "clips": len(records), "clips_per_split": counts, "frames_per_split": frames,
        "total_frames": int(joints.shape[0]), "feature_rows": int(feats.shape[0]),
        "std": "HumanML3D practice: per-block average of per-dim std over train + mirrored train, floor 1e-3",
        "relabelled": [c["name"] for c in records if c["content"] != c["original_content"]],
        "source": str(data_dir), "build_seconds": round(time.time() - t0, 1), "licence": LICENCE_NOTE,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    (out / "LICENSE_NOTICE.txt").write_text(LICENCE_NOTE + "\n")
    readme = "# Bandai-Namco → HumanML3D features (built)\n\n" + LICENCE_NOTE + "\n\n```\n"
    (out / "README.md").write_text(readme + (write_dataset.__doc__ or "") + "```\n")
    print(json.dumps({k: meta[k] for k in ("clips", "clips_per_split", "frames_per_split", "build_seconds")}),
          flush=True)
    return meta


def load_dataset(folder: str | Path) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(clip records, joints, features) of a built dataset; arrays memory-mapped."""
    folder = Path(folder)
    clips = json.loads((folder / "clips.json").read_text())
    joints = np.load(folder / "joints.npy", mmap_mode="r")
    return clips, joints, np.load(folder / "features.npy", mmap_mode="r")


def clip_arrays(clip: dict, joints: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One clip's joints [T, 22, 3] and features [T−1, 263] from the packed arrays."""
    t = clip["frames"]
    return (joints[clip["joint_start"]:clip["joint_start"] + t],
            features[clip["feature_start"]:clip["feature_start"] + t - 1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m salad_model.training.data.bandai", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the training dataset from the tar archives")
    b.add_argument("--out", type=Path, default=REPO_ROOT / "data_cache" / "bandai")
    b.add_argument("--data", type=Path, default=Path(os.environ.get("BANDAI_DATA", DEFAULT_DATA_DIR)))
    b.add_argument("--limit", type=int, default=None, help="only the first N clips (quick runs)")
    b.add_argument("--workers", type=int, default=None,
                   help="processes, at most 2 (default: 2 if the machine is idle, else 1)")
    b.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("captions", help="regenerate captions.json of a built dataset")
    c.add_argument("--out", type=Path, default=REPO_ROOT / "data_cache" / "bandai")
    c.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.cmd == "build":
        workers = args.workers if args.workers is not None else (2 if os.getloadavg()[0] < 1.0 else 1)
        build(args.out, args.data, args.limit, min(max(workers, 1), 2), args.seed)
    else:
        clips = json.loads((args.out / "clips.json").read_text())
        caps = {x["name"]: clip_captions(x["name"], x["content"], x["style"], seed=args.seed) for x in clips}
        (args.out / "captions.json").write_text(json.dumps(caps, indent=1))
        print(f"wrote captions for {len(caps)} clips", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
