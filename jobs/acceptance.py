"""Retraining for the acceptance family: ``retrain_acceptance`` (features + both models) and its
feedback sensor (new labelled feedback, or the champions' Brier drifting on it)."""

import dagster as dg
from kforge.acceptance.live_error import champion_drift
from kforge.dagster_io.sensors import feedback_sensor
from kforge.feedback.retrain import RetrainPolicy

from jobs.definitions import retrain_job

POLICY = RetrainPolicy(min_new_rows=50, max_drift=0.05, min_drift_rows=20, error_name="Brier")

retrain_acceptance = retrain_job("acceptance", dg.AssetSelection.groups("patch_features", "acceptance"),
                                 "Recompute patch features (with feedback events), retrain and gate the acceptance models.")
acceptance_feedback_sensor = feedback_sensor(
    "acceptance", retrain_acceptance, POLICY, drift=lambda wh, mlflow, rows: champion_drift(wh, mlflow.tracker(), rows),
    minimum_interval_seconds=60)

defs = dg.Definitions(jobs=[retrain_acceptance], sensors=[acceptance_feedback_sensor])
