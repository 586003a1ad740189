"""DeepMimic humanoid clips → SMPL-22 joints (Bandai-Namco proportions) → HumanML3D features.

The 20 MIT-licensed clips in ``<shared>/data/deepmimic`` (format in its README) drive a 15-joint humanoid
(root, chest, neck, hips, knees, ankles, shoulders, elbows, wrists; body frame: forward +X, up +Y,
right +Z). They are mapped onto SMPL-22 by *rotations*, not positions: every SMPL-22 bone takes its
direction from the DeepMimic segment it belongs to and its length from the Bandai-Namco skeleton
(``REFERENCE``), so the new clips share the proportions the VAE was trained on. Joints DeepMimic lacks:

* spine1 hangs from the pelvis (root rotation), spine2 from spine1 with the rotation half way (slerp)
  between root and chest, spine3 from spine2 with the chest rotation;
* the collars and the neck hang from spine3 with the chest rotation, the head from the neck with the
  DeepMimic neck rotation;
* the toe (SMPL "foot") is a fixed point of the DeepMimic foot (ankle) segment, forward and down of the
  ankle as in a flat-footed Bandai standing pose.

The root trajectory is scaled by the ratio of the leg lengths (Bandai / DeepMimic), so steps and jumps
keep their size relative to the body. Looping clips (``"Loop": "wrap"``) are repeated up to about 9 s
(each cycle continues from where the previous one ended, see ``tile_cycles``); all clips are resampled
to 20 fps (slerp of local rotations, so bone lengths hold), then canonicalised like the Bandai clips. Build::

    python -m salad_model.training.data.deepmimic build --out data_cache/deepmimic

The output has the Bandai layout (``write_dataset``); the training reader normalises it with the main
dataset's statistics. Mirrored copies are made by the training reader (as for Bandai).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salad_model.motion.motion_process import canonicalize, joints_to_features, qmul, qrot
from salad_model.motion.skeleton import T2M
from salad_model.training.data.captions import make_captions
from salad_model.training.data.shared import REPO_ROOT, shared_data

DEFAULT_DATA_DIR = shared_data("deepmimic")
TARGET_FPS = 20.0
MAX_TILED_SECONDS = 9.0  # looping clips are repeated up to this length (the model's longest is 9.8 s)
LICENCE_NOTE = (
    "Derived from DeepMimic (https://github.com/xbpeng/DeepMimic, data/motions/humanoid3d_*.txt), "
    "Copyright (c) 2018 Xue Bin Peng, MIT licence. Changes: mapped to SMPL-22 joint positions with "
    "Bandai-Namco proportions, looping clips repeated, resampled to 20 fps, canonicalised, converted to "
    "HumanML3D features, captions generated."
)

# clip file stem (after "humanoid3d_") → (content label, style label)
CLIP_LABELS: dict[str, tuple[str, str]] = {
    "backflip": ("backflip", "normal"), "cartwheel": ("cartwheel", "normal"), "crawl": ("crawl", "normal"),
    "dance_a": ("dance", "normal"), "dance_b": ("dance", "normal"), "dance_spin": ("dance-spin", "normal"),
    "getup_facedown": ("getup-facedown", "normal"), "getup_faceup": ("getup-faceup", "normal"),
    "jog": ("jog", "normal"), "jump": ("jump", "normal"), "kick": ("kick", "normal"),
    "punch": ("punch", "normal"), "roll": ("roll", "normal"), "run": ("run", "normal"),
    "sideflip": ("sideflip", "normal"), "spin": ("spin", "normal"), "spinkick": ("spin-kick", "normal"),
    "stealthy_walk": ("sneak", "normal"), "walk": ("walk", "normal"), "zombie_walk": ("zombie-walk", "normal"),
}

# --- the target skeleton (Bandai-Namco proportions, metres) --------------------------------------------
# Offsets are in the DeepMimic body frame (forward +X, up +Y, right +Z) of the parent segment named in
# the comment; limb bones point along the segment's −Y. Measured on frame 0 of the normal-style walk
# clips of the built Bandai dataset (median, left/right averaged; tests check them against the two
# Bandai clips in tests/data).
REFERENCE = {
    "hip": (0.001, -0.022, 0.065),      # pelvis → right hip (root rotation); left: z negated
    "spine1": (-0.001, 0.079, -0.003),  # pelvis → spine1 (root rotation)
    "spine2": (-0.001, 0.079, -0.003),  # spine1 → spine2 (half-way rotation)
    "spine3": (0.005, 0.090, -0.002),   # spine2 → spine3 (chest rotation)
    "neck": (0.032, 0.161, -0.001),     # spine3 → neck (chest rotation)
    "collar": (0.023, 0.128, 0.050),    # spine3 → right collar (chest rotation)
    "shoulder": (-0.016, 0.001, 0.051), # right collar → right shoulder (chest rotation)
    "head": (0.015, 0.063, 0.0),        # neck → head (neck rotation)
    "toe": (0.075, -0.083, 0.021),      # right ankle → right toe (foot rotation)
    "thigh": 0.391, "shin": 0.410, "upper_arm": 0.243, "forearm": 0.223,
}


@dataclass(frozen=True)
class Joint:
    name: str
    kind: str  # none (root), spherical, revolute, fixed
    parent: int
    attach: tuple[float, float, float]


def load_skeleton(path: Path) -> list[Joint]:
    """The humanoid's joints in file order (``humanoid3d.txt`` → ``Skeleton.Joints``)."""
    raw = json.loads(Path(path).read_text())["Skeleton"]["Joints"]
    joints = [Joint(j["Name"], j["Type"], int(j["Parent"]), (j["AttachX"], j["AttachY"], j["AttachZ"]))
              for j in raw]
    if any(j["AttachThetaX"] or j["AttachThetaY"] or j["AttachThetaZ"] for j in raw):
        raise ValueError(f"{path}: rotated joint frames are not supported")
    return joints


def _axis_angle_z(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angle / 2), 0 * angle, 0 * angle, np.sin(angle / 2)], axis=-1)


@dataclass
class Clip:
    """One motion: per-frame times (s), root positions [N, 3] and local quaternions [N, J, 4] (w, x, y, z)."""

    times: np.ndarray
    root: np.ndarray
    quats: np.ndarray
    loop: bool


def read_clip(path: Path, skeleton: list[Joint]) -> Clip:
    """Parse a DeepMimic motion file (frame durations read, not assumed; revolute angles about local Z)."""
    data = json.loads(Path(path).read_text())
    frames = np.asarray(data["Frames"], dtype=np.float64)
    widths = {"none": 0, "spherical": 4, "revolute": 1, "fixed": 0}
    expected = 8 + sum(widths[j.kind] for j in skeleton[1:])
    if frames.ndim != 2 or frames.shape[1] != expected:
        raise ValueError(f"{path}: frames of {frames.shape[-1]} numbers, expected {expected}")
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    quats = np.zeros((len(frames), len(skeleton), 4))
    quats[..., 0] = 1.0
    quats[:, 0] = frames[:, 4:8]
    col = 8
    for k, j in enumerate(skeleton[1:], start=1):
        if j.kind == "spherical":
            quats[:, k] = frames[:, col:col + 4]
        elif j.kind == "revolute":
            quats[:, k] = _axis_angle_z(frames[:, col])
        col += widths[j.kind]
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    return Clip(times, frames[:, 1:4].copy(), quats, data.get("Loop") == "wrap")


def tile_cycles(clip: Clip, cycles: int) -> Clip:
    """Repeat a looping clip: cycle c starts where cycle c − 1 ended (horizontal root offset of one cycle);
    the duplicated boundary frames are dropped.

    Cycles are translated, not turned: the heading of a cycle's last frame differs from its first by the
    pelvis sway (walk 7°, jog 8°), and turning every cycle by that (as DeepMimic's player does) bends a
    walk into a circle. The clips that spin (spin, dance spin, flips) make whole turns within a cycle.
    """
    if cycles <= 1:
        return clip
    d_pos = clip.root[-1] - clip.root[0]
    d_pos[1] = 0.0
    period = clip.times[-1]
    times, roots, quats = [], [], []
    for c in range(cycles):
        keep = slice(None) if c == cycles - 1 else slice(0, -1)
        roots.append((clip.root + c * d_pos)[keep])
        quats.append(clip.quats[keep])
        times.append((clip.times + c * period)[keep])
    return Clip(np.concatenate(times), np.concatenate(roots), np.concatenate(quats), clip.loop)


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of unit quaternions (shortest path), ``t`` broadcast over the last axis."""
    dot = (q0 * q1).sum(-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot).clip(-1.0, 1.0)
    theta = np.arccos(dot)
    s = np.sin(theta)
    small = s < 1e-6
    w0 = np.where(small, 1 - t, np.sin((1 - t) * theta) / np.where(small, 1, s))
    w1 = np.where(small, t, np.sin(t * theta) / np.where(small, 1, s))
    q = w0 * q0 + w1 * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def resample(clip: Clip, fps: float = TARGET_FPS) -> Clip:
    """Frames at ``fps`` over the clip's duration: root positions linear, rotations slerped."""
    t_new = np.arange(0.0, clip.times[-1] + 1e-9, 1.0 / fps)
    k = np.clip(np.searchsorted(clip.times, t_new, side="right") - 1, 0, len(clip.times) - 2)
    span = clip.times[k + 1] - clip.times[k]
    a = np.clip((t_new - clip.times[k]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    root = clip.root[k] * (1 - a[:, None]) + clip.root[k + 1] * a[:, None]
    quats = slerp(clip.quats[k], clip.quats[k + 1], a[:, None, None])
    return Clip(t_new, root, quats, clip.loop)


def world_rotations(skeleton: list[Joint], quats: np.ndarray) -> np.ndarray:
    """Global rotation of every segment [T, J, 4] (parents precede children in the file)."""
    out = np.empty_like(quats)
    for k, j in enumerate(skeleton):
        out[:, k] = quats[:, k] if j.parent < 0 else qmul(out[:, j.parent], quats[:, k])
    return out


def leg_scale(skeleton: list[Joint], ref: dict = REFERENCE) -> float:
    """Target leg length over DeepMimic's (hip → knee → ankle)."""
    idx = {j.name: k for k, j in enumerate(skeleton)}
    dm = abs(skeleton[idx["right_knee"]].attach[1]) + abs(skeleton[idx["right_ankle"]].attach[1])
    return (ref["thigh"] + ref["shin"]) / dm


def to_smpl22(skeleton: list[Joint], root: np.ndarray, quats: np.ndarray, ref: dict = REFERENCE) -> np.ndarray:
    """SMPL-22 joint positions [T, 22, 3] (DeepMimic world frame, metres) from root positions and local
    rotations; bone lengths from ``ref`` (see the module docstring for the missing joints)."""
    idx = {j.name: k for k, j in enumerate(skeleton)}
    rw = world_rotations(skeleton, quats)
    r_root, r_chest, r_neck = rw[:, idx["root"]], rw[:, idx["chest"]], rw[:, idx["neck"]]
    r_mid = slerp(r_root, r_chest, np.full((len(rw), 1), 0.5))
    down = np.array([0.0, -1.0, 0.0])

    def off(q: np.ndarray, v) -> np.ndarray:
        return qrot(q, np.asarray(v, dtype=np.float64))

    def side(v, s: str) -> tuple[float, float, float]:
        return (v[0], v[1], v[2] if s == "right" else -v[2])

    p: dict[str, np.ndarray] = {"pelvis": root * leg_scale(skeleton, ref)}
    p["spine1"] = p["pelvis"] + off(r_root, ref["spine1"])
    p["spine2"] = p["spine1"] + off(r_mid, ref["spine2"])
    p["spine3"] = p["spine2"] + off(r_chest, ref["spine3"])
    p["neck"] = p["spine3"] + off(r_chest, ref["neck"])
    p["head"] = p["neck"] + off(r_neck, ref["head"])
    for s in ("left", "right"):
        p[f"{s}_hip"] = p["pelvis"] + off(r_root, side(ref["hip"], s))
        p[f"{s}_knee"] = p[f"{s}_hip"] + off(rw[:, idx[f"{s}_hip"]], down * ref["thigh"])
        p[f"{s}_ankle"] = p[f"{s}_knee"] + off(rw[:, idx[f"{s}_knee"]], down * ref["shin"])
        p[f"{s}_foot"] = p[f"{s}_ankle"] + off(rw[:, idx[f"{s}_ankle"]], ref["toe"])
        p[f"{s}_collar"] = p["spine3"] + off(r_chest, side(ref["collar"], s))
        p[f"{s}_shoulder"] = p[f"{s}_collar"] + off(r_chest, side(ref["shoulder"], s))
        p[f"{s}_elbow"] = p[f"{s}_shoulder"] + off(rw[:, idx[f"{s}_shoulder"]], down * ref["upper_arm"])
        p[f"{s}_wrist"] = p[f"{s}_elbow"] + off(rw[:, idx[f"{s}_elbow"]], down * ref["forearm"])
    return np.stack([p[n] for n in T2M.joint_names], axis=1)


def clip_joints(path: Path, skeleton: list[Joint], max_seconds: float = MAX_TILED_SECONDS) -> np.ndarray:
    """One clip file → canonical SMPL-22 joints [T, 22, 3] at 20 fps (looping clips repeated)."""
    clip = read_clip(path, skeleton)
    if clip.loop and clip.times[-1] > 0:
        clip = tile_cycles(clip, max(1, int(max_seconds // clip.times[-1])))
    clip = resample(clip)
    return canonicalize(to_smpl22(skeleton, clip.root, clip.quats))


def clip_captions(content: str, style: str, name: str, n_train: int = 30, n_heldout: int = 10,
                  seed: int = 0) -> dict[str, list[str]]:
    """Captions as for Bandai clips, three times as many (one take per action; no sides, so the mirrored
    captions are the same)."""
    from salad_model.training.data.captions import clip_seed

    s = clip_seed(name, seed)
    train = make_captions(content, style, n_train, s)
    held = make_captions(content, style, n_heldout, s + 1, heldout=True)
    return {"train": train, "heldout": held, "mirror_train": list(train), "mirror_heldout": list(held)}


def build(out: Path, data_dir: Path = DEFAULT_DATA_DIR, seed: int = 0) -> dict:
    """Map every clip and write the dataset folder (Bandai layout; every clip in the train split)."""
    t0 = time.time()
    data_dir = Path(data_dir)
    if not (data_dir / "humanoid3d.txt").is_file():
        raise FileNotFoundError(f"{data_dir / 'humanoid3d.txt'} not found (set --data to the deepmimic folder)")
    skeleton = load_skeleton(data_dir / "humanoid3d.txt")
    out.mkdir(parents=True, exist_ok=True)
    records, joints, feats = [], [], []
    j_off = f_off = 0
    for stem, (content, style) in CLIP_LABELS.items():
        path = data_dir / "motions" / f"humanoid3d_{stem}.txt"
        j = clip_joints(path, skeleton)
        f = joints_to_features(j)
        name = f"deepmimic_{stem}"
        records.append({"name": name, "dataset": "deepmimic", "content": content, "style": style, "take": 1,
                        "original_content": stem, "split": "train", "frames": int(len(j)),
                        "joint_start": j_off, "feature_start": f_off})
        j_off += len(j)
        f_off += len(f)
        joints.append(j.astype(np.float32))
        feats.append(f.astype(np.float32))
        print(f"[{time.time() - t0:5.1f}s] {name}: {len(j)} frames ({len(j) / TARGET_FPS:.1f} s)", flush=True)
    return write_dataset(out, records, joints, feats, seed)


def write_dataset(out: Path, records: list[dict], joints: list[np.ndarray], feats: list[np.ndarray],
                  seed: int) -> dict:
    """Layout (as the Bandai build, without statistics — training normalises with the main dataset's):
    joints.npy, features.npy, clips.json, captions.json, meta.json, LICENSE_NOTICE.txt."""
    np.save(out / "joints.npy", np.concatenate(joints))
    np.save(out / "features.npy", np.concatenate(feats))
    (out / "clips.json").write_text(json.dumps(records, indent=0))
    caps = {c["name"]: clip_captions(c["content"], c["style"], c["name"], seed=seed) for c in records}
    (out / "captions.json").write_text(json.dumps(caps, indent=1))
    meta = {"format": "salad-bandai-v1", "source_dataset": "deepmimic", "fps": TARGET_FPS, "joints": 22,
            "feature_dim": int(feats[0].shape[1]), "clips": len(records),
            "total_frames": int(sum(len(j) for j in joints)), "licence": LICENCE_NOTE}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    (out / "LICENSE_NOTICE.txt").write_text(LICENCE_NOTE + "\n")
    readme = ["# DeepMimic → SMPL-22 → HumanML3D features (built)", "", LICENCE_NOTE, "",
              "## How the clips were mapped", "", (__doc__ or "").split("Build::")[0].strip(), "",
              "## Reference proportions (metres, DeepMimic body frame: forward +X, up +Y, right +Z)", ""]
    readme += [f"- {k}: {v}" for k, v in REFERENCE.items()]
    readme += ["", "## Layout", "", "```", (write_dataset.__doc__ or "").strip(), "```", ""]
    (out / "README.md").write_text("\n".join(readme))
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m salad_model.training.data.deepmimic",
                                 description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="map the DeepMimic clips and write the dataset folder")
    b.add_argument("--out", type=Path, default=REPO_ROOT / "data_cache" / "deepmimic")
    b.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    b.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(json.dumps(build(a.out, a.data, a.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
