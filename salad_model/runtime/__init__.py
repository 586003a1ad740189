"""The model at inference: VAE, denoiser, attention, text encoders, checkpoints, sampling, editing, inversion and
the pipeline that ties them together."""
