"""The worker's default torch threads follow the CLI's and API's rule (salad_model/cpu.py): OMP_NUM_THREADS
when the user set it, else the physical cores; ``--threads`` wins over both. Seen in ``hello``, and in
``model_info`` after a real ``load`` (the count the worker set torch to)."""

from test_worker import RawWorker

from salad_model.cpu import physical_cores

OMP = physical_cores() + 1  # never the physical-core default, so the test tells the two rules apart


def hello_threads(*args: str, **env: str) -> int:
    w = RawWorker("--device", "cpu", *args, **env)
    try:
        return w.request("hello")["data"]["threads"]
    finally:
        assert w.close() == 0


def test_default_threads_follow_omp_num_threads():
    assert hello_threads(OMP_NUM_THREADS=str(OMP)) == OMP
    assert hello_threads("--threads", "1", OMP_NUM_THREADS=str(OMP)) == 1  # the explicit option wins
    cores = physical_cores()
    assert hello_threads(OMP_NUM_THREADS="") == cores  # unset / empty: the physical cores
    assert hello_threads(OMP_NUM_THREADS="many") == cores  # not a number: ignored, as by the CLI


def test_loaded_torch_gets_the_omp_num_threads_default(tiny_model_dir):
    w = RawWorker("--device", "cpu", OMP_NUM_THREADS=str(OMP))
    try:
        w.result("load", model=str(tiny_model_dir), device="cpu")
        assert w.result("model_info")["threads"] == OMP
    finally:
        assert w.close() == 0
