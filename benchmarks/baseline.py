"""A straightforward SALAD inference, written from SALAD_SPEC §1.3, §2.2–2.4, §3.3–3.5 and §4: the yardstick.

Same network and same weights as ours (it reads the parameters of a loaded :class:`SaladPipeline`), computed
the way the reference's single-text sampler does it (§4): two denoiser forwards per step (text "" then the
prompt), the text projected over all 77 positions and its keys/values recomputed in every layer at every
step (no caching, no trimming), Q/K/V as three GEMMs, fused ``scaled_dot_product_attention`` for every
attention, and the VAE decoder with a Python loop over joints for the per-joint MLPs and a per-joint
``conv1d`` over time. DDIM is the spec's update formula. Nothing here is used by the product: it exists so
that every benchmark run measures ours against a baseline on the same machine, in the same run.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from salad_model.motion.features import recover_from_ric
from salad_model.runtime.sampling import initial_noise

NEG = -1e9  # masked logits (spec §3.4)


def _lin(m: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, m.weight, m.bias)


def _ln(m: torch.nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, m.normalized_shape, m.weight, m.bias, m.eps)


# -- denoiser (§3) --------------------------------------------------------------------------------------


def _attention(attn, q_in: torch.Tensor, kv_in: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Separate Wq/Wk/Wv, heads, fused SDPA with an additive mask, heads concatenated, Wo."""
    n, lq, d = q_in.shape
    lk = kv_in.shape[1]
    h = attn.heads
    q = _lin(attn.Wq, q_in).view(n, lq, h, d // h).transpose(1, 2)
    k = _lin(attn.Wk, kv_in).view(n, lk, h, d // h).transpose(1, 2)
    v = _lin(attn.Wv, kv_in).view(n, lk, h, d // h).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return _lin(attn.Wo, out.transpose(1, 2).reshape(n, lq, d))


def _film(film, c: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    scale, shift = _lin(film.linear[1], F.silu(c)).chunk(2, dim=-1)
    return h * (1 + scale[:, None, None]) + shift[:, None, None]


def _block(layer, x: torch.Tensor, c: torch.Tensor, memory: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """One ST-Transformer block (§3.4): temporal, skeletal, cross attention, FFN; pre-LN, FiLM, residual."""
    b, t, p, d = x.shape
    h = _ln(layer.temp_norm, x).permute(0, 2, 1, 3).reshape(b * p, t, d)
    h = _attention(layer.temp_attn, h, h, None).reshape(b, p, t, d).permute(0, 2, 1, 3)
    x = x + _film(layer.temp_film, c, h)
    h = _ln(layer.skel_norm, x).reshape(b * t, p, d)
    h = _attention(layer.skel_attn, h, h, None).reshape(b, t, p, d)
    x = x + _film(layer.skel_film, c, h)
    q = _ln(layer.cross_src_norm, x).reshape(b, t * p, d)
    h = _attention(layer.cross_attn, q, _ln(layer.cross_tgt_norm, memory), text_mask).reshape(b, t, p, d)
    x = x + _film(layer.cross_film, c, h)
    h = _lin(layer.ffn_linear2, F.gelu(_lin(layer.ffn_linear1, _ln(layer.ffn_norm, x))))
    return x + _film(layer.ffn_film, c, h)


def _timestep_embedding(den, t: int, b: int) -> torch.Tensor:
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = torch.full((b, 1), float(t)) * freqs[None]
    e = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # cos first (§3.3)
    mlp = den.timestep_emb.mlp
    return _lin(mlp[2], F.silu(_lin(mlp[0], e)))


def denoiser_forward(den, z: torch.Tensor, t: int, words: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """v̂ for latent z [B, T', 7, 32] at timestep t; words [B, 77, text_dim] with validity [B, 77]."""
    b, tl, p, _ = z.shape
    c = _timestep_embedding(den, t, b)
    ip = den.input_process.layers
    h = _lin(ip[2], F.relu(_lin(ip[0], z)))
    h = (h.reshape(b, tl * p, -1) + den.pos_emb.pe[:, : tl * p]).reshape(b, tl, p, -1)
    memory = _lin(den.word_emb, words)  # all 77 positions, every step
    mask = torch.zeros(valid.shape).masked_fill(~valid, NEG)[:, None, None, :]
    tr = den.transformer
    skips = []
    for block in tr.input_blocks:
        h = _block(block, h, c, memory, mask)
        skips.append(h)
    h = _block(tr.middle_block, h, c, memory, mask)
    for skip, block in zip(tr.skip_blocks, tr.output_blocks, strict=True):
        h = _block(block, _lin(skip, torch.cat([h, skips.pop()], dim=-1)), c, memory, mask)
    op = den.output_process.layers
    return _lin(op[3], F.relu(_lin(op[1], _ln(op[0], h))))


# -- VAE decoder (§2) -----------------------------------------------------------------------------------


def _stconv(conv, x: torch.Tensor) -> torch.Tensor:
    """GraphConv (own term + neighbourhood mean) plus a temporal Conv1d run per joint, summed (§2.2)."""
    b, t, j, ch = x.shape
    a = conv.adj_matrix
    gc = conv.graph_conv
    graph = _lin(gc.linear1, x) + torch.matmul(a, _lin(gc.linear2, x)) / (a.sum(-1, keepdim=True) + 1e-6)
    temporal = []
    for k in range(j):
        xt = x[:, :, k].transpose(1, 2)  # [B, C, T]
        temporal.append(F.conv1d(xt, conv.temp_conv.weight, conv.temp_conv.bias, padding=1).transpose(1, 2))
    return graph + torch.stack(temporal, dim=2)


def _res(block, x: torch.Tensor) -> torch.Tensor:
    layers = block.layers
    return x + _stconv(layers[5], F.gelu(_stconv(layers[2], F.gelu(x))))


def _unpool(unpool, x: torch.Tensor) -> torch.Tensor:
    x = torch.einsum("jp,btpc->btjc", unpool.skeleton_unpool, x)
    b, t, j, ch = x.shape
    y = F.interpolate(x.permute(0, 2, 3, 1).reshape(b, j * ch, t), scale_factor=2, mode="linear",
                      align_corners=False)
    return y.reshape(b, j, ch, 2 * t).permute(0, 3, 1, 2)


def _detokenise(vae, tokens: list[torch.Tensor]) -> torch.Tensor:
    """Per-joint outputs → 263 features in the order root, ric, rot, vel (root first), contact (§1.3)."""
    root, vel = tokens[0][..., :4], [tokens[0][..., 4:7]]
    ric, rot, contact = [], [], {}
    contact_joints = vae.skeleton.contact_joints
    for k in range(1, len(tokens)):
        tok = tokens[k]
        ric.append(tok[..., 0:3])
        rot.append(tok[..., 3:9])
        vel.append(tok[..., 9:12])
        if k in contact_joints:
            contact[k] = tok[..., 12:13]
    return torch.cat([root, *ric, *rot, *vel, *(contact[k] for k in contact_joints)], dim=-1)


def vae_decode(vae, z: torch.Tensor) -> torch.Tensor:
    """Latent [B, T', 7, 32] → normalised features [B, 4T', 263] (§2.4, decoder)."""
    h = z
    for level in vae.conv_dec.layers:
        h = _unpool(level[0], h)
        for block in level[1:]:
            h = _res(block, h)
    outs = []
    for k, mlp in enumerate(vae.motion_dec.layers):
        outs.append(_lin(mlp[2], F.gelu(_lin(mlp[0], h[:, :, k]))))
    return _detokenise(vae, outs)


# -- sampler (§4) ---------------------------------------------------------------------------------------


def ddim_alphas(num_train: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


@torch.inference_mode()
def generate(pipe, prompt: str, frames: int, seed: int = 0, steps: int = 50, guidance: float = 7.5) -> np.ndarray:
    """Text → joints [T, 22, 3] (numpy), the reference's way; same seed ⇒ same z_T as ours."""
    den, vae = pipe.denoiser, pipe.vae
    feats, valid = pipe.text_encoder.encode(["", prompt])  # [2, 77, D], no cache
    f_u, f_c, v_u, v_c = feats[:1], feats[1:], valid[:1].bool(), valid[1:].bool()
    z = initial_noise(seed, frames)[..., : den.config.vae_dim]
    ac = ddim_alphas()
    k = 1000 // steps
    for i in range(steps):
        t = (steps - 1 - i) * k
        out_u = denoiser_forward(den, z, t, f_u, v_u)
        out_c = denoiser_forward(den, z, t, f_c, v_c)
        v = out_u + guidance * (out_c - out_u)
        a_t = ac[t]
        a_prev = ac[t - k] if t - k >= 0 else torch.tensor(1.0)
        x0 = a_t.sqrt() * z - (1 - a_t).sqrt() * v
        eps = a_t.sqrt() * v + (1 - a_t).sqrt() * z
        z = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    feats = vae_decode(vae, z) * pipe.std + pipe.mean
    return recover_from_ric(feats, vae.skeleton.num_joints)[0].numpy()
