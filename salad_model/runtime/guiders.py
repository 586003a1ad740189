"""Guiders: how a guided sampler step combines the unconditional and conditional predictions.

The diffusers style (``diffusers.guiders``): a small object that :func:`sampling.sample` calls where the two
halves of a classifier-free-guidance forward meet; nothing is threaded through the networks. Without a guider
the sampler runs plain CFG, ``v_u + w·(v_c − v_u)`` on the v-prediction, exactly as before (the default, and
every model whose config names no guider).

Why another guider: one global scale does not serve both datasets of the demo model (docs/training.md §5:
Bandai captions want ~2.5, the DeepMimic actions ≥ 5). The alternatives are the published remedies for high
scales, taken from diffusers where it has them:

- :class:`APG` (adaptive projected guidance, Sadat et al. 2024): splits the guidance update into its parts
  parallel and orthogonal to the conditional prediction, scales the parallel part by ``eta`` (the part that
  over-saturates) and caps the update's norm (``norm_threshold``).
- :class:`RescaledCFG` (Lin et al. 2024, §3.4, made for v-prediction models): rescales the guided prediction
  towards the conditional prediction's standard deviation, mixed by ``phi``.
- :class:`IntervalCFG` (Kynkäänniemi et al. 2024): the full scale on a middle interval of the steps only,
  another scale (default 1: the conditional half alone) outside it.

Space: APG and the rescale are applied to the *denoised* prediction x0, not to the network's v output — the
APG paper applies its projection to the denoised estimate, and Lin et al.'s rescale matches the statistics of
the predicted sample. For v-prediction ``x0 = √ᾱ·z − √(1−ᾱ)·v``; the combined x0 is turned back into the v
that gives it, ``v = v_c + (x0_c − x0)/√(1−ᾱ)`` (exact; √(1−ᾱ) ≥ 0.029 on this schedule). Plain CFG is the
same in either space (an affine combination), so it stays on v. Padded frames (``valid`` False: batches of
mixed lengths) are left out of every norm, projection and standard deviation, so a clip's guidance does not
depend on what it is batched with.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

GUIDER_KINDS = ("cfg", "apg", "rescale", "interval")
ROUTED = "by_prompt"  # a config-only kind: a guider per prompt, chosen by the prompt's nearest training captions


@dataclass
class CFG:
    """Plain classifier-free guidance on v (what the sampler does without a guider)."""

    scale: float

    kind = "cfg"
    per_step_scale = True  # its combination is CFG at a scale per step: it also guides inpainting (shots)

    def start(self) -> None:
        """Called before the first step (guiders with state reset it here)."""

    def guided(self, i: int, n: int) -> bool:
        """Whether step ``i`` of ``n`` needs the unconditional half (False: the conditional half alone)."""
        return self.scale != 1.0

    def __call__(self, v_u: torch.Tensor, v_c: torch.Tensor, z: torch.Tensor, alpha_bar: torch.Tensor,
                 i: int, n: int, valid: torch.Tensor | None) -> torch.Tensor:
        return v_u + self.scale * (v_c - v_u)

    def scale_at(self, i: int, n: int) -> float:
        """The CFG scale of step ``i`` of ``n`` (guiders with ``per_step_scale`` only)."""
        return self.scale

    def spec(self) -> dict[str, Any]:
        """The settings as a config's ``info.guider`` holds them (``scale`` comes from the guidance)."""
        return {"kind": self.kind, **{k: v for k, v in asdict(self).items() if k != "scale"}}


def _to_x0(v: torch.Tensor, z: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    return alpha_bar.sqrt() * z - (1 - alpha_bar).sqrt() * v


def _back_to_v(x0: torch.Tensor, x0_c: torch.Tensor, v_c: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """The v whose denoised estimate is ``x0`` (from the conditional pair, for precision)."""
    return v_c + (x0_c - x0) / (1 - alpha_bar).sqrt()


def _zero_padding(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    return x if valid is None else x * valid[:, :, None, None].to(x.dtype)


@dataclass
class APG(CFG):
    """Adaptive projected guidance on x0 (diffusers' ``normalized_guidance``; eta 1 and no threshold = CFG)."""

    eta: float = 0.0
    norm_threshold: float = 0.0
    momentum: float | None = None

    kind = "apg"
    per_step_scale = False

    def start(self) -> None:
        from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer

        self._buffer = None if self.momentum is None else MomentumBuffer(self.momentum)

    def __call__(self, v_u, v_c, z, alpha_bar, i, n, valid):
        from diffusers.guiders.adaptive_projected_guidance import normalized_guidance

        # padded frames zeroed: they add nothing to the norms and the projection (all non-batch dims)
        x_u, x_c = (_zero_padding(_to_x0(v, z, alpha_bar), valid) for v in (v_u, v_c))
        # the paper's form, x_c + (w − 1)·update (diffusers' "original formulation"): the conditional prediction
        # is kept whole and only the extra guidance is projected; diffusers' other form, x_u + w·update, would
        # also drop the parallel part of (x_c − x_u) itself at eta 0
        x = normalized_guidance(x_c, x_u, self.scale - 1, getattr(self, "_buffer", None), self.eta,
                                self.norm_threshold, use_original_formulation=True)
        return _back_to_v(x, x_c, v_c, alpha_bar)


@dataclass
class RescaledCFG(CFG):
    """CFG on x0 rescaled towards the conditional x0's standard deviation (diffusers' ``rescale_noise_cfg``)."""

    phi: float = 0.7

    kind = "rescale"
    per_step_scale = False

    def __call__(self, v_u, v_c, z, alpha_bar, i, n, valid):
        from diffusers.guiders.guider_utils import rescale_noise_cfg

        x_u, x_c = _to_x0(v_u, z, alpha_bar), _to_x0(v_c, z, alpha_bar)
        x = x_u + self.scale * (x_c - x_u)
        if valid is None:
            x = rescale_noise_cfg(x, x_c, self.phi)
        else:  # each clip over its own frames: the standard deviations must not see the padding
            x = x.clone()
            for b, t in enumerate(valid.sum(1).tolist()):
                x[b:b + 1, :t] = rescale_noise_cfg(x[b:b + 1, :t], x_c[b:b + 1, :t], self.phi)
        return _back_to_v(x, x_c, v_c, alpha_bar)


@dataclass
class IntervalCFG(CFG):
    """The full scale on steps ``[start·n, stop·n)`` only (fractions of the run, first step = highest noise);
    ``outside`` elsewhere (1: the conditional half alone, that step costs half a guided one)."""

    start_at: float = 0.2
    stop_at: float = 0.8
    outside: float = 1.0

    kind = "interval"

    def _inside(self, i: int, n: int) -> bool:
        return int(self.start_at * n) <= i < int(self.stop_at * n)

    def guided(self, i, n):
        return (self.scale if self._inside(i, n) else self.outside) != 1.0

    def scale_at(self, i, n):
        return self.scale if self._inside(i, n) else self.outside

    def __call__(self, v_u, v_c, z, alpha_bar, i, n, valid):
        return v_u + self.scale_at(i, n) * (v_c - v_u)


_CLASSES: dict[str, type[CFG]] = {c.kind: c for c in (CFG, APG, RescaledCFG, IntervalCFG)}


def make_guider(spec: dict[str, Any] | str | None, scale: float) -> CFG | None:
    """A guider for guidance ``scale`` from a spec (a dict such as a config's ``info.guider``, or the CLI form
    ``"apg:eta=0,norm_threshold=2"``); None or ``"cfg"`` with no settings → None (the sampler's plain CFG)."""
    if spec is None:
        return None
    if isinstance(spec, str):
        kind, _, rest = spec.partition(":")
        spec = {"kind": kind.strip()}
        for item in filter(None, (s.strip() for s in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"guider setting {item!r} is not key=value")
            spec[key.strip()] = None if value.strip().lower() == "none" else float(value)
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in _CLASSES:
        raise ValueError(f"unknown guider {kind!r}; choose one of {', '.join(GUIDER_KINDS)}")
    cls = _CLASSES[kind]
    known = {f for f in cls.__dataclass_fields__ if f != "scale"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown} for guider {kind!r} (known: {', '.join(sorted(known))})")
    for k, v in spec.items():
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
            raise ValueError(f"guider setting {k}={v!r} must be a finite number")
    if kind == "cfg":  # plain CFG has no settings: the sampler's own path
        return None
    return cls(scale=float(scale), **spec)


@dataclass
class RowGuiders:
    """One guider per batch row (prompts of a batch routed to different guiders, :func:`routed_guider`).

    A step is guided when any row's guider guides it; a row whose own guider leaves that step unguided gets its
    conditional half alone, as it would alone.
    """

    rows: list[CFG]

    kind = ROUTED
    per_step_scale = False  # a batch of prompts: inpainting samples one prompt at a time

    def start(self) -> None:
        for g in self.rows:
            g.start()

    def guided(self, i: int, n: int) -> bool:
        return any(g.guided(i, n) for g in self.rows)

    def __call__(self, v_u, v_c, z, alpha_bar, i, n, valid):
        return torch.cat([g(v_u[b:b + 1], v_c[b:b + 1], z[b:b + 1], alpha_bar, i, n,
                            None if valid is None else valid[b:b + 1]) if g.guided(i, n) else v_c[b:b + 1]
                          for b, g in enumerate(self.rows)])

    def row(self, b: int) -> CFG:
        return self.rows[b]


def is_routed(spec: dict[str, Any] | str | None) -> bool:
    return isinstance(spec, dict) and spec.get("kind") == ROUTED


def check_routed(spec: dict[str, Any]) -> None:
    """Every entry of a ``by_prompt`` spec is a valid guider with its own scale (ValueError: which is not)."""
    routes = spec.get("routes")
    unknown = sorted(set(spec) - {"kind", "default", "routes", "about"})
    if unknown or not isinstance(routes, dict) or not isinstance(spec.get("default"), dict):
        raise ValueError(f"a {ROUTED!r} guider needs a 'default' guider and a 'routes' mapping (got keys "
                         f"{sorted(spec)})")
    for name, sub in [("default", spec["default"]), *routes.items()]:
        sub = dict(sub) if isinstance(sub, dict) else {"kind": sub}
        scale = sub.pop("scale", None)
        if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"{ROUTED!r} entry {name!r} needs its own finite positive 'scale' (got {scale!r})")
        if sub.get("kind") == ROUTED:
            raise ValueError(f"{ROUTED!r} guiders do not nest (entry {name!r})")
        make_guider(sub, scale)


def route_guider(spec: dict[str, Any], route: str | None, factor: float = 1.0) -> CFG:
    """The guider of one prompt under a ``by_prompt`` spec::

        {"kind": "by_prompt", "default": {"kind": "cfg", "scale": 2.5},
         "routes": {"deepmimic": {"kind": "interval", "scale": 7, "start_at": 0, "stop_at": 0.2, "outside": 2.5}}}

    ``route`` (the dataset of the prompt's nearest training caption, :mod:`novelty`) picks an entry of
    ``routes``, anything else ``default``. Each entry's scales are absolute at the model's default guidance;
    ``factor`` (the guidance asked for / that default) multiplies them, so a guidance slider still means
    "stronger / weaker" for every prompt. Always a guider object (plain CFG too): the rows of a batch may differ.
    """
    check_routed(spec)
    sub = dict(spec["routes"][route]) if route in spec["routes"] else dict(spec["default"])
    scale = sub.pop("scale")
    if isinstance(sub.get("outside"), (int, float)):
        sub["outside"] = sub["outside"] * factor
    return make_guider(sub, scale * factor) or CFG(scale * factor)


def routed_guider(spec: dict[str, Any], routes: list[str | None], factor: float = 1.0) -> CFG | RowGuiders:
    """One prompt's guider, or :class:`RowGuiders` when a batch's prompts take different routes."""
    rows = [route_guider(spec, r, factor) for r in routes]
    if all(r == rows[0] for r in rows):  # dataclass equality: the same kind and settings
        return rows[0]
    return RowGuiders(rows)


def guider_meta(guide: CFG | RowGuiders, b: int, routes: list[str | None] | None = None) -> dict[str, Any]:
    """What a clip's metadata says of the guider that made row ``b``; routed (``routes``: each row's route):
    also its own scale and the route that chose it (its ``kind`` stays the row guider's)."""
    g = guide.row(b) if isinstance(guide, RowGuiders) else guide
    out = g.spec()
    if routes is not None:
        out.update(scale=g.scale, route=routes[b])
    return out
