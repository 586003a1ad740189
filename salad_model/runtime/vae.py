"""Skeleto-temporal VAE (SALAD_SPEC §2): 22 joint tokens → 12 parts → 7 latent parts, T → T/4.

Parameters are stored under the reference key names (official checkpoints load with ``strict=True``),
but the computation is batched: per-joint MLPs run as one einsum over stacked, zero-padded weights, the
graph convolution is one [J, J] matrix product and the temporal convolution one matmul over a 3-frame
window, all channels-last (no transposes, no Python loops over joints).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..motion.features import FeatureLayout
from ..motion.skeleton import PART7_GROUPS, PART12_NEIGHBOURS, SKELETONS, adjacency, pool_matrix, unpool_matrix


@dataclass
class VAEConfig:
    """VAE hyper-parameters (defaults = the released t2m VAE)."""

    dataset: str = "t2m"
    latent_dim: int = 32
    kernel_size: int = 3
    n_layers: int = 2
    n_extra_layers: int = 1
    activation: str = "gelu"
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


def _act(name: str) -> nn.Module:
    return {"gelu": nn.GELU(), "relu": nn.ReLU(), "silu": nn.SiLU()}[name]


class JointMLPs(nn.Module):
    """Separate 2-layer MLP per joint, stored as ``layers.{j}.{0,2}`` like the reference."""

    def __init__(self, in_sizes: list[int], hidden: int, out_sizes: list[int], act: str):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(i, hidden), _act(act), nn.Linear(hidden, o))
            for i, o in zip(in_sizes, out_sizes, strict=True)
        )
        self.act = _act(act)
        self.pad_in = max(in_sizes)
        self.pad_out = max(out_sizes)

    def stacked(self) -> tuple[torch.Tensor, ...]:
        """Zero-padded stacked weights: w1 [J, in, h], b1 [J, h], w2 [J, h, out], b2 [J, out]."""
        l0 = [m[0] for m in self.layers]
        l2 = [m[2] for m in self.layers]
        w1 = torch.stack([F.pad(m.weight, (0, self.pad_in - m.in_features)) for m in l0]).transpose(1, 2)
        b1 = torch.stack([m.bias for m in l0])
        w2 = torch.stack([F.pad(m.weight, (0, 0, 0, self.pad_out - m.out_features)) for m in l2])
        b2 = torch.stack([F.pad(m.bias, (0, self.pad_out - m.out_features)) for m in l2])
        return w1, b1, w2.transpose(1, 2), b2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., J, pad_in] → [..., J, pad_out]."""
        w1, b1, w2, b2 = self.stacked()
        h = self.act(torch.einsum("...ji,jih->...jh", x, w1) + b1)
        return torch.einsum("...jh,jho->...jo", h, w2) + b2


class GraphConv(nn.Module):
    """``W1·x + b1 + A·(W2·x + b2) / (rowsum(A) + 1e-6)``, weights shared across joints."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear1 = nn.Linear(dim, dim)
        self.linear2 = nn.Linear(dim, dim)


class STConv(nn.Module):
    """Graph convolution over joints plus temporal convolution over frames, summed (SALAD_SPEC §2.2)."""

    def __init__(self, adj: torch.Tensor, dim: int, kernel_size: int):
        super().__init__()
        self.register_buffer("adj_matrix", adj.clone())
        self.graph_conv = GraphConv(dim)
        self.temp_conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2)
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, J, C] → [B, T, J, C]."""
        a = self.adj_matrix
        a = a / (a.sum(-1, keepdim=True) + 1e-6)
        gc = self.graph_conv
        out = F.linear(x, gc.linear1.weight, gc.linear1.bias)
        out = out + torch.einsum("ij,btjc->btic", a, F.linear(x, gc.linear2.weight, gc.linear2.bias))
        k = self.kernel_size
        pad = k // 2
        xp = F.pad(x, (0, 0, 0, 0, pad, pad))
        t = x.shape[1]
        window = torch.cat([xp[:, i : i + t] for i in range(k)], dim=-1)  # [B, T, J, k·C]
        w = self.temp_conv.weight.permute(0, 2, 1).reshape(self.temp_conv.out_channels, -1)  # [C_out, k·C_in]
        return out + F.linear(window, w, self.temp_conv.bias)


class ResSTConv(nn.Module):
    """Pre-activation residual block: ``x + Dropout(STConv(act(STConv(act(x)))))`` (norm = Identity)."""

    def __init__(self, adj: torch.Tensor, dim: int, kernel_size: int, act: str, dropout: float):
        super().__init__()
        # Reference Sequential indices: 0 norm, 1 act, 2 STConv, 3 norm, 4 act, 5 STConv, 6 dropout.
        self.layers = nn.ModuleList([
            nn.Identity(), _act(act), STConv(adj, dim, kernel_size),
            nn.Identity(), _act(act), STConv(adj, dim, kernel_size), nn.Dropout(dropout),
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.layers:
            h = layer(h)
        return x + h


class STPool(nn.Module):
    """Average joints into groups, then average pairs of frames (odd lengths floor)."""

    def __init__(self, pool: torch.Tensor):
        super().__init__()
        self.register_buffer("skeleton_pool", pool.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.einsum("pj,btjc->btpc", self.skeleton_pool, x)
        b, t, j, c = x.shape
        t2 = t // 2
        return x[:, : 2 * t2].reshape(b, t2, 2, j, c).mean(2)


def upsample2_linear(x: torch.Tensor) -> torch.Tensor:
    """×2 linear interpolation along dim 1 with align_corners=False (as ``nn.Upsample``)."""
    prev = torch.cat([x[:, :1], x[:, :-1]], dim=1)
    nxt = torch.cat([x[:, 1:], x[:, -1:]], dim=1)
    even = 0.25 * prev + 0.75 * x
    odd = 0.75 * x + 0.25 * nxt
    return torch.stack([even, odd], dim=2).flatten(1, 2)


class STUnpool(nn.Module):
    """Sum group features back onto member joints (no averaging), then upsample time ×2."""

    def __init__(self, unpool: torch.Tensor):
        super().__init__()
        self.register_buffer("skeleton_unpool", unpool.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.einsum("jp,btpc->btjc", self.skeleton_unpool, x)
        return upsample2_linear(x)


class _Seq(nn.Module):
    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for level in self.layers:
            for m in level:
                x = m(x)
        return x


class MultiLinear(nn.Module):
    """Independent affine map per part; weight stored [parts, in, out] (not transposed)."""

    def __init__(self, parts: int, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(parts, d_in, d_out))
        self.bias = nn.Parameter(torch.empty(parts, d_out))
        bound = 1.0 / d_in**0.5
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...pi,pio->...po", x, self.weight) + self.bias


class VAE(nn.Module):
    """Encode z-normalised features [B, T, dim] to a latent [B, T/4, 7, C] and decode back."""

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        cfg = config or VAEConfig()
        if cfg.n_layers != 2:
            raise ValueError("only n_layers=2 (22→12→7 parts) is supported, as in the released models")
        self.config = cfg
        sk = SKELETONS[cfg.dataset]
        self.skeleton = sk
        self.layout = FeatureLayout(sk)
        d = cfg.latent_dim
        sizes = self.layout.token_sizes
        self.motion_enc = JointMLPs(sizes, d, [d] * len(sizes), cfg.activation)
        self.motion_dec = JointMLPs([d] * len(sizes), d, sizes, cfg.activation)

        j = sk.num_joints
        adj_j = torch.from_numpy(adjacency(sk.neighbours))
        adj_12 = torch.from_numpy(adjacency(PART12_NEIGHBOURS))
        pool_0 = torch.from_numpy(pool_matrix(sk.part12_groups, j))
        pool_1 = torch.from_numpy(pool_matrix(PART7_GROUPS, 12))
        unpool_1 = torch.from_numpy(unpool_matrix(PART7_GROUPS, 12))
        unpool_0 = torch.from_numpy(unpool_matrix(sk.part12_groups, j))

        def res(adj: torch.Tensor) -> list[nn.Module]:
            return [ResSTConv(adj, d, cfg.kernel_size, cfg.activation, cfg.dropout)
                    for _ in range(cfg.n_extra_layers + 1)]

        self.conv_enc = _Seq([
            nn.ModuleList(res(adj_j) + [STPool(pool_0)]),
            nn.ModuleList(res(adj_12) + [STPool(pool_1)]),
        ])
        self.conv_dec = _Seq([
            nn.ModuleList([STUnpool(unpool_1)] + res(adj_12)),
            nn.ModuleList([STUnpool(unpool_0)] + res(adj_j)),
        ])
        self.dist = MultiLinear(7, d, 2 * d)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode_dist(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each [B, T//4, 7, C]."""
        h = self.motion_enc(self.layout.tokenize_padded(x))
        h = self.conv_enc(h)
        mu, logvar = self.dist(h).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latent (a posterior sample, as the reference; the mean with ``sample=False``), mu, logvar."""
        mu, logvar = self.encode_dist(x)
        if not sample:
            return mu, mu, logvar
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar), mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent [B, T', 7, C] → normalised features [B, 4T', dim]."""
        h = self.conv_dec(z)
        return self.layout.untokenize_padded(self.motion_dec(h))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z, mu, logvar = self.encode(x, generator=generator)
        return self.decode(z), mu, logvar


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """0.5·mean(mu² + exp(logvar) − logvar − 1) over all latent elements (SALAD_SPEC §2.5)."""
    return 0.5 * torch.mean(mu.pow(2) + logvar.exp() - logvar - 1)
