"""The T2M evaluator (Guo et al. 2022) as SALAD scores with it: three encoders and the co-embedding wrapper.

Module and parameter names equal the keys of the released ``text_mot_match/model/finest.tar`` so the official
file loads strictly (T2M_EVALUATOR_SPEC §3.6). Widths are read from the tensors, not trusted from opt.txt, so
reduced-width test checkpoints load through the same path. Built from the spec, not from the reference code.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ...runtime.checkpoints import CheckpointError, load_torch_file, parse_opt, write_opt

DIM_POSE = {"t2m": 263, "kit": 251}
MIN_MOTION_LEN = {"t2m": 40, "kit": 24}
EVALUATOR_FOLDER = "text_mot_match"
OPT_FOLDER = "Comp_v6_KLD005"


@dataclass
class EvaluatorConfig:
    """Widths of the three encoders (defaults = the released t2m evaluator, spec §3.1)."""

    dim_pose: int = 263
    dim_word: int = 300
    dim_pos_ohot: int = 15
    dim_movement_enc_hidden: int = 512
    dim_movement_latent: int = 512
    dim_text_hidden: int = 512
    dim_motion_hidden: int = 1024
    dim_coemb_hidden: int = 512
    unit_length: int = 4
    max_text_len: int = 20

    def to_dict(self) -> dict:
        return asdict(self)


class MovementConvEncoder(nn.Module):
    """Two stride-2 convolutions (×4 down-sampling) and a per-step linear map; input has no contact channels."""

    def __init__(self, d_in: int, hidden: int, latent: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(d_in, hidden, 4, 2, 1), nn.Dropout(0.2, inplace=False), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, latent, 4, 2, 1), nn.Dropout(0.2, inplace=False), nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(latent, latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, D-4] → [B, T//4, latent]."""
        return self.out_net(self.main(x.permute(0, 2, 1)).permute(0, 2, 1))


def _bigru_final(gru: nn.GRU, hidden: torch.Tensor, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Final [forward; backward] states of a packed bidirectional GRU with a learned initial state → [B, 2H]."""
    h0 = hidden.expand(-1, x.shape[0], -1).contiguous()
    packed = pack_padded_sequence(x, lengths.detach().cpu().long(), batch_first=True, enforce_sorted=False)
    _, h_n = gru(packed, h0)
    return torch.cat([h_n[0], h_n[1]], dim=-1)


def _head(d_in: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, out))


class TextEncoderBiGRUCo(nn.Module):
    """GloVe word vector + projected POS one-hot → packed BiGRU → co-embedding (spec §3.4)."""

    def __init__(self, word_size: int, pos_size: int, hidden: int, output: int):
        super().__init__()
        self.pos_emb = nn.Linear(pos_size, word_size)
        self.input_emb = nn.Linear(word_size, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.output_net = _head(2 * hidden, hidden, output)
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden))

    def forward(self, word_embs: torch.Tensor, pos_onehot: torch.Tensor, cap_lens: torch.Tensor) -> torch.Tensor:
        x = self.input_emb(word_embs + self.pos_emb(pos_onehot))
        return self.output_net(_bigru_final(self.gru, self.hidden, x, cap_lens))


class MotionEncoderBiGRUCo(nn.Module):
    """Movement features → packed BiGRU over ``m // unit_length`` steps → co-embedding (spec §3.5)."""

    def __init__(self, input_size: int, hidden: int, output: int):
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.output_net = _head(2 * hidden, hidden, output)
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden))

    def forward(self, movements: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
        return self.output_net(_bigru_final(self.gru, self.hidden, self.input_emb(movements), m_lens))


def _init_reference(module: nn.Module) -> None:
    """Xavier-normal weights and zero biases for every Linear/Conv (spec §3.6; only matters for training)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)


class T2MEvaluator(nn.Module):
    """The three encoders plus the wrapper's co-embedding logic (spec §3.7)."""

    def __init__(self, config: EvaluatorConfig | None = None, reference_init: bool = True):
        super().__init__()
        c = self.config = config or EvaluatorConfig()
        self.movement_encoder = MovementConvEncoder(c.dim_pose - 4, c.dim_movement_enc_hidden, c.dim_movement_latent)
        self.text_encoder = TextEncoderBiGRUCo(c.dim_word, c.dim_pos_ohot, c.dim_text_hidden, c.dim_coemb_hidden)
        self.motion_encoder = MotionEncoderBiGRUCo(c.dim_movement_latent, c.dim_motion_hidden, c.dim_coemb_hidden)
        if reference_init:
            for m in (self.movement_encoder, self.text_encoder, self.motion_encoder):
                _init_reference(m)
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.movement_encoder.out_net.weight.device

    def _motion(self, motions: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
        movements = self.movement_encoder(motions[..., :-4].float())
        return self.motion_encoder(movements, m_lens // self.config.unit_length)

    @staticmethod
    def align_index(m_lens: torch.Tensor | np.ndarray) -> np.ndarray:
        """Lengths descending, computed like the reference (NumPy argsort ascending, reversed)."""
        return np.argsort(np.asarray(torch.as_tensor(m_lens).cpu()))[::-1].copy()

    @torch.no_grad()
    def get_co_embeddings(self, word_embs: torch.Tensor, pos_ohot: torch.Tensor, cap_lens: torch.Tensor,
                          motions: torch.Tensor, m_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(text_emb, motion_emb) [B, C], both rows in descending-motion-length order (not input order)."""
        dev = self.device
        align = torch.from_numpy(self.align_index(m_lens)).to(dev)
        motions = torch.as_tensor(motions).to(dev)[align]
        m_lens = torch.as_tensor(m_lens).to(dev)[align]
        motion_emb = self._motion(motions, m_lens)
        text_emb = self.text_encoder(torch.as_tensor(word_embs).to(dev).float(),
                                     torch.as_tensor(pos_ohot).to(dev).float(), torch.as_tensor(cap_lens))
        return text_emb[align], motion_emb

    @torch.no_grad()
    def get_motion_embeddings(self, motions: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
        """Motion embeddings only, in descending-length order (the wrapper's motion-only variant)."""
        dev = self.device
        align = torch.from_numpy(self.align_index(m_lens)).to(dev)
        return self._motion(torch.as_tensor(motions).to(dev)[align], torch.as_tensor(m_lens).to(dev)[align])

    def state_dicts(self) -> dict:
        """The ``finest.tar`` payload (without optimiser states)."""
        return {"movement_encoder": self.movement_encoder.state_dict(),
                "text_encoder": self.text_encoder.state_dict(),
                "motion_encoder": self.motion_encoder.state_dict()}


# ------------------------------------------------------------------------------------------------
# Official layout


def config_from_state(ckpt: dict, opts: dict | None = None) -> EvaluatorConfig:
    """Widths from the tensors; ``unit_length`` from opt.txt (default 4)."""
    try:
        mov, txt, mot = ckpt["movement_encoder"], ckpt["text_encoder"], ckpt["motion_encoder"]
        return EvaluatorConfig(
            dim_pose=int(mov["main.0.weight"].shape[1]) + 4,
            dim_word=int(txt["pos_emb.weight"].shape[0]),
            dim_pos_ohot=int(txt["pos_emb.weight"].shape[1]),
            dim_movement_enc_hidden=int(mov["main.0.weight"].shape[0]),
            dim_movement_latent=int(mov["main.3.weight"].shape[0]),
            dim_text_hidden=int(txt["hidden"].shape[-1]),
            dim_motion_hidden=int(mot["hidden"].shape[-1]),
            dim_coemb_hidden=int(txt["output_net.3.weight"].shape[0]),
            unit_length=int((opts or {}).get("unit_length", 4)),
            max_text_len=int((opts or {}).get("max_text_len", 20)),
        )
    except KeyError as exc:
        raise CheckpointError(f"not a T2M evaluator checkpoint: missing {exc.args[0]!r}") from exc


def _check_opts(cfg: EvaluatorConfig, opts: dict, source: Path) -> None:
    """The opt.txt widths must agree with the tensors (the reference would fail its strict load otherwise)."""
    for key in ("dim_movement_enc_hidden", "dim_movement_latent"):
        if key in opts and int(opts[key]) != getattr(cfg, key):
            raise CheckpointError(f"{source}: {key} is {opts[key]} but the weights have {getattr(cfg, key)}; "
                                  "opt.txt and finest.tar belong to different evaluators")


def find_evaluator_files(root: Path, dataset: str) -> tuple[Path, Path]:
    """``(finest.tar, opt.txt)`` under a repository root, a ``checkpoints`` folder or a ``checkpoints/<ds>`` folder."""
    root = Path(root)
    tried = []
    for base in (root / "checkpoints" / dataset, root / dataset, root):
        tar = base / EVALUATOR_FOLDER / "model" / "finest.tar"
        tried.append(str(tar))
        if tar.is_file():
            return tar, base / OPT_FOLDER / "opt.txt"
    raise CheckpointError(f"no T2M evaluator for {dataset!r} found; looked for: {', '.join(tried)}")


def load_evaluator(root: Path, dataset: str = "t2m", device: str | torch.device = "cpu",
                   allow_pickle: bool = False) -> T2MEvaluator:
    """Load the official evaluator (weights-only, strict) from the layout of spec §1.1.

    Whether the released ``finest.tar`` loads weights-only is unverified (spec §7); if it does not, a full
    unpickling is attempted only with ``allow_pickle`` (CLI ``--allow-pickle``), with a warning.
    """
    tar, opt_file = find_evaluator_files(root, dataset)
    opts = parse_opt(opt_file) if opt_file.is_file() else {}
    try:
        ckpt = load_torch_file(tar)
    except CheckpointError:
        if not allow_pickle:
            raise
        warnings.warn(f"{tar} does not load weights-only; unpickling it fully (opted in with allow_pickle)",
                      stacklevel=2)
        ckpt = torch.load(tar, map_location="cpu", weights_only=False)
    cfg = config_from_state(ckpt, opts)
    _check_opts(cfg, opts, opt_file)
    want = DIM_POSE.get(dataset)
    if want is not None and cfg.dim_pose != want:
        raise CheckpointError(f"{tar} expects {cfg.dim_pose}-dim motions but the {dataset!r} benchmark uses "
                              f"{want}: wrong dataset folder?")
    model = T2MEvaluator(cfg, reference_init=False)
    for name in ("movement_encoder", "text_encoder", "motion_encoder"):
        try:
            getattr(model, name).load_state_dict(ckpt[name], strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{tar}: {name} does not match the evaluator network: {exc}") from exc
    model.epoch = int(ckpt.get("epoch", 0))
    return model.to(device).eval()


def save_evaluator(model: T2MEvaluator, root: Path, dataset: str = "t2m", mean: np.ndarray | None = None,
                   std: np.ndarray | None = None, epoch: int = 0) -> Path:
    """Write ``<root>/checkpoints/<ds>/{text_mot_match/model/finest.tar, Comp_v6_KLD005/{opt.txt, meta}}``."""
    base = Path(root) / "checkpoints" / dataset
    (base / EVALUATOR_FOLDER / "model").mkdir(parents=True, exist_ok=True)
    torch.save({**model.state_dicts(), "epoch": epoch, "iter": 0}, base / EVALUATOR_FOLDER / "model" / "finest.tar")
    c = model.config
    (base / OPT_FOLDER).mkdir(parents=True, exist_ok=True)
    write_opt(base / OPT_FOLDER / "opt.txt", {
        "name": OPT_FOLDER, "dataset_name": dataset, "checkpoints_dir": "./checkpoints",
        "dim_movement_enc_hidden": c.dim_movement_enc_hidden, "dim_movement_latent": c.dim_movement_latent,
        "unit_length": c.unit_length, "max_text_len": c.max_text_len})
    if mean is not None and std is not None:
        (base / OPT_FOLDER / "meta").mkdir(exist_ok=True)
        np.save(base / OPT_FOLDER / "meta" / "mean.npy", np.asarray(mean, dtype=np.float32))
        np.save(base / OPT_FOLDER / "meta" / "std.npy", np.asarray(std, dtype=np.float32))
    return base
