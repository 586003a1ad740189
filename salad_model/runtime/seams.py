"""Where windows meet: how far the VAE decoder reaches back, and the feature smoothing at seams.

Kept apart from runtime/shots.py (the director) because both the default hand-over and
runtime/shot_handover.py use them, and they are plain functions of a decoder and of features.
"""

from __future__ import annotations

import numpy as np
import torch


def decoder_reach(vae, dim: int, device: torch.device | str = "cpu") -> int:
    """Latent frames after frame f's own latent frame that still change decoded frame f (measured, not assumed).

    A perturbation of latent frame j changes decoded frames from 4j − back onwards; the last frame before a
    boundary at latent frame b then depends on latent frames up to b − 1 + ⌈back / 4⌉.
    """
    g = torch.Generator().manual_seed(0)
    n, j = 32, 16
    z = torch.randn(1, n, 7, dim, generator=g).to(device)
    with torch.inference_mode():
        base = vae.decode(z)
        z2 = z.clone()
        z2[:, j] += 1.0
        d = (vae.decode(z2) - base).abs().amax(-1)[0]
    changed = torch.nonzero(d > 0).flatten()
    back = 4 * j - int(changed.min()) if len(changed) else 0
    return max(0, -(-back // 4))


def smooth_seams(feats: np.ndarray, seams: list[int], sigma: float) -> np.ndarray:
    """Gaussian smoothing (σ frames) of the features at each seam: full within 2σ, fading out at 5σ.

    Features are per-frame and heading-free, so smoothing them and integrating once keeps the root path
    continuous; contacts are kept; frames 5σ or further from every seam are returned unchanged.
    """
    if sigma <= 0 or not seams:
        return feats
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.concatenate([np.repeat(feats[:1], r, 0), feats, np.repeat(feats[-1:], r, 0)])
    smooth = np.stack([padded[i:i + len(feats)] for i in range(2 * r + 1)], 0)
    smooth = np.tensordot(k, smooth, axes=1)
    t = np.arange(len(feats))
    d = np.min(np.abs(t[:, None] - np.asarray(seams)[None, :]), axis=1).astype(np.float64)
    w = np.clip((5 * sigma - d) / (3 * sigma), 0.0, 1.0)[:, None]  # 1 within 2σ, fading to 0 at 5σ
    out = feats * (1 - w) + smooth * w
    out[:, -4:] = feats[:, -4:]
    return out.astype(feats.dtype)
