"""HumanML3D / KIT-ML benchmark with the official T2M evaluator (T2M_EVALUATOR_SPEC.md).

Entry point: ``python -m salad_model.evaluation.t2m_eval --benchmark t2m|kit --data DIR --evaluator DIR --model DIR``.
Modules: `networks` (the three encoders, official checkpoint loading), `wordvec` (GloVe + POS, safe vocabulary
files), `dataset` (evaluation items and loader), `metrics` (exact metric functions), `protocol` (the repetition
loop and model generator). Never imported by the worker.
"""
