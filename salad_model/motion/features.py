"""HumanML3D feature layout: per-joint tokenisation for the VAE and ``recover_from_ric`` (features → joints).

Layout of one frame (J joints, dim = 12·J − 1), SALAD_SPEC §1.1/§1.3:
``root[4] | ric[(J-1)·3] | rot[(J-1)·6] | vel[J·3] | contact[4]``.
"""

from __future__ import annotations

import torch

from .skeleton import Skeleton


class FeatureLayout:
    """Index arithmetic for one skeleton's feature vector, shared by tokenise/untokenise."""

    def __init__(self, skeleton: Skeleton):
        self.skeleton = skeleton
        j = skeleton.num_joints
        self.num_joints = j
        self.dim = skeleton.feature_dim
        self.ric = slice(4, 4 + 3 * (j - 1))
        self.rot = slice(self.ric.stop, self.ric.stop + 6 * (j - 1))
        self.vel = slice(self.rot.stop, self.rot.stop + 3 * j)
        self.contact = slice(self.vel.stop, self.vel.stop + 4)
        assert self.contact.stop == self.dim
        # For every joint: the feature channels that form its token, in token order.
        self.token_channels: list[list[int]] = []
        for k in range(j):
            if k == 0:
                ch = [0, 1, 2, 3] + [self.vel.start + i for i in range(3)]
            else:
                ch = [self.ric.start + 3 * (k - 1) + i for i in range(3)]
                ch += [self.rot.start + 6 * (k - 1) + i for i in range(6)]
                ch += [self.vel.start + 3 * k + i for i in range(3)]
                if k in skeleton.contact_joints:
                    ch.append(self.contact.start + skeleton.contact_joints.index(k))
            self.token_channels.append(ch)
        self.token_sizes = [len(c) for c in self.token_channels]
        self.max_token = max(self.token_sizes)
        # Gather index for a padded [J, max_token] token grid and the validity mask of its cells.
        gather = torch.zeros(j, self.max_token, dtype=torch.long)
        valid = torch.zeros(j, self.max_token, dtype=torch.bool)
        for k, ch in enumerate(self.token_channels):
            gather[k, : len(ch)] = torch.tensor(ch)
            valid[k, : len(ch)] = True
        self.gather_index = gather
        self.valid = valid
        # Inverse: for feature channel c, its flat position in the padded grid.
        scatter = torch.empty(self.dim, dtype=torch.long)
        for k, ch in enumerate(self.token_channels):
            for i, c in enumerate(ch):
                scatter[c] = k * self.max_token + i
        self.scatter_index = scatter

    def tokenize_padded(self, x: torch.Tensor) -> torch.Tensor:
        """[..., dim] → [..., J, max_token] with zeros in unused cells (for batched per-joint MLPs)."""
        g = x[..., self.gather_index.to(x.device).reshape(-1)]
        g = g.reshape(*x.shape[:-1], self.num_joints, self.max_token)
        return g * self.valid.to(x.device, x.dtype)

    def untokenize_padded(self, tokens: torch.Tensor) -> torch.Tensor:
        """[..., J, max_token] → [..., dim] (unused cells are ignored)."""
        flat = tokens.reshape(*tokens.shape[:-2], -1)
        return flat[..., self.scatter_index.to(tokens.device)]


def qrot(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors ``v`` by unit quaternions ``q`` (w, x, y, z), broadcasting leading dims."""
    u = q[..., 1:]
    w = q[..., :1]
    uv = torch.cross(u.expand_as(v), v, dim=-1)
    uuv = torch.cross(u.expand_as(v), uv, dim=-1)
    return v + 2 * (w * uv + uuv)


def recover_root_rot_pos(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Heading quaternions [..., T, 4] and root positions [..., T, 3] from features (SALAD_SPEC §1.4)."""
    rot_vel = f[..., 0]
    angle = torch.zeros_like(rot_vel)
    angle[..., 1:] = rot_vel[..., :-1]
    angle = torch.cumsum(angle, dim=-1)
    q = torch.zeros(*f.shape[:-1], 4, dtype=f.dtype, device=f.device)
    q[..., 0] = torch.cos(angle)
    q[..., 2] = torch.sin(angle)
    d = torch.zeros(*f.shape[:-1], 3, dtype=f.dtype, device=f.device)
    d[..., 1:, 0] = f[..., :-1, 1]
    d[..., 1:, 2] = f[..., :-1, 2]
    q_inv = q * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=f.dtype, device=f.device)
    d = qrot(q_inv, d)
    r = torch.cumsum(d, dim=-2)
    r[..., 1] = f[..., 3]
    return q, r


def recover_from_ric(features: torch.Tensor, joints_num: int) -> torch.Tensor:
    """De-normalised features [..., T, 12J−1] → joint positions [..., T, J, 3] (metres, Y up)."""
    q, r = recover_root_rot_pos(features)
    local = features[..., 4 : 4 + (joints_num - 1) * 3].reshape(*features.shape[:-1], joints_num - 1, 3)
    q_inv = (q * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=q.dtype, device=q.device))[..., None, :]
    pos = qrot(q_inv.expand(*local.shape[:-1], 4), local)
    pos[..., 0] = pos[..., 0] + r[..., None, 0]
    pos[..., 2] = pos[..., 2] + r[..., None, 2]
    return torch.cat([r[..., None, :], pos], dim=-2)
