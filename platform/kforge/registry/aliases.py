"""Champion/challenger with registry aliases (never stages).

* a new version gets ``challenger``;
* :func:`promote` moves ``champion`` (the release path, :mod:`kforge.registry.release`, decides
  when; humans through ``kforge models promote``);
* the replaced champion keeps the ``previous-champion`` alias so :func:`rollback` can restore it.
"""

from typing import Any

import polars as pl

from kforge.errors import InputError

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous-champion"
PROMOTION_REASON = "promotion_reason"  # version tag, set last by :func:`promote` and :func:`rollback`


def get_alias(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def register_challenger(client: Any, run_id: str, artifact_path: str, name: str, tags: dict[str, str]) -> int:
    """Register a model version and give it the ``challenger`` alias.

    ``artifact_path`` is either a path inside the run's artifacts (``model``) or a full model URI
    as returned by MLflow 3's ``log_model`` (``model_info.model_uri``, e.g. ``models:/m-...``).
    """
    from mlflow.exceptions import MlflowException

    if ":/" in artifact_path:
        import mlflow

        mv = mlflow.register_model(artifact_path, name, tags=tags)
        version = int(mv.version)
        client.set_registered_model_alias(name, CHALLENGER, version)
        return version

    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description=f"kforge model {name}")
        except MlflowException:
            pass  # created concurrently
    run = client.get_run(run_id)
    source = f"{run.info.artifact_uri}/{artifact_path}"
    mv = client.create_model_version(name, source, run_id=run_id, tags=tags)
    version = int(mv.version)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


def promote(client: Any, name: str, version: int, reason: str) -> None:
    """Make ``version`` the champion; the old champion becomes ``previous-champion``."""
    try:
        client.get_model_version(name, str(version))
    except Exception as exc:
        raise InputError(f"model {name} has no version {version}") from exc
    current = get_alias(client, name, CHAMPION)
    if current is not None and int(current.version) == int(version):
        return
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, int(current.version))
    client.set_registered_model_alias(name, CHAMPION, int(version))
    client.set_model_version_tag(name, str(version), PROMOTION_REASON, reason)


def rollback(client: Any, name: str) -> int:
    """Restore the previous champion; returns the version now champion."""
    prev = get_alias(client, name, PREVIOUS)
    if prev is None:
        raise InputError(f"model {name} has no previous champion to roll back to")
    current = get_alias(client, name, CHAMPION)
    client.set_registered_model_alias(name, CHAMPION, int(prev.version))
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, int(current.version))
    client.set_model_version_tag(name, str(prev.version), PROMOTION_REASON, "rollback")
    return int(prev.version)


def list_versions(client: Any, prefix: str = "kforge-") -> pl.DataFrame:
    rows = []
    for rm in client.search_registered_models():
        if not rm.name.startswith(prefix):
            continue
        alias_of: dict[int, list[str]] = {}
        for alias, ver in (rm.aliases or {}).items():
            alias_of.setdefault(int(ver), []).append(alias)
        for mv in client.search_model_versions(f"name='{rm.name}'"):
            metrics = {}
            if mv.run_id:
                try:
                    metrics = client.get_run(mv.run_id).data.metrics
                except Exception:
                    metrics = {}
            headline = {k: v for k, v in metrics.items() if k.startswith("test_")}
            rows.append({
                "model": rm.name,
                "version": int(mv.version),
                "aliases": ",".join(sorted(alias_of.get(int(mv.version), []))),
                "gate": (mv.tags or {}).get("kforge.gate.decision", ""),
                "run_id": mv.run_id or "",
                "metrics": " ".join(f"{k}={v:.4f}" for k, v in sorted(headline.items())[:6]),
            })
    schema = {"model": pl.String, "version": pl.Int64, "aliases": pl.String, "gate": pl.String,
              "run_id": pl.String, "metrics": pl.String}
    return pl.DataFrame(rows, schema=schema).sort(["model", "version"]) if rows else pl.DataFrame(schema=schema)
