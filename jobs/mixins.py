"""Retraining for the ``mixins`` group: a job, a nightly schedule, and a sensor that requests a run
when enough new outside outcomes (feedback, imported matrices) arrived since the champion was trained."""

import json

import dagster as dg
from kforge.dagster_io import MlflowResource, WarehouseResource

MIN_NEW_OUTCOMES = 50

retrain_mixins = dg.define_asset_job(
    "retrain_mixins", selection=dg.AssetSelection.groups("mixins"),
    description="Exercise the mixins, ingest feedback, rebuild the matrix, retrain and gate kforge-mixins.")

nightly_mixins = dg.ScheduleDefinition(name="nightly_mixins", job=retrain_mixins, cron_schedule="30 3 * * *",
                                       execution_timezone="UTC")


def _champion_through(mlflow: MlflowResource) -> int:
    """Outcome id the champion's history snapshot ends at (0 without a champion)."""
    from kforge.mixins.tracking import MODEL_NAME

    champ = mlflow.tracker().champion(MODEL_NAME)
    if champ is None:
        return 0
    return int((champ.tags or {}).get("history_through_id", 0))


@dg.sensor(job=retrain_mixins, minimum_interval_seconds=300,
           description=f"Retrain when >= {MIN_NEW_OUTCOMES} outcomes arrived since the champion was trained.")
def mixins_outcomes_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource,
                           mlflow: MlflowResource) -> dg.SensorResult | dg.SkipReason:
    from kforge.feedback import feedback_since
    from kforge.mixins.outcomes import OUTCOMES
    from kforge.mixins.pipeline import last_ingested_feedback

    wh = warehouse.get()
    cursor = json.loads(context.cursor) if context.cursor else {"feedback_id": 0, "outcome_id": 0}
    through = max(_champion_through(mlflow), int(cursor.get("outcome_id", 0)))
    new_outcomes = 0
    max_outcome = through
    if wh.has_table(OUTCOMES):
        # harness rows are produced by the retraining job itself: only outside observations count
        row = wh.read(f"select count(*) as n, coalesce(max(outcome_id), 0) as m from {OUTCOMES} "
                      "where outcome_id > ? and source <> 'harness'", [through])
        new_outcomes, max_outcome = int(row["n"][0]), max(through, int(row["m"][0]))
    seen_fb = max(int(cursor.get("feedback_id", 0)), last_ingested_feedback(wh))
    fb = feedback_since("mixins", wh, seen_fb)
    new_total = new_outcomes + fb.height
    if new_total < MIN_NEW_OUTCOMES:
        return dg.SkipReason(f"{new_total} new outcomes since outcome {through} / feedback {seen_fb} "
                             f"(< {MIN_NEW_OUTCOMES}); not retraining")
    max_fb = int(fb["feedback_id"].max()) if fb.height else seen_fb
    new_cursor = {"feedback_id": max_fb, "outcome_id": max_outcome}
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"mixins-o{max_outcome}-f{max_fb}",
                                    tags={"kforge/reason": f"{new_total} new mixin outcomes"})],
        cursor=json.dumps(new_cursor))


defs = dg.Definitions(jobs=[retrain_mixins], schedules=[nightly_mixins], sensors=[mixins_outcomes_sensor])
