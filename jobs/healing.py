"""Retraining for the healing family on new feedback (labelled errors or fix outcomes), which the
classifier, bandit and fix-effectiveness assets read."""

import dagster as dg
from kforge.dagster_io.sensors import feedback_sensor
from kforge.feedback.retrain import RetrainPolicy

from jobs.definitions import retrain_job

POLICY = RetrainPolicy(min_new_rows=1)

retrain_healing = retrain_job("healing", dg.AssetSelection.groups("healing"),
                              "Rebuild the healing corpus, retrain and gate the classifier, bandit and fix-effectiveness model.")
healing_feedback_sensor = feedback_sensor("healing", retrain_healing, POLICY)

defs = dg.Definitions(jobs=[retrain_healing], sensors=[healing_feedback_sensor])
