"""Issue #7 statistics: reconstructing and editing *real* held-out clips through inversion.

``python -m salad_model.eval real --model demo --limit 24 --out real.json --markdown real.md``

For a seeded sample of dataset-2 test clips (at most the model's length, the middle of longer clips):

* reconstruction MPJPE (root-aligned, joints from features on both sides) of the VAE alone (mean
  latent), of plain DDIM inversion (guidance 1) and of DDIM inversion + null-text optimisation
  (guidance as sampling) — "inversion adds" is its excess over the VAE;
* a style word swap of each clip ("An elderly person walks forward." → "An energetic person walks
  forward."), classified: is the edit's style the target, and is the content label kept;
* a mirror of each clip, geometric (exact, the default) and through attention (the paper's row swap on
  the inverted motion): is the edit classified as the mirrored content label.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch

from .classifier import (
    HAND_SIDES,
    MotionClassifier,
    canonical_style,
    center_crop,
    generation_frames,
    load_split,
)
from .data.captions import STYLES, _content_phrases, mirror_content

# A contrasting target for every dataset-2 style (the swap must be visible to be measurable).
STYLE_TARGETS: dict[str, str] = {
    "elderly": "active", "active": "elderly", "exhausted": "youthful", "youthful": "exhausted",
    "normal": "elderly", "feminine": "masculine", "masculine": "feminine",
}


def style_caption(content: str, style: str) -> str:
    """A plain training-vocabulary caption whose subject carries the style: "An elderly person walks forward." """
    subject = STYLES[style].subjects[0]
    verb = _content_phrases(content)[0][0][0]
    text = f"{subject} {verb}."
    return text[0].upper() + text[1:]


def _mpjpe(pred: np.ndarray, target: np.ndarray) -> float:
    """Root-aligned mean per-joint position error (m) over all frames and joints."""
    p = pred - pred[:, :1]
    t = target - target[:, :1]
    n = min(len(p), len(t))
    return float(np.linalg.norm(p[:n] - t[:n], axis=-1).mean())


def real_statistics(pipe, clf: MotionClassifier, data_dir: Path, limit: int = 24, steps: int = 50,
                    null_text_iters: int = 10, seed: int = 0, log=print) -> dict:
    """Reconstruction and edit statistics of real test clips (see the module docstring)."""
    from .features import recover_from_ric

    clips = [c for c in load_split(Path(data_dir), "test") if c.dataset == 2 and c.style in STYLE_TARGETS]
    rng = random.Random(seed)
    clips = [clips[i] for i in sorted(rng.sample(range(len(clips)), min(limit, len(clips))))]
    rows = []
    t0 = time.time()
    for k, c in enumerate(clips):
        frames = generation_frames(len(c.features) + 1, pipe.min_frames, pipe.max_frames)
        feats = np.array(center_crop(c.features, frames)[: (min(frames, len(c.features)) // 4) * 4], np.float32)
        with torch.inference_mode():
            real = recover_from_ric(torch.from_numpy(feats), 22).numpy()
        caption = style_caption(c.content, c.style)
        target = STYLE_TARGETS[c.style]
        edit_caption = style_caption(c.content, target)
        x = (torch.from_numpy(feats) - pipe.mean.cpu()) / pipe.std.cpu()
        with torch.inference_mode():
            _, mu, _ = pipe.vae.encode(x[None].to(pipe.device), sample=False)
        vae_f, vae_j = pipe.decode(mu)
        plain = pipe.reconstruct(pipe.invert(caption, features=feats, guidance=1.0, steps=steps, null_text_iters=0))
        inv = pipe.invert(caption, features=feats, steps=steps, null_text_iters=null_text_iters)
        rec = pipe.reconstruct(inv)
        swap = pipe.edit_inverted(inv, edit_prompt=edit_caption)
        mir_attn = pipe.edit_inverted(inv, mirror="all", mirror_method="attention")
        mir_geo = pipe.edit_inverted(inv, mirror="all")
        feats_all = [feats, vae_f[0], rec.features, swap.features, mir_attn.features, mir_geo.features]
        p = clf.predict(feats_all)
        content = [clf.config.contents[i] for i in p["content_prob"].argmax(-1)]
        style = [clf.config.styles[i] for i in p["style_prob"].argmax(-1)]
        side = clf.side_scores(p["content_prob"]).tolist()
        rows.append({
            "name": c.name, "content": c.content, "style": c.style, "frames": len(feats), "caption": caption,
            "edit_caption": edit_caption, "target_style": target, "swap_mode": swap.meta["edits"][0]["mode"],
            "mpjpe_vae_m": _mpjpe(vae_j[0], real), "mpjpe_ddim_m": _mpjpe(plain.joints, real),
            "mpjpe_inversion_m": _mpjpe(rec.joints, real),
            "pred_content": dict(zip(("real", "vae", "inversion", "swap", "mirror_attention", "mirror_geometric"),
                                     content, strict=True)),
            "pred_style": dict(zip(("real", "vae", "inversion", "swap", "mirror_attention", "mirror_geometric"),
                                   style, strict=True)),
            "side": dict(zip(("real", "vae", "inversion", "swap", "mirror_attention", "mirror_geometric"),
                             side, strict=True)),
        })
        log(f"  real {k + 1}/{len(clips)} {c.name}: VAE {rows[-1]['mpjpe_vae_m'] * 100:.2f} cm, inversion "
            f"{rows[-1]['mpjpe_inversion_m'] * 100:.2f} cm; swap → {style[3]} / {content[3]} "
            f"({time.time() - t0:.0f}s)")
    return summarize_real(rows, steps, null_text_iters, time.time() - t0)


def summarize_real(rows: list[dict], steps: int, null_text_iters: int, seconds: float) -> dict:
    """Aggregate per-clip rows into the model-card numbers."""
    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows]) * 100) if rows else float("nan")

    def frac(pred) -> float:
        return float(np.mean([bool(pred(r)) for r in rows])) if rows else float("nan")

    hand = [r for r in rows if r["content"] in HAND_SIDES]

    def mirror_ok(r: dict, method: str) -> bool:
        return r["pred_content"][f"mirror_{method}"] == mirror_content(r["content"])

    out = {"n": len(rows), "steps": steps, "null_text_iters": null_text_iters, "seconds": round(seconds, 1),
           "mpjpe_vae_cm": mean("mpjpe_vae_m"), "mpjpe_ddim_cm": mean("mpjpe_ddim_m"),
           "mpjpe_inversion_cm": mean("mpjpe_inversion_m"),
           "real_content_correct": frac(lambda r: r["pred_content"]["real"] == r["content"]),
           "real_style_correct": frac(lambda r: r["pred_style"]["real"] == canonical_style(r["style"])),
           "inversion_content_kept": frac(lambda r: r["pred_content"]["inversion"] == r["content"]),
           "inversion_style_kept": frac(lambda r: r["pred_style"]["inversion"] == canonical_style(r["style"])),
           "swap_target_style": frac(lambda r: r["pred_style"]["swap"] == canonical_style(r["target_style"])),
           "swap_style_changed": frac(lambda r: r["pred_style"]["swap"] != canonical_style(r["style"])),
           "swap_content_kept": frac(lambda r: r["pred_content"]["swap"] == r["content"]),
           "swap_success": frac(lambda r: r["pred_style"]["swap"] == canonical_style(r["target_style"])
                                and r["pred_content"]["swap"] == r["content"]),
           "rows": rows}
    out["mpjpe_inversion_adds_cm"] = out["mpjpe_inversion_cm"] - out["mpjpe_vae_cm"]
    for method in ("geometric", "attention"):
        out[f"mirror_{method}_success"] = frac(lambda r, m=method: mirror_ok(r, m))
        out[f"mirror_{method}_side_flipped_hand"] = (
            float(np.mean([np.sign(r["side"][f"mirror_{method}"]) == -np.sign(r["side"]["real"]) for r in hand]))
            if hand else float("nan"))
    out["hand_clips"] = len(hand)
    return out


def format_real_markdown(r: dict) -> str:
    """The issue-#7 tables of the model card."""
    def pct(x: float) -> str:
        return "n/a" if x != x else f"{100 * x:.1f}%"

    lines = [f"{r['n']} dataset-2 test clips ({r['hand_clips']} one-handed), DDIM {r['steps']} steps, null-text "
             f"inversion {r['null_text_iters']} iterations per step ({r['seconds'] / 60:.1f} min in all).", "",
             "| reconstruction of real clips (no edit) | MPJPE (root-aligned) |", "|---|---|",
             f"| VAE only (mean latent) | **{r['mpjpe_vae_cm']:.2f} cm** |",
             f"| DDIM inversion, guidance 1 (no null-text) | {r['mpjpe_ddim_cm']:.2f} cm |",
             f"| DDIM inversion + null-text, guidance of sampling | **{r['mpjpe_inversion_cm']:.2f} cm** |",
             f"| inversion adds on top of the VAE (goal < 2 cm) | **{r['mpjpe_inversion_adds_cm']:+.2f} cm** |", "",
             "| edits of real clips, classified | rate |", "|---|---|",
             f"| real clip: content / style label recognised | {pct(r['real_content_correct'])} / "
             f"{pct(r['real_style_correct'])} |",
             f"| reconstruction keeps content / style class | {pct(r['inversion_content_kept'])} / "
             f"{pct(r['inversion_style_kept'])} |",
             f"| **style swap: target style and content kept (goal ≥ 70%)** | **{pct(r['swap_success'])}** |",
             f"| … style is the target | {pct(r['swap_target_style'])} |",
             f"| … style changed | {pct(r['swap_style_changed'])} |",
             f"| … content kept | {pct(r['swap_content_kept'])} |",
             f"| **mirror, geometric (default): classified as the mirrored content (goal ≥ 70%)** | "
             f"**{pct(r['mirror_geometric_success'])}** |",
             f"| … side flipped, one-handed clips | {pct(r['mirror_geometric_side_flipped_hand'])} |",
             f"| mirror, attention (paper) on the inversion: mirrored content | "
             f"{pct(r['mirror_attention_success'])} |",
             f"| … side flipped, one-handed clips | {pct(r['mirror_attention_side_flipped_hand'])} |"]
    return "\n".join(lines)
