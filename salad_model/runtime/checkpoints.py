"""Loading and saving models: the official SALAD folder layout and our own safetensors format.

Official (SALAD_SPEC §6): ``checkpoints/{t2m,kit}/<denoiser>/opt.txt`` names ``vae_name``; weights in
``model/net_best_fid.tar`` (``{"vae"| "denoiser": state_dict, "epoch": int}``); feature statistics in
``Comp_v6_KLD005/meta/{mean,std}.npy``; CLIP in ``checkpoints/clip-vit-base-patch32``. Dimensions are
read from the tensors, not trusted from opt.txt.

Ours: a folder with ``config.json``, ``vae.safetensors``, ``denoiser.safetensors`` and
``stats.safetensors`` (mean/std). Everything loads with ``weights_only=True`` or safetensors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .denoiser import Denoiser, DenoiserConfig, strip_clip_keys
from .integrity import IntegrityError, check_download
from .requests import SCHEDULERS, STEPS_MAX
from .sampling import DiffusionConfig
from .vae import VAE, VAEConfig

FORMAT = "salad-blender/1"


class CheckpointError(Exception):
    """A model file is missing, corrupt or does not match the network; the message names file and key."""


@dataclass
class ModelBundle:
    """Everything a pipeline needs besides the text encoder instance."""

    vae: VAE
    denoiser: Denoiser
    mean: torch.Tensor
    std: torch.Tensor
    text_encoder: dict
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    info: dict = field(default_factory=dict)  # name, dataset, fps, min/max frames, licence, source path


# ------------------------------------------------------------------------------------------------
# opt.txt


def parse_opt(path: Path) -> dict:
    """Parse a reference ``opt.txt`` (``key: value`` lines between the banner lines) like ``get_opt``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"options file not found: {path}")
    opts: dict = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("---") or ": " not in line:
            continue
        key, value = line.split(": ", 1)
        opts[key.strip()] = _opt_value(value.strip())
    return opts


def _opt_value(v: str):
    if v in ("True", "False"):
        return v == "True"
    if re.fullmatch(r"-?\d+\.\d+", v):
        return float(v)
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    if v.startswith("[") and v.endswith("]"):
        items = [s.strip().strip("'\"") for s in v[1:-1].split(",") if s.strip()]
        return [_opt_value(s) for s in items]
    return v


def write_opt(path: Path, opts: dict) -> None:
    lines = ["------------ Options -------------"]
    lines += [f"{k}: {opts[k]}" for k in sorted(opts)]
    lines.append("-------------- End ----------------")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# Safe loading with specific errors


def load_torch_file(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, disallowed globals
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}. The file is "
                              "corrupt, truncated, or not a weights-only PyTorch checkpoint.") from exc


def load_state(module: torch.nn.Module, state: dict, source: Path, ignore_missing: tuple[str, ...] = ()
               ) -> None:
    """Strict load with one readable error for missing/unexpected keys and shape mismatches."""
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.startswith(ignore_missing)]
    unexpected = [k for k in state if k not in own]
    bad = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
           if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected[:8])}{' …' if len(unexpected) > 8 else ''}")
    if bad:
        problems.append("shape mismatch: " + "; ".join(f"{k} is {a} in the file, expected {b}"
                                                       for k, a, b in bad[:8]))
    if problems:
        raise CheckpointError(f"{source} does not match the {type(module).__name__} network: "
                              + " | ".join(problems))
    module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def vae_config_from_state(state: dict, opts: dict | None = None) -> VAEConfig:
    """Infer VAE dimensions from tensors (joint count → dataset, latent width, extra layers, kernel)."""
    try:
        n_joints = len({k.split(".")[2] for k in state if k.startswith("motion_enc.layers.")})
        latent = state["dist.weight"].shape[1]
        kernel = state["conv_enc.layers.0.0.layers.2.temp_conv.weight"].shape[-1]
    except KeyError as exc:
        raise CheckpointError(f"not a SALAD VAE state dict (no {exc.args[0]!r})") from exc
    dataset = {22: "t2m", 21: "kit"}.get(n_joints)
    if dataset is None:
        raise CheckpointError(f"VAE has {n_joints} joint MLPs; expected 22 (t2m) or 21 (kit)")
    n_res = 0
    while f"conv_enc.layers.0.{n_res}.layers.2.adj_matrix" in state:
        n_res += 1
    opts = opts or {}
    return VAEConfig(dataset=dataset, latent_dim=latent, kernel_size=kernel, n_layers=2,
                     n_extra_layers=max(n_res - 1, 0), activation=str(opts.get("activation", "gelu")),
                     dropout=float(opts.get("dropout", 0.1)))


def denoiser_config_from_state(state: dict, opts: dict | None = None) -> DenoiserConfig:
    """Infer denoiser widths and depth from tensors; heads come from opt.txt (default 8)."""
    try:
        d, vae_dim = state["input_process.layers.0.weight"].shape
        text_dim = state["word_emb.weight"].shape[1]
        ff = state["transformer.middle_block.ffn_linear1.weight"].shape[0]
    except KeyError as exc:
        raise CheckpointError(f"not a SALAD denoiser state dict (no {exc.args[0]!r})") from exc
    n_in = len({k.split(".")[2] for k in state if k.startswith("transformer.input_blocks.")})
    opts = opts or {}
    max_len = state["pos_emb.pe"].shape[1] if "pos_emb.pe" in state else 5000
    return DenoiserConfig(latent_dim=d, n_heads=int(opts.get("n_heads", 8)), n_layers=2 * n_in + 1,
                          ff_dim=ff, activation=str(opts.get("activation", "gelu")),
                          dropout=float(opts.get("dropout", 0.1)), text_dim=text_dim, vae_dim=vae_dim,
                          max_len=max_len)


# ------------------------------------------------------------------------------------------------
# Official layout


CLIP_FOLDER = "clip-vit-base-patch32"
STATS_FOLDER = "Comp_v6_KLD005"


def load_official(denoiser_dir: Path, clip_dir: Path | None = None, stats_dir: Path | None = None
                  ) -> ModelBundle:
    """Load ``checkpoints/<ds>/<denoiser_name>`` with its VAE, statistics and CLIP folder."""
    ddir = Path(denoiser_dir)
    if not ddir.is_dir():
        raise CheckpointError(f"model folder not found: {ddir}")
    try:  # a `download official` folder: every file against the sha256 recorded at download
        check_download(ddir)
    except IntegrityError as exc:
        raise CheckpointError(str(exc)) from exc
    dopt = parse_opt(ddir / "opt.txt")
    ds_dir = ddir.parent
    vae_name = dopt.get("vae_name")
    if not vae_name:
        raise CheckpointError(f"{ddir / 'opt.txt'} has no 'vae_name' line")
    vdir = ds_dir / str(vae_name)
    vopt = parse_opt(vdir / "opt.txt") if (vdir / "opt.txt").is_file() else {}

    vfile = vdir / "model" / "net_best_fid.tar"
    vckpt = load_torch_file(vfile)
    if "vae" not in vckpt:
        raise CheckpointError(f"{vfile} has no 'vae' entry (keys: {sorted(vckpt)})")
    vcfg = vae_config_from_state(vckpt["vae"], vopt)
    vae = VAE(vcfg)
    load_state(vae, vckpt["vae"], vfile)

    dfile = ddir / "model" / "net_best_fid.tar"
    dckpt = load_torch_file(dfile)
    if "denoiser" not in dckpt:
        raise CheckpointError(f"{dfile} has no 'denoiser' entry (keys: {sorted(dckpt)})")
    dstate = strip_clip_keys(dckpt["denoiser"])
    dcfg = denoiser_config_from_state(dstate, dopt)
    den = Denoiser(dcfg)
    load_state(den, dstate, dfile, ignore_missing=("pos_emb.",))

    sdir = Path(stats_dir) if stats_dir else ds_dir / STATS_FOLDER / "meta"
    mean, std = (_load_npy(sdir / "mean.npy"), _load_npy(sdir / "std.npy"))
    dim = vae.layout.dim
    for name, arr in (("mean", mean), ("std", std)):
        if arr.shape != (dim,):
            raise CheckpointError(f"{sdir / (name + '.npy')} has shape {arr.shape}, expected ({dim},)")
    cdir = Path(clip_dir) if clip_dir else ds_dir.parent / CLIP_FOLDER
    diffusion = DiffusionConfig(
        num_train_timesteps=int(dopt.get("num_train_timesteps", 1000)),
        beta_start=float(dopt.get("beta_start", 0.00085)), beta_end=float(dopt.get("beta_end", 0.012)),
        beta_schedule=str(dopt.get("beta_schedule", "scaled_linear")),
        prediction_type=str(dopt.get("prediction_type", "v_prediction")))
    info = {"name": ddir.name, "dataset": vcfg.dataset, "fps": 20.0 if vcfg.dataset == "t2m" else 12.5,
            "min_frames": 40 if vcfg.dataset == "t2m" else 24, "max_frames": 196, "source": str(ddir),
            "format": "official", "guidance": float(dopt.get("cond_scale", 7.5)),
            "license": "see the SALAD authors' release terms"}
    return ModelBundle(vae.eval(), den.eval(), torch.from_numpy(mean), torch.from_numpy(std),
                       {"type": "clip", "path": str(cdir)}, diffusion, info)


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise CheckpointError(f"feature statistics not found: {path}")
    try:
        return np.load(path, allow_pickle=False).astype(np.float32)
    except Exception as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc


# ------------------------------------------------------------------------------------------------
# Our format


def save_model(bundle: ModelBundle, folder: Path, dtype: torch.dtype = torch.float32) -> Path:
    """Write config.json + safetensors (weights optionally float16; fixed buffers stay float32)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def pack(module: torch.nn.Module, skip: tuple[str, ...] = ()) -> dict:
        params = {n for n, _ in module.named_parameters()}
        return {k: (v.to(dtype) if k in params else v).contiguous().clone()
                for k, v in module.state_dict().items() if not k.startswith(skip)}

    save_file(pack(bundle.vae), str(folder / "vae.safetensors"))
    save_file(pack(bundle.denoiser, ("pos_emb.",)), str(folder / "denoiser.safetensors"))
    save_file({"mean": bundle.mean.float().contiguous(), "std": bundle.std.float().contiguous()},
              str(folder / "stats.safetensors"))
    config = {"format": FORMAT, "vae": bundle.vae.config.to_dict(),
              "denoiser": bundle.denoiser.config.to_dict(), "diffusion": bundle.diffusion.to_dict(),
              "text_encoder": bundle.text_encoder, "info": bundle.info,
              "weights_dtype": str(dtype).replace("torch.", "")}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    for name in ("vae.safetensors", "denoiser.safetensors", "stats.safetensors"):
        (folder / name).chmod(0o644)  # safetensors writes owner-only files; shipped weights must be readable
    return folder


_TOP_KEYS = {"format", "vae", "denoiser", "diffusion", "text_encoder", "info", "weights_dtype"}
_REQUIRED_TOP = ("format", "vae", "denoiser", "text_encoder")
_TEXT_KINDS = ("clip", "minilm", "tiny", "precomputed")
# "" = the sampler's own; else one both samplers take (diffusers' DDIM has no "linspace": a model's spacing
# is used by whichever sampler the user picks)
TIMESTEP_SPACINGS = ("", "leading", "trailing")


def _check_section(cfile: Path, section: str, values: object, cls: type, required: bool) -> None:
    """Keys and types of one dataclass-shaped config section (int not bool, sizes positive, finite floats)."""
    import dataclasses
    import math

    if not isinstance(values, dict):
        raise CheckpointError(f"{cfile}: {section!r} must be an object, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise CheckpointError(f"{cfile}: unknown key {section}.{unknown[0]} (allowed: {', '.join(fields)})")
    if required:
        missing = [k for k in fields if k not in values]
        if missing:
            raise CheckpointError(f"{cfile}: missing key {section}.{missing[0]}")
    for key, v in values.items():
        default = fields[key].default
        where = f"{cfile}: {section}.{key}"
        if isinstance(default, bool) or isinstance(default, str) or isinstance(default, dict):
            kind = type(default)
        elif isinstance(default, int):
            kind = int
        elif isinstance(default, float):
            kind = float
        else:
            kind = dict
        if kind is int:
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise CheckpointError(f"{where} must be a positive integer, got {v!r}")
        elif kind is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise CheckpointError(f"{where} must be a finite non-negative number, got {v!r}")
        elif not isinstance(v, kind):
            raise CheckpointError(f"{where} must be {kind.__name__}, got {v!r}")


def _check_distilled(distilled: object, cfile: Path) -> None:
    """A step-distilled student's sampler (``info.distilled``, written by ``training.distill export``): Fast mode
    runs ``scheduler`` for ``steps``, so both are checked here rather than failing inside a generation."""
    if not isinstance(distilled, dict):
        raise CheckpointError(f"{cfile}: info.distilled must be an object, got {distilled!r}")
    for key in ("scheduler", "steps"):
        if key not in distilled:
            raise CheckpointError(f"{cfile}: missing key info.distilled.{key}")
    if distilled["scheduler"] not in SCHEDULERS:
        raise CheckpointError(f"{cfile}: info.distilled.scheduler must be one of {', '.join(SCHEDULERS)}, "
                              f"got {distilled['scheduler']!r}")
    steps = distilled["steps"]
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= STEPS_MAX:
        raise CheckpointError(f"{cfile}: info.distilled.steps must be an integer within 1 … {STEPS_MAX}, "
                              f"got {steps!r}")


def check_config(config: dict, cfile: Path) -> None:
    """Validate our config.json completely before building anything; errors name the file and key."""
    import math

    unknown = sorted(set(config) - _TOP_KEYS)
    if unknown:
        raise CheckpointError(f"{cfile}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    missing = [k for k in _REQUIRED_TOP if k not in config]
    if missing:
        raise CheckpointError(f"{cfile}: missing key {missing[0]!r}")
    _check_section(cfile, "vae", config["vae"], VAEConfig, required=True)
    _check_section(cfile, "denoiser", config["denoiser"], DenoiserConfig, required=True)
    if "diffusion" in config:
        _check_section(cfile, "diffusion", config["diffusion"], DiffusionConfig, required=False)
        spacing = config["diffusion"].get("timestep_spacing", "")
        if spacing not in TIMESTEP_SPACINGS:
            raise CheckpointError(f"{cfile}: diffusion.timestep_spacing must be one of "
                                  f"{', '.join(map(repr, TIMESTEP_SPACINGS))}, got {spacing!r}")
    te = config["text_encoder"]
    if not isinstance(te, dict) or te.get("type") not in _TEXT_KINDS:
        raise CheckpointError(f"{cfile}: text_encoder.type must be one of {', '.join(_TEXT_KINDS)}, "
                              f"got {te.get('type') if isinstance(te, dict) else te!r}")
    if te["type"] in ("clip", "precomputed") and not isinstance(te.get("path"), str):
        raise CheckpointError(f"{cfile}: text_encoder.path is required for a {te['type']!r} text encoder")
    if isinstance(te.get("path"), str) and not Path(te["path"]).expanduser().exists():
        raise CheckpointError(f"{cfile}: text_encoder.path {te['path']!r} does not exist")
    info = config.get("info", {})
    if not isinstance(info, dict):
        raise CheckpointError(f"{cfile}: 'info' must be an object")
    for key, lo, hi in (("fps", 0.0, 1000.0), ("guidance", 0.0, 30.0)):
        v = info.get(key)
        if v is None:
            continue
        number = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
        if not number or not (lo < v <= hi if key == "fps" else lo <= v <= hi):
            bounds = f"more than {lo:g} and at most {hi:g}" if key == "fps" else f"within {lo:g} … {hi:g}"
            raise CheckpointError(f"{cfile}: info.{key} must be a number {bounds}, got {v!r}")
    if "distilled" in info:
        _check_distilled(info["distilled"], cfile)
    frames = {}
    for key in ("min_frames", "max_frames"):
        v = info.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0 or v % 4):
            raise CheckpointError(f"{cfile}: info.{key} must be a positive multiple of 4, got {v!r}")
        frames[key] = v
    if frames["min_frames"] and frames["max_frames"] and frames["min_frames"] > frames["max_frames"]:
        raise CheckpointError(f"{cfile}: info.min_frames is larger than info.max_frames")


def load_model(folder: Path) -> ModelBundle:
    """Load our format; every failure names the file (and key) at fault."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    cfile = folder / "config.json"
    if not cfile.is_file():
        raise CheckpointError(f"model config not found: {cfile}")
    try:
        config = json.loads(cfile.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{cfile} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(f"{cfile}: unsupported format {got!r} (expected {FORMAT!r})")
    check_config(config, cfile)

    def read(name: str) -> dict:
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"weights file not found: {path}")
        try:
            # copy=True: load_file's tensors are views of a memory map of the file, so float32 ones (the stats)
            # changed when the file was overwritten in place while loaded, and a truncated file could crash the
            # process on access (SIGBUS); a copy is the weights as they were read
            return {k: v.to(torch.float32, copy=True) for k, v in load_file(str(path)).items()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {path}: {exc} (corrupt or truncated file)") from exc

    vcfg_d = dict(config["vae"])
    dcfg_d = dict(config["denoiser"])
    try:
        vae = VAE(VAEConfig(**vcfg_d))
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{cfile}: 'vae' does not describe a buildable VAE: {exc}") from exc
    load_state(vae, read("vae.safetensors"), folder / "vae.safetensors")
    try:
        den = Denoiser(DenoiserConfig(**dcfg_d))
    except (KeyError, ValueError, RuntimeError, AssertionError) as exc:
        raise CheckpointError(f"{cfile}: 'denoiser' does not describe a buildable denoiser: {exc}") from exc
    load_state(den, read("denoiser.safetensors"), folder / "denoiser.safetensors", ignore_missing=("pos_emb.",))
    stats = read("stats.safetensors")
    if "mean" not in stats or "std" not in stats:
        raise CheckpointError(f"{folder / 'stats.safetensors'} must hold 'mean' and 'std'")
    dim = vae.layout.dim
    for name in ("mean", "std"):
        if tuple(stats[name].shape) != (dim,):
            raise CheckpointError(f"{folder / 'stats.safetensors'}: {name!r} has shape {tuple(stats[name].shape)}, "
                                  f"this VAE needs ({dim},)")
        if not torch.isfinite(stats[name]).all():
            raise CheckpointError(f"{folder / 'stats.safetensors'}: {name!r} holds NaN or infinite values")
    if not (stats["std"] > 0).all():
        raise CheckpointError(f"{folder / 'stats.safetensors'}: 'std' must be positive everywhere")
    info = dict(config.get("info", {}))
    info.setdefault("name", folder.name)
    info["source"] = str(folder)
    info["format"] = FORMAT
    return ModelBundle(vae.eval(), den.eval(), stats["mean"], stats["std"], config["text_encoder"],
                       DiffusionConfig(**config.get("diffusion", {})), info)


def load_any(path: Path) -> ModelBundle:
    """Our format if ``config.json`` is there, else the official layout (``opt.txt``)."""
    path = Path(path)
    if (path / "config.json").is_file():
        return load_model(path)
    if (path / "opt.txt").is_file():
        return load_official(path)
    if not path.exists():
        raise CheckpointError(f"model folder not found: {path}")
    raise CheckpointError(f"{path} is neither our model format (config.json) nor an official SALAD "
                          "checkpoint folder (opt.txt + model/net_best_fid.tar)")


def random_bundle(preset: str = "tiny", seed: int = 0, text_encoder: dict | None = None) -> ModelBundle:
    """Randomly initialised model for tests and benchmarks: ``tiny`` (fast) or ``official`` (paper size)."""
    torch.manual_seed(seed)
    if preset == "tiny":
        vae = VAE(VAEConfig(latent_dim=8))
        te = text_encoder or {"type": "tiny", "seed": seed, "dim": 16}
        den = Denoiser(DenoiserConfig(latent_dim=32, n_heads=2, n_layers=3, ff_dim=64, text_dim=te.get("dim", 16),
                                      vae_dim=8))
    elif preset == "official":
        vae = VAE(VAEConfig())
        te = text_encoder or {"type": "tiny", "seed": seed, "dim": 512}
        den = Denoiser(DenoiserConfig(text_dim=te.get("dim", 512)))
    else:
        raise ValueError(f"unknown preset {preset!r}")
    dim = vae.layout.dim
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(dim, generator=g) * 0.1
    mean[3] = 0.9
    std = torch.full((dim,), 0.1)
    std[:3] = 0.02
    info = {"name": f"random-{preset}", "dataset": "t2m", "fps": 20.0, "min_frames": 40, "max_frames": 196,
            "license": "test weights (random)", "guidance": 7.5}
    return ModelBundle(vae.eval(), den.eval(), mean, std, te, DiffusionConfig(), info)
