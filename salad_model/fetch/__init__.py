"""Downloads of third-party weights (the official SALAD checkpoints and their CLIP text model).

Never imported by the worker or the pipeline: only ``python -m salad_model download``.
"""
