"""The README's picture of video → motion: a video frame with BlazePose's landmarks beside the SMPL-22 result."""

from __future__ import annotations

from pathlib import Path

from ..motion.skeleton import T2M

# BlazePose connections drawn on the frame (shoulders, arms, trunk, legs, feet)
POSE_EDGES = ((11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24), (23, 25), (25, 27),
              (24, 26), (26, 28), (27, 29), (29, 31), (27, 31), (28, 30), (30, 32), (28, 32))


def video_picture(video: Path, out: Path, seconds: float = 0.6) -> Path:
    """Frame at ``seconds`` with its landmarks (left) and the recovered skeleton at that time (right)."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..video import extract_motion

    m = extract_motion(video)
    lm = m.landmarks
    k = min(int(round(seconds * lm.fps)), len(lm.found) - 1)
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, k)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise ValueError(f"cannot read frame {k} of {video}")
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 4), gridspec_kw={"width_ratios": [1, 1]})
    a.imshow(rgb)
    pts = lm.image[k, :, :2]
    for i, j in POSE_EDGES:
        a.plot(*pts[[i, j]].T, color="#ffcc00", lw=2)
    a.scatter(*pts[11:].T, s=8, color="#d62728", zorder=3)
    lo, hi = pts.min(0), pts.max(0)
    half = 0.6 * max(hi[1] - lo[1], hi[0] - lo[0])  # zoom onto the person
    mid = (lo + hi) / 2
    a.set_xlim(mid[0] - half, mid[0] + half)
    a.set_ylim(mid[1] + half, mid[1] - half)
    a.set_title(f"{video.name}, frame {k}: BlazePose landmarks", fontsize=9)
    a.axis("off")
    t = min(int(round((k - m.meta["trimmed"][0]) / lm.fps * m.meta["fps"])), len(m.joints) - 1)
    j = m.joints[t]
    for c, p in enumerate(T2M.parents):
        if p >= 0:
            left = "left" in T2M.joint_names[c]
            b.plot([j[c, 0], j[p, 0]], [j[c, 1], j[p, 1]], color="#1f77b4" if left else "#ff7f0e", lw=2.5)
    b.scatter(j[:, 0], j[:, 1], s=10, color="k", zorder=3)
    b.set_aspect("equal")
    b.set_title(f"SMPL-22 joints, model space, {t / m.meta['fps']:.2f} s (blue: left)", fontsize=9)
    b.set_xlabel("x (m)")
    b.set_ylabel("y (m, up)")
    b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
