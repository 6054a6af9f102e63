"""Model monitoring for every family: log predictions, whether they were followed, outcomes and
input drift into append-only warehouse tables; build a report (JSON + plot) from them."""

from kforge.monitoring.drift import profile, psi
from kforge.monitoring.log import (
    get_reference,
    log_followed,
    log_outcomes,
    log_predictions,
    set_reference,
    summarize_inputs,
)
from kforge.monitoring.report import monitoring_report, plot_report, report_frame, write_json

__all__ = ["get_reference", "log_followed", "log_outcomes", "log_predictions", "monitoring_report", "plot_report",
           "profile", "psi", "report_frame", "set_reference", "summarize_inputs", "write_json"]
