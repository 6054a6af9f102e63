"""Feedback for the telemetry family: what really happened after a forecast or recommendation
(an OOM or not; whether the recommended action was taken and helped)."""

from typing import Any

from kforge.errors import InputError
from kforge.feedback import FeedbackSchema, Field
from kforge.storage import Warehouse


def _check(row: dict[str, Any], warehouse: Warehouse) -> None:
    if row["model"] == "oom_forecaster" and row["actual"] not in ("oom", "no_oom"):
        raise InputError("for model=oom_forecaster, actual must be 'oom' or 'no_oom'")
    if row.get("lead_s") is not None and row["lead_s"] < 0:
        raise InputError("lead_s must be >= 0")


SCHEMA = FeedbackSchema(
    family="telemetry",
    doc="Observed outcome of a telemetry prediction (OOM forecast, recommended action, scheduling decision).",
    fields=(
        Field("model", "str", choices=("oom_forecaster", "oom_recommender", "scheduler_policy"), doc="which model"),
        Field("host", "str", doc="machine or trace id the prediction was about"),
        Field("predicted", "str", doc="oom / no_oom, or the recommended action"),
        Field("actual", "str", doc="oom / no_oom, or the outcome observed"),
        Field("model_version", "int", required=False, doc="registered model version"),
        Field("followed", "bool", required=False, doc="was the recommendation acted upon"),
        Field("lead_s", "float", required=False, doc="seconds between the alarm and the OOM"),
        Field("note", "str", required=False),
    ),
    check=_check,
)
