"""Model monitoring for every family: a report from the append-only prediction tables that
``kforge.monitoring`` writes (latency p50/p99, counts, followed rate, accuracy on feedback, PSI
drift), with a plot in the Dagster metadata and a JSON export under ``KFORGE_HOME/exports``."""

from typing import Any

import dagster as dg
from kforge.dagster_io import WarehouseResource
from kforge.dagster_io.metadata import plot_md, table_md


@dg.asset(group_name="telemetry", deps=["telemetry_serving_replay"],
          check_specs=[dg.AssetCheckSpec("monitoring_no_drift_alert", asset="model_monitoring_report",
                                         description="no model's inputs drifted past PSI 0.2")],
          description="Monitoring report across all model families (JSON export + plot).")
def model_monitoring_report(warehouse: WarehouseResource) -> dg.MaterializeResult:
    from kforge.monitoring import monitoring_report, plot_report, report_frame, write_json

    wh = warehouse.get()
    rep = monitoring_report(wh)
    out = warehouse.paths().exports / "monitoring"
    js = write_json(rep, out / "model_monitoring.json")
    png = plot_report(rep, out / "model_monitoring.png")
    return dg.MaterializeResult(
        metadata={"report": table_md(report_frame(rep)), "plot": plot_md(png), "json": dg.MetadataValue.path(str(js)),
                  "families_without_predictions": ", ".join(rep["families_without_predictions"]) or "none",
                  "prediction_calls": rep["totals"]["prediction_calls"]},
        check_results=[drift_check(rep)])


def drift_check(rep: dict[str, Any]) -> dg.AssetCheckResult:
    """``monitoring_no_drift_alert``: passed only when some model's live inputs were compared with its
    reference profile and none drifted; with no model compared it did not run (WARN, never passed)."""
    checked = [f"{m['model_name']}@{m['model_version']}" for m in rep["models"] if m.get("psi")]
    drifted = [f"{m['model_name']}@{m['model_version']}" for m in rep["models"] if m.get("drift_alert")]
    if not checked:
        why = "no model logged inputs against a drift reference profile: no PSI was computed"
        return dg.AssetCheckResult(check_name="monitoring_no_drift_alert", passed=False,
                                   severity=dg.AssetCheckSeverity.WARN, description=f"not run: {why}",
                                   metadata={"status": "not run", "detail": why})
    return dg.AssetCheckResult(check_name="monitoring_no_drift_alert", passed=not drifted,
                               severity=dg.AssetCheckSeverity.WARN,
                               metadata={"status": "failed" if drifted else "passed", "drifted": ", ".join(drifted) or "none",
                                         "models_checked": ", ".join(checked)})


defs = dg.Definitions(assets=[model_monitoring_report])
