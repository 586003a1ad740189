"""Metrics of motion sets and of the VAE (pure functions, tested on synthetic data with known answers)."""

from __future__ import annotations

import numpy as np
import torch


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D] (FID formula).

    tr sqrt(Σa Σb) is computed as tr sqrt(Σa^½ Σb Σa^½) with symmetric eigendecompositions: stable for
    the rank-deficient covariances that a few hundred samples give, no complex round-off.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    ra = _sqrt_psd(ca)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(ra @ cb @ ra), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * cross)


def diversity(feats: np.ndarray, n_pairs: int = 300, seed: int = 0) -> float:
    """Mean distance between random pairs of distinct samples (T2M protocol: 300 pairs)."""
    feats = np.asarray(feats, np.float64)
    n = len(feats)
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n  # j ≠ i
    return float(np.linalg.norm(feats[i] - feats[j], axis=-1).mean())


def root_aligned_mpjpe(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame mean joint error [T] after subtracting each frame's root (joint 0) position."""
    p = pred - pred[..., :1, :]
    t = target - target[..., :1, :]
    return np.linalg.norm(p - t, axis=-1).mean(-1)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); nan when either side is constant."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def root_speed(joints: np.ndarray, fps: float = 20.0) -> float:
    """Mean horizontal root speed (m/s)."""
    d = np.diff(joints[:, 0, [0, 2]], axis=0)
    return float(np.linalg.norm(d, axis=-1).mean() * fps) if len(d) else 0.0


def wrist_height(joints: np.ndarray, side: str = "left") -> float:
    """Peak wrist height above the floor (m): the 95th percentile over time, robust to single-frame spikes."""
    j = 20 if side == "left" else 21
    return float(np.percentile(joints[:, j, 1], 95))


def geometric_side(joints: np.ndarray) -> float:
    """Classifier-free side cue (m): the 95th plus the 5th percentile of left − right wrist height.

    Raising the left hand pushes the 95th percentile up while the 5th stays near 0 (and vice versa for
    the right), so the sign says which hand went up; symmetric motions score near 0.
    """
    d = joints[:, 20, 1] - joints[:, 21, 1]
    return float(np.percentile(d, 95) + np.percentile(d, 5))


# ------------------------------------------------------------------------------------------------
# VAE reconstruction (what the decoder alone costs)


@torch.no_grad()
def vae_reconstruction(vae, mean: torch.Tensor, std: torch.Tensor, clips: list[np.ndarray]) -> dict:
    """Root-aligned MPJPE of mean-latent reconstructions (features → joints on both sides), metres.

    Mean over joints and frames of all clips (frame-weighted), plus the per-clip mean; clips are cut
    to a multiple of 4 frames (the VAE's unit).
    """
    from ..motion.features import recover_from_ric

    vae.eval()
    mean, std = mean.float().cpu(), std.float().cpu()
    errs, per_clip = [], []
    for f in clips:
        t = (len(f) // 4) * 4
        if t < 4:
            continue
        x = (torch.from_numpy(np.array(f[:t], dtype=np.float32)) - mean) / std
        _, mu, _ = vae.encode(x[None], sample=False)
        rec = vae.decode(mu)[0] * std + mean
        nj = vae.skeleton.num_joints
        e = root_aligned_mpjpe(recover_from_ric(rec, nj).numpy(), recover_from_ric(x * std + mean, nj).numpy())
        errs.append(e)
        per_clip.append(float(e.mean()))
    allf = np.concatenate(errs) if errs else np.zeros(0)
    return {"clips": len(per_clip), "frames": int(len(allf)),
            "mpjpe_m": float(allf.mean()) if len(allf) else float("nan"),
            "mpjpe_cm": float(allf.mean() * 100) if len(allf) else float("nan"),
            "mpjpe_clip_mean_cm": float(np.mean(per_clip) * 100) if per_clip else float("nan"),
            "mpjpe_p90_frame_cm": float(np.percentile(allf, 90) * 100) if len(allf) else float("nan")}


@torch.no_grad()
def vae_roundtrip(vae, mean: torch.Tensor, std: torch.Tensor, clips: list[np.ndarray]) -> list[np.ndarray]:
    """De-normalised features after encode (mean latent) → decode; clips cut to ×4 frames (min 4)."""
    vae.eval()
    mean, std = mean.float().cpu(), std.float().cpu()
    out = []
    for f in clips:
        t = max((len(f) // 4) * 4, 4)
        x = (torch.from_numpy(np.array(f[:t], dtype=np.float32)) - mean) / std
        if len(x) < t:  # shorter than one latent frame: repeat the last frame
            x = torch.cat([x, x[-1:].expand(t - len(x), -1)])
        _, mu, _ = vae.encode(x[None], sample=False)
        out.append((vae.decode(mu)[0] * std + mean).numpy())
    return out
