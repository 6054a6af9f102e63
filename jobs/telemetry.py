"""Jobs and schedule of the ``telemetry`` group.

* ``retrain_telemetry``: simulate, retrain and gate the forecaster, recommender and scheduling
  policy, replay serving, refresh the monitoring report (also part of ``nightly_retrain``);
* ``refresh_model_monitoring``: the monitoring report only (hourly).

No feedback sensor: the telemetry models train on the project's simulators, so a retrain would
not read the feedback that triggered it.
"""

import dagster as dg

from jobs.definitions import retrain_job

retrain_telemetry = retrain_job("telemetry", dg.AssetSelection.groups("telemetry"),
                                "Simulate telemetry, retrain + gate the OOM forecaster, recommender and scheduling policy.")
refresh_model_monitoring = dg.define_asset_job(
    "refresh_model_monitoring", selection=dg.AssetSelection.assets("model_monitoring_report"),
    description="Rebuild the model-monitoring report from the prediction log.",
)
hourly_monitoring = dg.ScheduleDefinition(name="hourly_model_monitoring", target=refresh_model_monitoring,
                                          cron_schedule="15 * * * *", execution_timezone="UTC",
                                          description="Hourly at :15 UTC (clear of the 01:00/02:00 nightly jobs): "
                                                      "rebuild the model-monitoring report (drift, live error) "
                                                      "from the prediction log.")

defs = dg.Definitions(jobs=[retrain_telemetry, refresh_model_monitoring], schedules=[hourly_monitoring])
