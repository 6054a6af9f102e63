"""Retraining for the mixins family when production feedback on mixin combinations arrives; the
``mixin_outcomes`` asset ingests it before the model retrains."""

import dagster as dg
from kforge.dagster_io.sensors import feedback_sensor
from kforge.feedback.retrain import RetrainPolicy

from jobs.definitions import retrain_job

POLICY = RetrainPolicy(min_new_rows=50)

retrain_mixins = retrain_job("mixins", dg.AssetSelection.groups("mixins"),
                             "Exercise the mixins, ingest feedback, rebuild the matrix, retrain and gate kforge-mixins.")
mixins_feedback_sensor = feedback_sensor("mixins", retrain_mixins, POLICY)

defs = dg.Definitions(jobs=[retrain_mixins], sensors=[mixins_feedback_sensor])
