"""Jobs, schedules and the feedback sensor of the ``telemetry`` group.

* ``retrain_telemetry``: simulate, retrain and gate the forecaster and the scheduling policy,
  evaluate the recommender, replay serving, refresh the monitoring report (nightly, 03:30 UTC);
* ``refresh_model_monitoring``: the monitoring report only (hourly);
* ``telemetry_feedback_sensor``: requests ``retrain_telemetry`` when enough new telemetry
  feedback rows arrived (cursor = last feedback_id).
"""

import dagster as dg
from kforge.dagster_io import WarehouseResource

MIN_NEW_FEEDBACK = 20

retrain_telemetry = dg.define_asset_job(
    "retrain_telemetry", selection=dg.AssetSelection.groups("telemetry"),
    description="Simulate telemetry, retrain + gate the OOM forecaster and scheduling policy, refresh monitoring.",
)
refresh_model_monitoring = dg.define_asset_job(
    "refresh_model_monitoring", selection=dg.AssetSelection.assets("model_monitoring_report"),
    description="Rebuild the model-monitoring report from the prediction log.",
)

nightly_telemetry = dg.ScheduleDefinition(name="nightly_telemetry", target=retrain_telemetry,
                                          cron_schedule="30 3 * * *", execution_timezone="UTC")
hourly_monitoring = dg.ScheduleDefinition(name="hourly_model_monitoring", target=refresh_model_monitoring,
                                          cron_schedule="15 * * * *", execution_timezone="UTC")


@dg.sensor(job=retrain_telemetry, minimum_interval_seconds=300)
def telemetry_feedback_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Retrain when at least MIN_NEW_FEEDBACK new telemetry feedback rows arrived."""
    import kforge.telemetry.feedback  # noqa: F401 - registers the telemetry feedback schema
    from kforge.feedback import feedback_since

    after = int(context.cursor or 0)
    new = feedback_since("telemetry", warehouse.get(), after)
    if new.height < MIN_NEW_FEEDBACK:
        return dg.SkipReason(f"{new.height} new telemetry feedback row(s) since id {after}; need {MIN_NEW_FEEDBACK}")
    last = int(new["feedback_id"].max())
    context.update_cursor(str(last))
    return dg.RunRequest(run_key=f"telemetry-feedback-{last}", tags={"trigger": "feedback", "feedback_rows": str(new.height)})


defs = dg.Definitions(jobs=[retrain_telemetry, refresh_model_monitoring],
                      schedules=[nightly_telemetry, hourly_monitoring], sensors=[telemetry_feedback_sensor])
