"""Retraining for the generation group: nightly, and when reviewers' feedback on generated
messages (accept/edit/reject) accumulates or their acceptance rate drops."""

import dagster as dg
from kforge.dagster_io import WarehouseResource
from kforge.feedback import feedback_since
from kforge.generation import feedback as _schema  # noqa: F401 - registers the 'generation' feedback schema

retrain_generation = dg.define_asset_job("retrain_generation", selection=dg.AssetSelection.groups("generation"),
                                         description="Rebuild the generation corpus and retrain level 1, NNGen and the LM.")
nightly_generation = dg.ScheduleDefinition(name="nightly_generation", job=retrain_generation, cron_schedule="30 3 * * *",
                                           execution_timezone="UTC")
MIN_NEW = 20
MIN_ACCEPT_RATE = 0.3


@dg.sensor(job=retrain_generation, minimum_interval_seconds=300,
           description=f"Retrain after {MIN_NEW} new reviews of generated messages, or sooner if fewer than "
                       f"{MIN_ACCEPT_RATE:.0%} of the last reviews accepted the message unchanged.")
def generation_feedback_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    after = int(context.cursor or 0)
    new = feedback_since("generation", warehouse.get(), after)
    if new.height == 0:
        return dg.SkipReason(f"no new generation feedback after id {after}")
    last = int(new["feedback_id"].max())
    accept = float((new["verdict"] == "accept").mean())
    drift = new.height >= 5 and accept < MIN_ACCEPT_RATE
    if new.height < MIN_NEW and not drift:
        return dg.SkipReason(f"{new.height} new review(s) (< {MIN_NEW}) and acceptance {accept:.0%} >= {MIN_ACCEPT_RATE:.0%}")
    context.update_cursor(str(last))
    reason = "acceptance_drift" if drift else "new_feedback"
    return dg.RunRequest(run_key=f"generation-feedback-{last}", tags={"trigger": reason, "feedback_rows": str(new.height)})


defs = dg.Definitions(jobs=[retrain_generation], schedules=[nightly_generation], sensors=[generation_feedback_sensor])
