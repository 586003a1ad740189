"""Latent inpainting: hold part of the latent grid [T', 7 parts] to a source while the rest is denoised.

SALAD's latent is time × 7 body parts, so "keep these frames" (continuation, in-between, the overlap of
timeline windows) and "keep these body parts" (part regeneration) are both a boolean mask over that grid.
At every sampler step the held cells are replaced by the source latent noised to the level the sampler
has just reached (Lugmayr et al.'s replacement; the final step puts the clean source back exactly), so
the free cells are denoised next to a context that is always at their own noise level. ``resample`` > 0
repeats a step from latents re-noised back to that step's level (RePaint), which lets the free region
adapt to the held one at the cost of 1 + ``resample`` forwards per step; whether it is needed is measured
by ``python -m salad_model.evaluation.eval shots`` (docs/MODEL_CARD.md).

The object is what the sampler receives (``sampling.sample(..., inpaint=...)``): no flags are threaded
through the networks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

# Latent parts (SALAD_SPEC §2.3): 0 root, 1 left leg, 2 right leg, 3 spine/torso, 4 left arm, 5 right arm,
# 6 head. Presets for the user: "upper body" is everything above the pelvis, "lower body" pelvis + legs.
PART_PRESETS: dict[str, tuple[int, ...]] = {
    "arms": (4, 5),
    "legs": (1, 2),
    "upper": (3, 4, 5, 6),
    "lower": (0, 1, 2),
    "left_arm": (4,),
    "right_arm": (5,),
    "left_leg": (1,),
    "right_leg": (2,),
    "torso": (3,),
    "head": (6,),
    "root": (0,),
    "all": (0, 1, 2, 3, 4, 5, 6),
}
PART_NAMES = ("root", "left_leg", "right_leg", "torso", "left_arm", "right_arm", "head")
_ALIASES = {"upper_body": "upper", "lower_body": "lower", "both_arms": "arms", "both_legs": "legs"}


def parse_parts(parts: str | Iterable[str | int]) -> tuple[int, ...]:
    """Presets / part names / indices 0–6 (a comma-separated string or a list) → sorted latent part indices."""
    if not isinstance(parts, (str, list, tuple)):
        raise ValueError(f"parts must be a name, a comma-separated string or a list, got {type(parts).__name__}")
    items = parts.split(",") if isinstance(parts, str) else list(parts)
    items = [p.strip() if isinstance(p, str) else p for p in items]  # " 1 " in a list is index 1, as in "arms, 1"
    out: set[int] = set()
    for p in items:
        if isinstance(p, bool):
            raise ValueError(f"unknown body part {p!r}")
        if isinstance(p, int) or (isinstance(p, str) and p.isdigit()):
            k = int(p)
            if not 0 <= k < 7:
                raise ValueError(f"latent part index {k} is out of range 0–6")
            out.add(k)
            continue
        key = str(p).strip().lower().replace(" ", "_").replace("-", "_")
        key = _ALIASES.get(key, key)
        if key in PART_PRESETS:
            out.update(PART_PRESETS[key])
        elif key:
            raise ValueError(f"unknown body part {p!r}; use arms, legs, upper, lower, one of "
                             f"{', '.join(PART_NAMES)}, or indices 0–6")
    if not out:
        raise ValueError("no body part selected: choose at least one part to regenerate")
    return tuple(sorted(out))


def legs_carry_root(regen: tuple[int, ...], keep_path: bool = False) -> tuple[int, ...]:
    """``regen`` (sorted part indices) with the root (0) when a leg is regenerated over it, unless ``keep_path``.

    Why: the legs carry the body. Under a kept root the source's path goes on while the new legs do something
    else: on the demo model 'legs' slid the feet 1.65 m/s in contact (the path's own speed, 1.71) under three
    standing / kicking / jumping prompts, 'lower' (the root with them) 0.39 — the sources' own 0.35-0.52.
    Not when every other part is regenerated already (the root is then all that is kept of the source).
    The add-on keeps its own copy (it cannot import torch): ``salad_blender.shot_inputs.legs_carry_root``.
    """
    if keep_path or 0 in regen or not {1, 2} & set(regen) or len(regen) == len(PART_NAMES) - 1:
        return tuple(regen)
    return tuple(sorted({0, *regen}))


def _alpha_bar(sched, t: int) -> torch.Tensor:
    return sched.alphas_cumprod[t] if t >= 0 else torch.tensor(1.0)


@dataclass
class Inpainting:
    """Known latent ``source`` [B, T', 7, C] held where ``mask`` [B, T', 7] is True.

    A float mask holds softly: each step's result is ``w·source_t + (1 − w)·z`` (weights within 0…1), so a
    ramp of weights lets the latent cross over from the held motion to the generated one instead of
    meeting it at a hard edge.

    ``noise_seed`` seeds the noise the source is diffused with (one draw for the whole run, so the held
    region follows one forward trajectory, like DDIM's deterministic path); ``resample`` extra passes per
    step are done during the first ``resample_fraction`` of the steps (the high-noise steps, where the
    layout is decided). ``uncond_frames`` [B, T'] (True = seen): the frames the unconditional branch of a
    guided step attends to over time (:mod:`shot_free_guidance`); None: all of them.
    """

    source: torch.Tensor
    mask: torch.Tensor
    noise_seed: int = 0
    resample: int = 0
    resample_fraction: float = 1.0
    guidance_weights: torch.Tensor | None = None
    uncond_frames: torch.Tensor | None = None
    _eps: torch.Tensor | None = field(default=None, repr=False)
    _gen: torch.Generator | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.source.dim() != 4 or self.mask.shape != self.source.shape[:3]:
            raise ValueError(f"inpainting mask {tuple(self.mask.shape)} does not match the latent "
                             f"{tuple(self.source.shape)} (expected [B, T', 7] for [B, T', 7, C])")
        if self.resample < 0:
            raise ValueError("resample must be ≥ 0")
        if self.mask.dtype != torch.bool and not bool(((self.mask >= 0) & (self.mask <= 1)).all()):
            raise ValueError("a soft inpainting mask must hold weights within 0…1")

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def frames(cls, source: torch.Tensor, held: Iterable[tuple[int, int]], **kw) -> Inpainting:
        """Hold latent frames [a, b) for each (a, b) in ``held`` (all parts)."""
        mask = torch.zeros(source.shape[:3], dtype=torch.bool, device=source.device)
        for a, b in held:
            mask[:, a:b] = True
        return cls(source, mask, **kw)

    @classmethod
    def parts(cls, source: torch.Tensor, keep: Iterable[int], **kw) -> Inpainting:
        """Hold the latent parts ``keep`` (indices 0–6) at every frame."""
        mask = torch.zeros(source.shape[:3], dtype=torch.bool, device=source.device)
        mask[:, :, list(keep)] = True
        return cls(source, mask, **kw)

    # -- what the sampler calls --------------------------------------------------------------------

    def check_scheduler(self, scheduler: str) -> None:
        """Resampling re-runs a step, which a multistep solver's history does not allow."""
        if self.resample and scheduler != "ddim":
            raise ValueError("inpainting with resampling needs the ddim sampler (DPM-Solver++ keeps a step history)")

    def guide(self, v_u: torch.Tensor, v_c: torch.Tensor, guidance: float) -> torch.Tensor:
        """Classifier-free guidance, scaled per latent frame by ``guidance_weights`` [B, T'] when given.

        Frames right after a held context get a ramp of weights: the text steers them gently at first, so
        the new prompt takes over over a few frames instead of at the context's edge.
        """
        if self.guidance_weights is None:
            return v_u + guidance * (v_c - v_u)
        w = self.guidance_weights.to(v_u.device, v_u.dtype)[:, :, None, None]
        return v_u + guidance * w * (v_c - v_u)

    def guided_frames(self, len_mask: torch.Tensor | None) -> torch.Tensor | None:
        """[2B, T'] frames each row of a guided forward ``[uncond; cond]`` attends to over time."""
        if self.uncond_frames is None:
            return None if len_mask is None else torch.cat([len_mask, len_mask])
        full = torch.ones(self.mask.shape[:2], dtype=torch.bool, device=self.mask.device)
        full = full if len_mask is None else len_mask.to(torch.bool)
        return torch.cat([full & self.uncond_frames.to(full.device, torch.bool), full])

    def resamples(self, i: int, n: int) -> int:
        """Extra passes at step ``i`` of ``n`` (none at the last step: the result is clean there)."""
        return self.resample if i < n - 1 and i < self.resample_fraction * n else 0

    def _noise(self, like: torch.Tensor) -> torch.Tensor:
        if self._eps is None:
            g = torch.Generator().manual_seed(int(self.noise_seed))
            self._eps = torch.randn(self.source.shape, generator=g).to(like.device, like.dtype)
            self._gen = torch.Generator().manual_seed(int(self.noise_seed) + 1)
        return self._eps

    @staticmethod
    def _level(sched, i: int) -> int:
        """Timestep the latent is at after step ``i`` (``i = -1``: before the first step; -1: clean)."""
        ts = sched.timesteps
        return int(ts[i + 1]) if i + 1 < len(ts) else -1

    def apply(self, z: torch.Tensor, sched, i: int) -> torch.Tensor:
        """Replace the held cells of ``z`` (after step ``i``) by the source at the same noise level."""
        t = self._level(sched, i)
        m = self.mask[..., None].to(z.dtype)
        if t < 0:
            known = self.source.to(z.dtype)
        else:
            a = _alpha_bar(sched, t).to(z.device, z.dtype)
            known = a.sqrt() * self.source.to(z.dtype) + (1 - a).sqrt() * self._noise(z)
        return z * (1 - m) + known * m

    def renoise(self, z: torch.Tensor, sched, i: int) -> torch.Tensor:
        """Diffuse ``z`` from the level after step ``i`` back to the level step ``i`` starts from."""
        self._noise(z)
        a_to = _alpha_bar(sched, int(sched.timesteps[i])).to(z.device, z.dtype)
        a_from = _alpha_bar(sched, self._level(sched, i)).to(z.device, z.dtype)
        ratio = a_to / a_from
        eps = torch.randn(z.shape, generator=self._gen).to(z.device, z.dtype)
        return ratio.sqrt() * z + (1 - ratio).sqrt() * eps
