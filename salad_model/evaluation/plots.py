"""Pictures for people: a stick-figure preview of a motion and per-word attention heat maps.

matplotlib with the Agg backend only (no display needed); GIF through Pillow, MP4 only if ffmpeg exists.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..motion.skeleton import PART7_NAMES, T2M


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def preview(joints: np.ndarray, path: str | Path, title: str = "", fps: float = 20.0,
            chains: tuple[tuple[int, ...], ...] = T2M.chains, size: int = 4, stride: int = 1) -> Path:
    """Animate joints [T, J, 3] (Y up, metres) as a 3-D stick figure; .gif (Pillow) or .mp4 (ffmpeg)."""
    plt = pyplot()
    from matplotlib.animation import FFMpegWriter, FuncAnimation, PillowWriter

    path = Path(path)
    j = np.asarray(joints)[::stride]
    colors = ["#d62728", "#1f77b4", "#333333", "#ff7f0e", "#2ca02c"]  # right leg, left leg, spine, arms
    fig = plt.figure(figsize=(size, size), dpi=80)
    ax = fig.add_subplot(111, projection="3d")
    lo, hi = j.reshape(-1, 3).min(0), j.reshape(-1, 3).max(0)
    centre = (lo + hi) / 2
    radius = max(float((hi - lo)[[0, 2]].max()) / 2, 1.0)
    lines = [ax.plot([], [], [], lw=2.5, color=colors[i % len(colors)])[0] for i in range(len(chains))]
    trail = ax.plot([], [], [], lw=1, color="#999999")[0]

    def setup():
        ax.set_xlim(centre[0] - radius, centre[0] + radius)
        ax.set_ylim(centre[2] - radius, centre[2] + radius)
        ax.set_zlim(0, max(2.0, float(hi[1])))
        ax.set_xlabel("x (left)")
        ax.set_ylabel("z (forward)")
        ax.view_init(elev=15, azim=-60)
        ax.set_title(title, fontsize=9)
        return lines

    def draw(t: int):
        # Plot (x, z, y): matplotlib's vertical axis is its third axis.
        for line, chain in zip(lines, chains, strict=True):
            p = j[t, list(chain)]
            line.set_data(p[:, 0], p[:, 2])
            line.set_3d_properties(p[:, 1])
        trail.set_data(j[: t + 1, 0, 0], j[: t + 1, 0, 2])
        trail.set_3d_properties(np.zeros(t + 1))
        return lines

    anim = FuncAnimation(fig, draw, frames=len(j), init_func=setup, blit=False)
    if path.suffix.lower() == ".mp4":
        if not shutil.which("ffmpeg"):
            plt.close(fig)
            raise RuntimeError("writing .mp4 needs ffmpeg on PATH; use a .gif path instead")
        anim.save(str(path), writer=FFMpegWriter(fps=fps / stride))
    else:
        anim.save(str(path), writer=PillowWriter(fps=fps / stride))
    plt.close(fig)
    return path


def attention_heatmaps(tokens: list[str], maps: np.ndarray, path: str | Path, fps: float = 20.0,
                       title: str = "", skip_special: bool = True) -> Path:
    """One panel per word: body parts (rows) × time (columns) cross attention, shared colour scale."""
    plt = pyplot()
    idx = [i for i, t in enumerate(tokens)
           if not (skip_special and t.strip("<>[]|").lower() in {"cls", "sep", "bos", "eos", "startoftext",
                                                                    "endoftext", "s", "/s"})]
    idx = idx or list(range(len(tokens)))
    n = len(idx)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows + 0.6), squeeze=False,
                             constrained_layout=True)
    vmax = float(maps[idx].max()) if n else 1.0
    t_lat = maps.shape[-1]
    im = None
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        i = idx[k]
        im = ax.imshow(maps[i], aspect="auto", cmap="magma", vmin=0, vmax=vmax,
                       extent=(0, t_lat * 4 / fps, len(PART7_NAMES) - 0.5, -0.5))
        ax.set_title(repr(tokens[i]), fontsize=10)
        ax.set_yticks(range(len(PART7_NAMES)))
        ax.set_yticklabels(PART7_NAMES if k % cols == 0 else [], fontsize=7)
        ax.set_xlabel("seconds", fontsize=7)
        ax.tick_params(labelsize=7)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="attention")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
