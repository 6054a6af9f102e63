"""Which compute a training step uses: this process, a local Dask cluster, or a remote scheduler."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kforge.errors import InputError

MODES = ("local", "dask")


@dataclass(frozen=True)
class ClusterConfig:
    """``mode`` local (in-process) or dask; with dask, ``address`` of a scheduler or empty for a
    ``LocalCluster`` of ``n_workers`` processes x ``threads_per_worker`` threads."""

    mode: str = "local"
    address: str = ""
    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    connect_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"cluster mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.address and self.mode != "dask":
            raise InputError("a scheduler address needs mode 'dask'")
        if self.address and not self.address.startswith(("tcp://", "tls://", "inproc://")):
            raise InputError(f"scheduler address {self.address!r} must start with tcp://, tls:// or inproc://")
        if not 1 <= self.n_workers <= 1024:
            raise InputError(f"n_workers must be 1..1024, got {self.n_workers}")
        if not 1 <= self.threads_per_worker <= 256:
            raise InputError(f"threads_per_worker must be 1..256, got {self.threads_per_worker}")

    @classmethod
    def parse(cls, value: str, n_workers: int = 2, threads_per_worker: int = 1) -> "ClusterConfig":
        """``local`` | ``dask`` (LocalCluster) | ``tcp://host:port`` / ``dask://host:port`` (scheduler)."""
        value = (value or "local").strip()
        if value in MODES:
            return cls(mode=value, n_workers=n_workers, threads_per_worker=threads_per_worker)
        if value.startswith("dask://"):
            value = "tcp://" + value.removeprefix("dask://")
        if "://" in value:
            return cls(mode="dask", address=value, n_workers=n_workers, threads_per_worker=threads_per_worker)
        raise InputError(f"cluster {value!r}: use 'local', 'dask' (a LocalCluster) or a scheduler address tcp://host:port")

    @classmethod
    def from_env(cls) -> "ClusterConfig":
        """``KFORGE_CLUSTER`` (default local), ``KFORGE_DASK_WORKERS`` (default 2)."""
        raw_workers = os.environ.get("KFORGE_DASK_WORKERS", "2")
        if not raw_workers.isdigit():
            raise InputError(f"KFORGE_DASK_WORKERS must be a positive integer, got {raw_workers!r}")
        return cls.parse(os.environ.get("KFORGE_CLUSTER", "local"), n_workers=int(raw_workers))


@contextmanager
def dask_client(config: ClusterConfig) -> Iterator[Any]:
    """A ``distributed.Client`` for ``config`` (None in local mode); a LocalCluster is closed on exit."""
    if config.mode == "local":
        yield None
        return
    from distributed import Client, LocalCluster

    if config.address:
        try:
            client = Client(config.address, timeout=f"{config.connect_timeout_s}s")
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler at {config.address}: {exc}") from exc
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(n_workers=config.n_workers, threads_per_worker=config.threads_per_worker,
                           processes=True, host="127.0.0.1", dashboard_address=None,
                           memory_limit=config.memory_limit)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
