"""Training: the VAE/denoiser loop, distributed helpers and the data pipelines (never imported by the worker)."""
