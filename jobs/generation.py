"""Retraining for the generation family when reviews of generated messages (accept/edit/reject)
accumulate or reviewers reject most of them; the corpus asset reads those reviews."""

import dagster as dg
from kforge.dagster_io.sensors import feedback_sensor
from kforge.feedback.retrain import Drift, RetrainPolicy

from jobs.definitions import retrain_job

MAX_REJECTION = 0.7  # policy: more than 70% of recent reviews not accepting the message unchanged
POLICY = RetrainPolicy(min_new_rows=20, max_drift=0.0, min_drift_rows=5, error_name="share of reviews not accepted",
                       reference_name=f"the policy ceiling of {MAX_REJECTION:.0%}")

retrain_generation = retrain_job("generation", dg.AssetSelection.groups("generation"),
                                 "Rebuild the generation corpus (with reviews) and retrain level 1, NNGen and the LM.")


def _rejection(wh, mlflow, rows):  # noqa: ANN001, ANN202
    return Drift(live=float((rows["verdict"] != "accept").mean()), reference=MAX_REJECTION, n=rows.height)


generation_feedback_sensor = feedback_sensor("generation", retrain_generation, POLICY, drift=_rejection)

defs = dg.Definitions(jobs=[retrain_generation], sensors=[generation_feedback_sensor])
