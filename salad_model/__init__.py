"""SALAD (Skeleton-aware Latent Diffusion) text-to-motion model: networks, sampler, editing, pipeline.

Imports are lazy so that ``import salad_model`` stays cheap (the worker's cold start matters).
"""

__version__ = "0.1.0"
