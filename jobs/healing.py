"""Jobs, schedule and sensor of the ``healing`` group.

* ``retrain_healing``: the whole group; nightly at 03:30 UTC;
* ``healing_feedback_sensor``: requests ``retrain_healing`` when new healing feedback (labelled
  errors or fix outcomes) has arrived; its cursor is the last ``feedback_id`` seen.
"""

import dagster as dg
from kforge.dagster_io import WarehouseResource
from kforge.feedback import feedback_since
from kforge.healing import feedback as _feedback  # noqa: F401 - registers the healing feedback schema

MIN_NEW_ROWS = 1

retrain_healing = dg.define_asset_job("retrain_healing", selection=dg.AssetSelection.groups("healing"))
nightly_healing = dg.ScheduleDefinition(name="nightly_healing", job=retrain_healing, cron_schedule="30 3 * * *",
                                        execution_timezone="UTC")


@dg.sensor(job=retrain_healing, minimum_interval_seconds=300, description="Retrain on new healing feedback.")
def healing_feedback_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    after = int(context.cursor or 0)
    new = feedback_since("healing", warehouse.get(), after)
    if new.height < MIN_NEW_ROWS:
        return dg.SkipReason(f"no new healing feedback after id {after}")
    last = int(new["feedback_id"].max())
    kinds = new["kind"].value_counts().to_dicts()
    context.update_cursor(str(last))
    return dg.RunRequest(run_key=f"healing-feedback-{last}", tags={"feedback_rows": str(new.height),
                                                                   "feedback_kinds": str(kinds)})


defs = dg.Definitions(jobs=[retrain_healing], schedules=[nightly_healing], sensors=[healing_feedback_sensor])
