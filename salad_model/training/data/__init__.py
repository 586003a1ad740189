"""Training-data pipelines (never imported by the worker): Bandai-Namco BVH → SMPL-22 → HumanML3D features."""
