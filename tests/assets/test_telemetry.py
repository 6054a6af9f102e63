"""Materialize the telemetry group with small configs against a temp KFORGE_HOME; sensor ticks."""

import json

import dagster as dg
import pytest
import torch
from kforge.dagster_io import DataResource, MlflowResource, WarehouseResource

import assets.monitoring as mon
import assets.telemetry as tel
import jobs.telemetry as tj

torch.set_num_threads(1)

SMALL = {
    "ops": {
        "memory_telemetry": {"config": {"fit_seeds": [0, 1], "calib_seeds": [2], "test_seeds": [100, 101], "duration_s": 300}},
        "oom_forecaster": {"config": {"n_estimators": 60}},
        "oom_recommender": {"config": {"workloads": ["fragmenting"], "seeds": [100], "duration_s": 120, "lookahead_s": 10}},
        "scheduling_policy": {"config": {"train_seeds": [0], "test_seeds": [1000], "n_tasks": 40, "epochs": 2, "dagger_rounds": 0}},
        "telemetry_serving_replay": {"config": {"duration_s": 60, "batch_s": 30}},
    }
}


@pytest.fixture()
def res(tmp_path, monkeypatch):
    monkeypatch.setenv("KFORGE_HOME", str(tmp_path))
    return {"warehouse": WarehouseResource(home=str(tmp_path)), "mlflow": MlflowResource(home=str(tmp_path)),
            "data": DataResource()}


def test_group_materializes_and_reports(res, tmp_path):
    result = dg.materialize([tel.memory_telemetry, tel.oom_forecaster, tel.oom_recommender, tel.scheduling_policy,
                             tel.telemetry_serving_replay, mon.model_monitoring_report],
                            resources=res, run_config=SMALL, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["oom_split_by_seed"] and checks["policy_held_out"] and checks["oom_test_size"] is not None
    mats = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert {"memory_telemetry", "oom_events", "oom_forecaster", "scheduling_policy", "model_monitoring_report"} <= set(mats)
    fc = mats["oom_forecaster"]
    assert fc["mlflow_run_id"].value and int(fc["model_version"].value) == 1
    report = json.loads((tmp_path / "exports" / "monitoring" / "model_monitoring.json").read_text())
    families = {m["family"] for m in report["models"]}
    assert "telemetry" in families
    assert "data:image/png;base64" in mats["model_monitoring_report"]["plot"].value


def test_feedback_sensor_skips_then_requests(res):
    import kforge.telemetry.feedback  # noqa: F401
    from kforge.feedback import add_feedback

    ctx = dg.build_sensor_context(cursor="0", resources={"warehouse": res["warehouse"]})
    out = tj.telemetry_feedback_sensor(ctx)
    assert isinstance(out, dg.SkipReason)
    wh = res["warehouse"].get()
    for i in range(tj.MIN_NEW_FEEDBACK):
        add_feedback("telemetry", {"model": "oom_forecaster", "host": f"h{i}", "predicted": "oom", "actual": "oom"}, wh)
    ctx = dg.build_sensor_context(cursor="0", resources={"warehouse": res["warehouse"]})
    req = tj.telemetry_feedback_sensor(ctx)
    assert isinstance(req, dg.RunRequest) and req.run_key == f"telemetry-feedback-{tj.MIN_NEW_FEEDBACK}"
    assert ctx.cursor == str(tj.MIN_NEW_FEEDBACK)


def test_definitions_include_jobs_and_schedules():
    from jobs.definitions import build_definitions

    defs = build_definitions()
    assert defs.resolve_job_def("retrain_telemetry") is not None
    assert defs.resolve_schedule_def("nightly_telemetry").execution_timezone == "UTC"
    assert defs.resolve_sensor_def("telemetry_feedback_sensor") is not None
