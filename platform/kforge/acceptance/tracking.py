"""Log a :class:`TrainResult` to MLflow (experiment ``kforge/acceptance``), register it as
``challenger`` and run the champion/challenger gate on the same held-out rows."""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kforge.acceptance.metrics import auc, plots
from kforge.acceptance.train import TrainResult
from kforge.registry import GateDecision, Tracker, data_version

GROUP = "acceptance"


@dataclass(frozen=True)
class Logged:
    run_id: str
    version: int
    decision: GateDecision
    champion_score: float | None
    plots: dict[str, Path]


def _champion_scores(tracker: Tracker, name: str, test: pl.DataFrame) -> tuple[int | None, np.ndarray | None]:
    champ = tracker.champion(name)
    if champ is None:
        return None, None
    import mlflow.pyfunc

    try:
        model = mlflow.pyfunc.load_model(tracker.model_uri(name, "champion"))
        out = model.predict(test.to_pandas())
        return int(champ.version), np.asarray(out.iloc[:, 0], dtype=float)
    except Exception:  # champion built on another feature set: it cannot be scored here
        return int(champ.version), None


def log_and_gate(tracker: Tracker, res: TrainResult, *, run_name: str, dagster_run_id: str = "",
                 asset_key: str = "", plots_dir: Path | None = None, extra_tags: dict[str, str] | None = None) -> Logged:
    """One MLflow run: params, held-out metrics, plots, importances, per-group metrics, the model
    (signature + input example); then register + gate (failed evaluation gates block promotion)."""
    import mlflow
    from mlflow.models import infer_signature

    from kforge.acceptance.pyfunc import PIP_REQUIREMENTS, AcceptancePyfunc

    spec = res.spec
    cols = spec.feature_columns
    train_table = res.split.train.select(spec.id_col, "t", "y", *cols) if spec.id_col in res.split.train.columns \
        else res.split.train.select("t", "y", *cols)
    dv = data_version(train_table.drop(spec.text))
    champ_version, champ_scores = _champion_scores(tracker, spec.model_name, res.split.test.select(cols))
    y = res.y_test
    champion_auc = auc(y, champ_scores) if champ_scores is not None else None
    out_dir = plots_dir or Path(tempfile.mkdtemp(prefix="kforge-acc-"))
    pngs = plots(y, {k: v for k, v in res.scores.items() if k in ("model", "lines_added", "plain_lr")}, out_dir)
    tags = {"target": spec.target, "gate_failed_checks": ",".join(res.failed_gates) or "none", **(extra_tags or {})}
    with tracker.run(GROUP, run_name, dagster_run_id=dagster_run_id, asset_key=asset_key, data_version=dv,
                     tags=tags) as run:
        mlflow.log_params({k: v for k, v in res.params.items()})
        mlflow.log_metrics({k: float(v) for k, v in res.metrics.items() if np.isfinite(v)})
        for path in pngs.values():
            mlflow.log_artifact(str(path), "plots")
        mlflow.log_text(res.per_group.write_csv(), f"per_{spec.group}_metrics.csv")
        mlflow.log_text(res.importances.write_csv(), "feature_contributions.csv")
        mlflow.log_text(json.dumps({k: {"passed": ok, "detail": d} for k, (ok, d) in res.gates.items()}, indent=1),
                        "evaluation_gates.json")
        for row in res.per_group.head(10).iter_rows(named=True):
            safe = "".join(ch if ch.isalnum() or ch in "_-./" else "_" for ch in str(row[spec.group]))
            mlflow.log_metric(f"test_roc_auc_{spec.group}_{safe}", float(row["roc_auc"]))
        example = res.split.test.select(cols).head(5).to_pandas()
        wrapper = AcceptancePyfunc(res.model, spec.target, spec.score_col)
        signature = infer_signature(example, wrapper.predict(None, example))
        saved = out_dir / "model"
        mlflow.pyfunc.save_model(str(saved), python_model=wrapper, signature=signature, input_example=example,
                                 pip_requirements=PIP_REQUIREMENTS)
        mlflow.log_artifacts(str(saved), "model")  # runs:/<id>/model, what the registry version points at
        run_id = run.info.run_id
    version = tracker.register(run_id, "model", spec.model_name, tags={"target": spec.target, "data_version": dv})
    decision = tracker.gate(spec.model_name, version, metric="test_roc_auc",
                            challenger_score=float(res.metrics.get("test_roc_auc", float("nan"))),
                            champion_score=champion_auc, higher_is_better=True, min_delta=0.0,
                            blocked_by=res.failed_gates)
    client = tracker.client()
    for k, v in decision.as_metadata().items():
        client.set_tag(run_id, k, str(v))
    if champ_version is not None:
        client.set_tag(run_id, "gate_champion_version_scored", str(champ_version))
    return Logged(run_id, version, decision, champion_auc, pngs)


def model_artifact_uri(tracker: Tracker, name: str, alias: str = "champion") -> Any:
    return tracker.model_uri(name, alias)
