"""Speed measurements (not shipped): ``python -m benchmarks.bench``, ``.bench_worker``, ``.bench_retarget``."""
