"""Reading real motion for editing: .npz (joints) or .bvh (SMPL-22 or Bandai-Namco joint names).

Everything comes out as SMPL-22 joint positions [T, 22, 3] in metres, Y up, at the model's 20 fps.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .skeleton import T2M

MODEL_FPS = 20.0


class MotionFileError(ValueError):
    """A motion file we cannot map onto SMPL-22; the message says what is missing."""


def _resample(joints: np.ndarray, fps: float) -> np.ndarray:
    from .bvh import resample_positions

    return joints if abs(fps - MODEL_FPS) < 1e-6 else resample_positions(joints, fps, MODEL_FPS)


def load_motion(path: str | Path) -> np.ndarray:
    """SMPL-22 joints [T, 22, 3] (metres, Y up, 20 fps) from an .npz or .bvh file."""
    path = Path(path)
    if not path.is_file():
        raise MotionFileError(f"motion file not found: {path}")
    if path.suffix.lower() == ".npz":
        try:  # an empty, truncated or foreign file: numpy's own words name neither the file nor the format
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("it holds one array, not named arrays")
            if "joints" not in data:
                raise MotionFileError(f"{path} has no 'joints' array (keys: {sorted(data.files)})")
            joints = np.asarray(data["joints"], dtype=np.float64)
        except MotionFileError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise MotionFileError(f"{path} is not a readable .npz motion file ({exc})") from exc
        try:
            fps = float(data["fps"]) if "fps" in data else MODEL_FPS
        except (TypeError, ValueError) as exc:
            raise MotionFileError(f"{path}: 'fps' must be one number, got {data['fps']!r}") from exc
        if not np.isfinite(fps) or fps <= 0:
            raise MotionFileError(f"{path}: 'fps' must be a positive number, got {fps:g}")
        if joints.ndim != 3 or joints.shape[1:] != (22, 3):
            raise MotionFileError(f"{path}: joints must be [T, 22, 3], got {joints.shape}")
        return _resample(joints, fps)
    if path.suffix.lower() == ".bvh":
        from .bvh import joint_positions_from_bvh, read_bvh

        try:
            motion = read_bvh(path)
        except (OSError, ValueError) as exc:  # the parser's reason (no MOTION section, bad text …), with the file
            raise MotionFileError(f"{path}: {exc}") from exc
        names = set(motion.names)
        fps = 1.0 / motion.frame_time
        if set(T2M.joint_names) <= names:
            joints = joint_positions_from_bvh(motion, T2M.joint_names, fps=MODEL_FPS)
            if np.median(joints[:, 0, 1]) > 10:  # hips higher than 10 units: centimetres
                joints = joints * 0.01
            return joints
        from .bandai_rig import SMPL22_FROM_BANDAI, bvh_to_smpl22

        bandai = {src for _, sources in SMPL22_FROM_BANDAI for src, _ in sources}
        if bandai <= names:
            return bvh_to_smpl22(path.read_text(), fps=MODEL_FPS)
        missing = sorted(set(T2M.joint_names) - names)
        raise MotionFileError(f"{path}: the skeleton is neither SMPL-22 nor Bandai-Namco; missing SMPL-22 joints: "
                              f"{', '.join(missing[:8])}{' …' if len(missing) > 8 else ''} ({fps:g} fps file)")
    raise MotionFileError(f"{path}: unsupported motion file type {path.suffix!r} (use .bvh or .npz)")
