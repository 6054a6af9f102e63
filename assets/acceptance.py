"""Asset group ``acceptance``: will a commit survive (not later fixed/reverted), will a patch
e-mail be merged. Each model asset trains on a time split, logs to MLflow ``kforge/acceptance``,
registers a ``challenger`` and runs the gate; its asset checks are the honest-evaluation gates
(severity ERROR). A failed check blocks promotion inside the gate (``blocked_by``) without failing
the run: the challenger stays registered and inspectable, the champion is unchanged.
"""

import tempfile
from pathlib import Path

import dagster as dg
from kforge.acceptance.pipeline import (
    commit_frame,
    email_source,
    email_training_frame,
    predictions_frame,
    store_predictions,
)
from kforge.acceptance.spec import COMMIT, TargetSpec, email_spec
from kforge.acceptance.tracking import log_and_gate
from kforge.acceptance.train import TrainConfig, TrainResult, train_and_evaluate
from kforge.dagster_io import DataResource, MlflowResource, WarehouseResource
from kforge.dagster_io.metadata import metrics_md, plot_md, table_md
from kforge.monitoring.calls import set_training_reference
from pydantic import Field

GROUP = "acceptance"
GATES = ["time_split", "no_future_features", "test_size", "beats_lines_added", "beats_plain_lr"]


class AcceptanceConfig(dg.Config):
    cutoff: str = Field(default="", description="Train before this ISO date; empty = last 20% of observable rows are the test set.")
    test_end: str = Field(default="", description="Test window end (ISO date); empty = up to the label snapshot.")
    min_observation_days: int = Field(default=180, description="Right-censoring: rows observed for fewer days are excluded.")
    train_labels: str = Field(default="as_of_cutoff", description="as_of_cutoff (what was known at the cutoff) or snapshot.")
    repos: list[str] = Field(default=[], description="Commit model: repositories to train on (empty = all).")
    n_estimators: int = Field(default=250, description="Trees per gradient-boosting model.")
    n_folds: int = Field(default=3, description="Time-ordered folds for the out-of-fold stack.")
    use_text: bool = Field(default=True, description="Include the hashed n-gram text model.")
    min_test_rows: int = Field(default=150, description="Test-size gate: minimum held-out rows.")
    min_test_class: int = Field(default=15, description="Test-size gate: minimum rows of each class.")

    def train_config(self) -> TrainConfig:
        return TrainConfig(cutoff=self.cutoff, test_end=self.test_end, min_observation_days=self.min_observation_days,
                           n_folds=self.n_folds, n_estimators=self.n_estimators, min_test_rows=self.min_test_rows,
                           min_test_class=self.min_test_class, use_text=self.use_text, train_labels=self.train_labels)


def _checks(asset: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(g, asset=asset, blocking=False, description=f"evaluation gate: {g}") for g in GATES]


def _finish(context: dg.AssetExecutionContext, res: TrainResult, mlflow: MlflowResource, wh_res: WarehouseResource,
            frame, asset: str) -> dg.MaterializeResult:  # noqa: ANN001
    tracker = mlflow.tracker()
    plots_dir = Path(tempfile.mkdtemp(prefix=f"{asset}-"))
    logged = log_and_gate(tracker, res, run_name=asset, dagster_run_id=context.run.run_id, asset_key=asset,
                          plots_dir=plots_dir)
    set_training_reference(wh_res.get(), GROUP, res.spec.model_name, logged.version, res.split.train.select(res.spec.numeric))
    stored = store_predictions(wh_res.get(), predictions_frame(frame, res.spec, res.model.predict_proba(frame),
                                                               logged.version))
    head = {k: v for k, v in res.metrics.items() if k.startswith("test_roc_auc") or k in
            ("test_pr_auc", "test_f1", "test_brier", "test_ece")}
    return dg.MaterializeResult(
        metadata={"mlflow_run_id": logged.run_id, "model": res.spec.model_name, "model_version": logged.version,
                  **logged.decision.as_metadata(), "metrics": metrics_md(head), **res.split.describe(),
                  "per_group": table_md(res.per_group), "top_contributions": table_md(res.importances.head(15)),
                  "roc": plot_md(logged.plots["roc"]), "calibration": plot_md(logged.plots["calibration"]),
                  "predictions_stored": stored},
        check_results=[dg.AssetCheckResult(check_name=g, passed=res.gates[g][0], metadata={"detail": res.gates[g][1]})
                       for g in GATES],
    )


@dg.asset(group_name=GROUP, deps=["patch_features", "commit_chains"], check_specs=_checks("acceptance_commit_model"),
          description="P(a merged commit is later fixed or reverted): LightGBM+XGBoost+text, stacked and calibrated.")
def acceptance_commit_model(context: dg.AssetExecutionContext, config: AcceptanceConfig, warehouse: WarehouseResource,
                            mlflow: MlflowResource) -> dg.MaterializeResult:
    frame = commit_frame(warehouse.get(), config.repos or None)
    res = train_and_evaluate(frame, COMMIT, config.train_config())
    context.log.info(f"gates: {res.gates}")
    return _finish(context, res, mlflow, warehouse, frame, "acceptance_commit_model")


@dg.asset(group_name=GROUP, check_specs=_checks("acceptance_email_model"),
          description="P(a patch e-mail is merged): real LTP e-mails with --data, else the ingest-list table.")
def acceptance_email_model(context: dg.AssetExecutionContext, config: AcceptanceConfig, warehouse: WarehouseResource,
                           mlflow: MlflowResource, data: DataResource) -> dg.MaterializeResult:
    mails, source = email_source(data.root(), warehouse.get())
    spec: TargetSpec = email_spec()
    if mails is None:
        why = "no patch e-mails: set --data (acceptance_ltp.parquet) or run `kforge ingest-list`; nothing trained"
        context.log.warning(why)
        return dg.MaterializeResult(metadata={"source": source, "skipped": why}, check_results=[
            dg.AssetCheckResult(check_name=g, passed=False, severity=dg.AssetCheckSeverity.WARN,
                                metadata={"detail": why}) for g in GATES])
    frame = email_training_frame(mails, warehouse.get())
    res = train_and_evaluate(frame, spec, config.train_config())
    out = _finish(context, res, mlflow, warehouse, frame, "acceptance_email_model")
    return dg.MaterializeResult(metadata={**(out.metadata or {}), "source": source}, check_results=out.check_results)


defs = dg.Definitions(assets=[acceptance_commit_model, acceptance_email_model])
