"""The one model worker of a Blender session and the settings it runs with (no bpy).

Why one shared process: the model stays loaded between jobs (the worker reuses it when a ``load``
names the same model), so only the first generation pays for starting Python, importing torch and
reading weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from .client import Job as WorkerJob
from .client import WorkerClient
from .inputs import PREFS_HINT, JobError, resolve_python


@dataclass(frozen=True)
class WorkerConfig:
    """Where and how the model runs (from the add-on preferences, a batch flag or a test)."""

    python: str
    model: str = "demo"
    device: str = "auto"
    threads: int = 0  # 0: the worker picks (physical cores)
    env: tuple[tuple[str, str], ...] = ()  # extra environment for the worker (tests, debugging)

    def worker_key(self) -> tuple:
        return (resolve_python(self.python), self.device, int(self.threads), tuple(self.env))

    def with_model(self, model: str) -> WorkerConfig:
        """The same worker for another model (edits run on the model of their source action)."""
        return WorkerConfig(self.python, model, self.device, self.threads, self.env)


class WorkerPool:
    """The worker process of a session, restarted when its settings change or it died."""

    def __init__(self) -> None:
        self._client: WorkerClient | None = None
        self._key: tuple | None = None
        self.hello: WorkerJob | None = None  # the current worker's hello request

    @property
    def client(self) -> WorkerClient | None:
        return self._client

    @property
    def running(self) -> bool:
        return self._client is not None and self._client.running

    def get(self, config: WorkerConfig) -> WorkerClient:
        """A started client for ``config`` (hello sent); spawns or restarts the worker as needed."""
        key = config.worker_key()
        client = self._client
        if client is not None and key != self._key and client.busy:  # closing it would cancel that job unasked
            raise JobError("The model worker is busy with another job, and this one needs it with other settings "
                           "(Worker Python, Device or CPU Threads changed): wait for that job or cancel it first.")
        if client is not None and (key != self._key or not client.running):
            client.close()
            client = self._client = None
        if client is None:
            python, device, threads, env = key
            args = ["--device", device] + (["--threads", str(threads)] if threads > 0 else [])
            client = WorkerClient(python=python, args=args, env=dict(env))
            try:
                self.hello = client.start()
            except OSError as exc:
                client.close()
                raise JobError(f"Cannot start the model worker with '{python}': "
                               f"{exc.strerror or exc}. Fix 'Worker Python' in {PREFS_HINT}.") from exc
            self._client, self._key = client, key
        return client

    def close(self, reason: str | None = None) -> None:
        """End the worker; with a ``reason`` its unfinished jobs end ``worker_stopped`` (their owners may send them
        again), without one ``cancelled``."""
        if self._client is not None:
            self._client.close(reason=reason)
        self._client = self._key = self.hello = None

    def stderr_tail(self, lines: int = 40) -> str:
        return self._client.stderr_tail(lines) if self._client is not None else ""


POOL = WorkerPool()
