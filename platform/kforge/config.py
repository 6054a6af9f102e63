"""Where kforge keeps things: one directory (``KFORGE_HOME``) moves everything.

Layout under the home directory::

    warehouse.duckdb    all tables (DuckDB)
    mlflow.db           MLflow tracking + registry (sqlite)
    mlartifacts/        MLflow artifacts
    dagster/            DAGSTER_HOME
    exports/            training-data exports

Nothing is read from the environment at import time: call :func:`resolve_home` /
:func:`resolve_data_dir` when a path is needed.
"""

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from kforge.errors import InputError, StorageError

DEFAULT_HOME = ".kforge"
SEED_MAX = 2**32 - 1   # numpy, scikit-learn and LightGBM take seeds in 0..2**32-1


def check_seeds(**named: tuple[int, ...]) -> None:
    """One :class:`InputError` for a seed numpy would refuse deep inside a fit or a simulation (a Dagster run
    config reaches the configs without the CLI's argument types)."""
    for name, seeds in named.items():
        bad = [s for s in seeds if not 0 <= int(s) <= SEED_MAX]
        if bad:
            raise InputError(f"{name} must be within 0..{SEED_MAX}, got {bad[0]}")

# Top-level sections every kforge instance config has; added to an existing dagster.yaml that lacks them.
INSTANCE_SECTIONS = {
    "run_launcher": """\
# kforge: the default launcher, plus a health check the daemon's run monitoring asks: a run whose
# kforge process (tags kforge/pid, kforge/host, kforge/started) is gone is marked failed.
run_launcher:
  module: kforge.dagster_io.run_launcher
  class: KforgeRunLauncher
""",
    "run_monitoring": """\
# kforge: the daemon (`dagster dev`) fails runs whose worker died instead of leaving them STARTED.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
""",
}
# The embedded Dagster instance (sqlite under KFORGE_HOME/dagster). Runs queue with a cap so
# the nightly schedule and sensors never start more concurrent writers than the machine takes.
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_queue:
  max_concurrent_runs: 2
""" + "".join(INSTANCE_SECTIONS.values())  # a new home has every section (dagster dev may open it first)


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Return the kforge home: the argument, else ``$KFORGE_HOME``, else ``./.kforge``."""
    raw = str(home) if home else os.environ.get("KFORGE_HOME") or DEFAULT_HOME
    return Path(raw).expanduser().resolve()


def resolve_data_dir(data: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the real-data directory (laid out like ``../shared/data``) or None for embedded defaults."""
    raw = str(data) if data else os.environ.get("KFORGE_DATA") or ""
    return Path(raw).expanduser().resolve() if raw else None


@dataclass(frozen=True)
class Paths:
    """All paths under one kforge home."""

    home: Path

    @classmethod
    def of(cls, home: str | os.PathLike[str] | None = None) -> "Paths":
        return cls(resolve_home(home))

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def mlflow_db(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def mlartifacts(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    @property
    def models_cache(self) -> Path:
        return self.home / "cache"

    def tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"

    def ensure(self) -> "Paths":
        """Create the home's layout (nothing is written when it is complete already)."""
        try:
            for p in (self.home, self.mlartifacts, self.dagster_home, self.exports):
                p.mkdir(parents=True, exist_ok=True)
            cfg = self.dagster_home / "dagster.yaml"
            if not cfg.exists():  # whole or not at all: a half-written config (full disk) would be kept
                tmp = cfg.with_name(f".dagster.yaml.{os.getpid()}.{threading.get_ident()}.tmp")
                try:
                    tmp.write_text(DAGSTER_YAML)
                    os.replace(tmp, cfg)
                finally:
                    tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot set up the kforge home {self.home}: {exc.strerror or exc} ({exc.filename or self.home}). "
                "Pass --home DIR (or set KFORGE_HOME) to a writable directory, or fix the permissions"
            ) from exc
        return self
