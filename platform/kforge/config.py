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
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".kforge"

# The embedded Dagster instance (sqlite under KFORGE_HOME/dagster). Runs queue with a cap so
# the nightly schedule and sensors never start more concurrent writers than the machine takes.
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_queue:
  max_concurrent_runs: 2
"""


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
        for p in (self.home, self.mlartifacts, self.dagster_home, self.exports):
            p.mkdir(parents=True, exist_ok=True)
        cfg = self.dagster_home / "dagster.yaml"
        if not cfg.exists():
            cfg.write_text(DAGSTER_YAML)
        return self
