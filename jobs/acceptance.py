"""Jobs, schedule and sensor for the acceptance family.

* ``retrain_acceptance``: recompute patch features and retrain both acceptance models (each run
  registers challengers; the gate decides promotion).
* ``refresh_and_retrain_acceptance``: also re-imports real commit tables and rebuilds the chains first.
* ``nightly_acceptance``: 02:30 UTC (after ``nightly_ingest`` at 01:00 and the commit tables at 01:30).
* ``acceptance_feedback_sensor``: requests ``retrain_acceptance`` when enough new labelled
  feedback arrived since the last request, or when the champion's Brier score on it drifts.
"""

import dagster as dg
import kforge.acceptance.feedback  # noqa: F401 - registers the "acceptance" feedback schema
import polars as pl
from kforge.acceptance.retrain import RetrainPolicy, decide, parse_cursor
from kforge.dagster_io import MlflowResource, WarehouseResource

retrain_acceptance = dg.define_asset_job(
    "retrain_acceptance", selection=dg.AssetSelection.groups("patch_features", "acceptance"),
    description="Recompute patch features, retrain and gate the acceptance models.",
)
refresh_and_retrain_acceptance = dg.define_asset_job(
    "refresh_and_retrain_acceptance",
    selection=dg.AssetSelection.assets("imported_commits", "commit_chains")
    | dg.AssetSelection.groups("patch_features", "acceptance"),
    description="Re-import commit tables, rebuild chains, recompute features, retrain the acceptance models.",
)
nightly_acceptance = dg.ScheduleDefinition(
    name="nightly_acceptance", cron_schedule="30 2 * * *", execution_timezone="UTC",
    target=refresh_and_retrain_acceptance,
    description="Nightly 02:30 UTC, after ingestion: refresh features and retrain the acceptance family.",
)


def build_feedback_sensor(policy: RetrainPolicy = RetrainPolicy(), name: str = "acceptance_feedback_sensor",
                          ) -> dg.SensorDefinition:
    """The feedback/drift sensor with its thresholds (a different policy -> a different sensor)."""

    @dg.sensor(name=name, job=retrain_acceptance, minimum_interval_seconds=60,
               description=f"Retrain acceptance after >= {policy.min_new_rows} new labelled feedback rows or a "
                           f"Brier drift > {policy.max_brier_increase} of the champion on them.")
    def _sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource, mlflow: MlflowResource):
        from kforge.acceptance.pipeline import PREDICTIONS
        from kforge.feedback import feedback_since

        wh = warehouse.get()
        rows = feedback_since("acceptance", wh, parse_cursor(context.cursor))
        preds, brier = None, None
        if rows.height:
            preds, brier = _champion_predictions(wh, mlflow, PREDICTIONS)
        d = decide(context.cursor, rows, preds, brier, policy)
        if not d.run:
            return dg.SkipReason(d.reason)
        context.update_cursor(d.cursor)
        return dg.RunRequest(run_key=d.run_key, tags={"kforge/trigger": d.reason[:200]})

    return _sensor


def _champion_predictions(wh, mlflow: MlflowResource, table: str):  # noqa: ANN001, ANN202
    """The commit and e-mail champions' stored predictions and their mean test Brier."""
    tracker = mlflow.tracker()
    parts, briers = [], []
    for name, target in (("kforge-acceptance-commit", "commit"), ("kforge-acceptance-email", "email")):
        champ = tracker.champion(name)
        if champ is None:
            continue
        run = tracker.client().get_run(champ.run_id)
        if "test_brier" in run.data.metrics:
            briers.append(run.data.metrics["test_brier"])
        if wh.has_table(table):
            parts.append(wh.read(f"select target, item_id, p from {table} where target = ? and model_version = ?",
                                 [target, int(champ.version)]))
    preds = pl.concat(parts) if parts else None
    return preds, (sum(briers) / len(briers) if briers else None)


acceptance_feedback_sensor = build_feedback_sensor()

defs = dg.Definitions(jobs=[retrain_acceptance, refresh_and_retrain_acceptance], schedules=[nightly_acceptance],
                      sensors=[acceptance_feedback_sensor])
