"""Champion/challenger with registry aliases (never stages).

* a new version gets ``challenger``;
* :func:`gate` compares challenger and champion on the *same* held-out rows (the caller scores
  both) and moves ``champion`` only if the challenger is better by at least ``min_delta``;
* the replaced champion keeps the ``previous-champion`` alias so :func:`rollback` can restore it.
"""

from dataclasses import dataclass
from typing import Any

import polars as pl

from kforge.errors import InputError

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous-champion"


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    metric: str
    challenger_version: int
    challenger_score: float
    champion_version: int | None
    champion_score: float | None
    reason: str

    def as_metadata(self) -> dict[str, Any]:
        return {
            "gate_promoted": self.promoted,
            "gate_metric": self.metric,
            "gate_challenger_version": self.challenger_version,
            "gate_challenger_score": round(self.challenger_score, 6),
            "gate_champion_version": self.champion_version if self.champion_version is not None else -1,
            "gate_champion_score": round(self.champion_score, 6) if self.champion_score is not None else float("nan"),
            "gate_reason": self.reason,
        }


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
    client.set_model_version_tag(name, str(version), "promotion_reason", reason)


def rollback(client: Any, name: str) -> int:
    """Restore the previous champion; returns the version now champion."""
    prev = get_alias(client, name, PREVIOUS)
    if prev is None:
        raise InputError(f"model {name} has no previous champion to roll back to")
    current = get_alias(client, name, CHAMPION)
    client.set_registered_model_alias(name, CHAMPION, int(prev.version))
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, int(current.version))
    client.set_model_version_tag(name, str(prev.version), "promotion_reason", "rollback")
    return int(prev.version)


def gate(
    client: Any,
    name: str,
    version: int,
    *,
    metric: str,
    challenger_score: float,
    champion_score: float | None,
    higher_is_better: bool = True,
    min_delta: float = 0.0,
    blocked_by: list[str] | None = None,
) -> GateDecision:
    """Decide and apply a promotion. ``champion_score`` must be measured on the same rows.

    ``blocked_by`` lists failed evaluation checks (leakage, baseline not beaten, ...): any entry
    blocks promotion whatever the score.
    """
    champ = get_alias(client, name, CHAMPION)
    champ_version = int(champ.version) if champ is not None else None
    if blocked_by:
        promoted, reason = False, "blocked by failed checks: " + ", ".join(blocked_by)
    elif champ is None:
        promoted, reason = True, "no champion yet"
    elif champion_score is None:
        promoted, reason = False, "champion could not be scored on the held-out rows; kept"
    else:
        delta = (challenger_score - champion_score) if higher_is_better else (champion_score - challenger_score)
        promoted = delta > min_delta
        reason = (
            f"challenger better by {delta:+.4f} {metric}" if promoted
            else f"challenger not better ({delta:+.4f} {metric} <= {min_delta}); champion kept"
        )
    if promoted:
        promote(client, name, version, reason)
    for key, value in (
        ("gate_decision", "promoted" if promoted else "rejected"),
        ("gate_reason", reason),
        ("gate_metric", metric),
        ("gate_challenger_score", f"{challenger_score:.6f}"),
        ("gate_champion_score", "" if champion_score is None else f"{champion_score:.6f}"),
    ):
        client.set_model_version_tag(name, str(version), key, value)
    return GateDecision(promoted, metric, version, challenger_score, champ_version, champion_score, reason)


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
