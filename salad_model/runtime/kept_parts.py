"""Kept body parts follow the source in joint space after a part regeneration (issue 13 item 4).

Holding a part's latent does not hold its joints: the decoder reads every part's latent for every joint, so the
decoded kept joints are the VAE's reconstruction of the source — within 1 cm of a generation (whose latent it
decoded) but 2.7 cm off captured walks on average, 7.4 cm at worst, whose feet then slid (model card, "Part
regeneration"). Here the result is rebuilt bone by bone in the root's frame (the features' ``ric`` positions): a
kept joint takes the source's bone vector from its parent, a regenerated joint the decoded one. A kept root part
keeps the source's root channels, so every kept joint under it is the source's own; a regenerated chain is moved as
one piece onto its kept parent (no gap at the join, its bones the decoded ones: at the source's bone lengths
instead, the demo model's generated walks — whose forearms decode 13–15 cm long against 21 cm in a raised arm —
lowered the asked wrists: 22 of 30 above the neck against 23 of 30 with the decoded bones and 24 before this
module). Each joint's other channels (rotation, contact) come from the same side as its position; a regenerated
joint's velocity is its new path's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..motion.features import FeatureLayout
from ..motion.motion_process import qrot, recover_from_ric_np, root_heading
from ..motion.skeleton import PART7_JOINTS


def joint_parts(skeleton) -> np.ndarray:
    """Each joint's own latent part [J] (:data:`skeleton.PART7_JOINTS`)."""
    owner = np.full(skeleton.num_joints, -1)
    for part, joints in enumerate(PART7_JOINTS[skeleton.name]):
        owner[list(joints)] = part
    return owner


def _local(feats: np.ndarray, layout: FeatureLayout) -> np.ndarray:
    """Joint positions in the root's frame [T, J, 3] (root XZ at the origin, heading removed; Y absolute)."""
    n, j = len(feats), layout.num_joints
    root = np.zeros((n, 1, 3))
    root[:, 0, 1] = feats[:, 3]
    return np.concatenate([root, feats[:, layout.ric].reshape(n, j - 1, 3)], axis=1)


def follow_source(decoded: np.ndarray, source: np.ndarray, regenerated: Sequence[int],
                  layout: FeatureLayout, joints: bool = True) -> np.ndarray:
    """De-normalised features [T, D]: ``decoded`` with the joints of parts not in ``regenerated`` the source's.

    ``source`` [≥ T, D]: the source's features (a generation's decoded ones, a captured clip's canonical ones).
    ``joints`` False (a generated source, whose kept joints decode within 0.4 cm of it): only a kept root part's
    channels are the source's (its path) — holding its chest as well lowered the asked wrists about 2 cm, 23 of 30
    above the neck against 24 (demo model, the evaluation's 30 walks), for nothing to gain.
    """
    n = len(decoded)
    dec = np.asarray(decoded, np.float64)
    src = np.asarray(source, np.float64)[:n]
    sk = layout.skeleton
    kept = ~np.isin(joint_parts(sk), list(regenerated))
    out = dec.copy()
    if not joints:
        if kept[0]:
            out[:, layout.token_channels[0]] = src[:, layout.token_channels[0]]
        return out.astype(np.float32)
    for j in np.flatnonzero(kept):  # position, rotation, velocity, contact: the source's (the root: its channels)
        out[:, layout.token_channels[j]] = src[:, layout.token_channels[j]]
    a, b = _local(dec, layout), _local(src, layout)
    new = _local(out, layout)  # the root's height: the source's when kept
    for j in range(1, layout.num_joints):  # parents come first in the tables
        p, ref = sk.parents[j], (b if kept[j] else a)
        new[:, j] = new[:, p] + ref[:, j] - ref[:, p]
    out[:, layout.ric] = new[:, 1:].reshape(n, -1)
    # a regenerated joint's velocity is its new path's (vel[t] = x[t+1] − x[t] in the heading of frame t; the last
    # row repeats the last step): the decoded one neither knew the kept parent it now hangs from nor matched its
    # own decoded positions (demo model: off by about its own size)
    moved = np.flatnonzero(~kept[1:]) + 1
    if n > 1 and len(moved):
        world = recover_from_ric_np(out, layout.num_joints)
        step = np.diff(world[:, moved], axis=0)
        step = np.concatenate([step, step[-1:]])
        vel = out[:, layout.vel].reshape(n, layout.num_joints, 3)
        vel[:, moved] = qrot(root_heading(out)[:, None], step)
        out[:, layout.vel] = vel.reshape(n, -1)
    return out.astype(np.float32)
