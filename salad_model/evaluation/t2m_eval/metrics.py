"""Evaluator metrics exactly as the reference computes them (T2M_EVALUATOR_SPEC §4).

Precision matters for parity: distances use the float32 expansion formula, FID keeps the float32 mean and the
float64 covariance, Diversity and MultiModality draw their pairs from NumPy's *global legacy* RNG in the
reference order (MultiModality, Diversity real, Diversity generated).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg


def euclidean_distance_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[N1, N2] distances via sqrt(-2·x·y + |x|² + |y|²) in the inputs' precision (no clamping)."""
    d1 = -2.0 * np.dot(x, y.T)
    d2 = np.sum(np.square(x), axis=1, keepdims=True)
    d3 = np.sum(np.square(y), axis=1)
    return np.sqrt(d1 + d2 + d3)


def top_k_matches(dist: np.ndarray, top_k: int = 3) -> np.ndarray:
    """[N, top_k] bool: is sample i's own column among the first k of its ascending row (cumulative)."""
    order = np.argsort(dist, axis=1)
    hit = order[:, :top_k] == np.arange(len(dist))[:, None]
    return np.cumsum(hit, axis=1) > 0


def r_precision_counts(text_emb: np.ndarray, motion_emb: np.ndarray, top_k: int = 3) -> tuple[np.ndarray, float]:
    """One batch → (top-1..k hit counts [k], sum of matched distances = trace of the distance matrix)."""
    dist = euclidean_distance_matrix(text_emb, motion_emb)
    return top_k_matches(dist, top_k).sum(axis=0), float(dist.trace())


def matching_pairs(text_emb: np.ndarray, motion_emb: np.ndarray) -> np.ndarray:
    """Direct-norm per-pair distances (the reference's helper; the test loop uses the trace instead)."""
    return np.linalg.norm(text_emb - motion_emb, axis=1)


def activation_statistics(act: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean in the input's dtype (float32 in the reference) and float64 unbiased covariance."""
    return np.mean(act, axis=0), np.cov(act, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """‖μ1−μ2‖² + tr Σ1 + tr Σ2 − 2 tr sqrtm(Σ1Σ2) with SciPy's Schur square root (spec §4.4)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        warnings.warn(f"FID: singular product of covariances; adding {eps} to the diagonals", stacklevel=2)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _sqrtm(a: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # ill-conditioned products warn; non-finite results are handled above
        warnings.simplefilter("ignore")
        return scipy.linalg.sqrtm(a)


def fid(gt_emb: np.ndarray, gen_emb: np.ndarray) -> float:
    """FID between two embedding sets (statistics recomputed from both, as every repetition does)."""
    mu_gt, cov_gt = activation_statistics(gt_emb)
    mu_gen, cov_gen = activation_statistics(gen_emb)
    return frechet_distance(mu_gt, cov_gt, mu_gen, cov_gen)


def diversity_times(n: int) -> int:
    """300 pairs when there are more than 300 samples, else 100 (the reference's rule)."""
    return 300 if n > 300 else 100


def diversity(emb: np.ndarray, times: int) -> float:
    """Mean distance of ``times`` random pairs; indices from the global NumPy RNG (two independent draws)."""
    if emb.ndim != 2 or emb.shape[0] <= times:
        raise ValueError(f"Diversity needs more than {times} samples, got {emb.shape[0]}")
    first = np.random.choice(emb.shape[0], times, replace=False)
    second = np.random.choice(emb.shape[0], times, replace=False)
    return float(np.linalg.norm(emb[first] - emb[second], axis=1).mean())


def multimodality(act: np.ndarray, times: int) -> float:
    """act [N, R, C]: mean distance of ``times`` generation pairs per sample (same index pairs for all)."""
    if act.ndim != 3 or act.shape[1] <= times:
        raise ValueError(f"MultiModality needs more than {times} generations per sample, got {act.shape}")
    first = np.random.choice(act.shape[1], times, replace=False)
    second = np.random.choice(act.shape[1], times, replace=False)
    return float(np.linalg.norm(act[:, first] - act[:, second], axis=2).mean())


def mpjpe(gt_joints: np.ndarray, pred_joints: np.ndarray) -> np.ndarray:
    """Per pose [N]: root-relative mean joint error (joints [N, J, 3])."""
    gt = gt_joints - gt_joints[:, :1]
    pred = pred_joints - pred_joints[:, :1]
    return np.linalg.norm(gt - pred, axis=-1).mean(axis=-1)


def mean_conf(values: list[float] | np.ndarray) -> tuple[float, float]:
    """(mean, 1.96·std/√n) with the population std, as the reference's summary."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(1.96 * v.std() / np.sqrt(len(v)))
