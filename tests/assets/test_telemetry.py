"""Materialize the telemetry group with small configs against a temp KFORGE_HOME: every model goes
through the release path, and re-materializing on the same data registers nothing new."""

import json

import dagster as dg
import pytest
import torch
from kforge.config import Paths
from kforge.dagster_io import DataResource, MlflowResource, WarehouseResource

import assets.monitoring as mon
import assets.telemetry as tel

torch.set_num_threads(1)

SMALL = {
    "ops": {
        "memory_telemetry": {"config": {"fit_seeds": [0, 1, 2, 3], "calib_seeds": [4, 5], "test_seeds": [100, 101, 102],
                                        "duration_s": 300, "workloads": ["leak", "burst", "fragmenting"]}},
        "oom_forecaster": {"config": {"n_estimators": 60}},
        "oom_recommender": {"config": {"workloads": ["leak", "fragmenting"], "seeds": [100], "duration_s": 120,
                                       "lookahead_s": 10}},
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
    from kforge.registry import Tracker
    from kforge.telemetry.specs import MIN_TEST_INCIDENTS, SPECS

    result = dg.materialize([tel.memory_telemetry, tel.oom_forecaster, tel.oom_recommender, tel.scheduling_policy,
                             tel.telemetry_serving_replay, mon.model_monitoring_report],
                            resources=res, run_config=SMALL, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    assert {(s.asset_key, g.name) for s in SPECS for g in s.gate_specs()} <= set(checks)
    assert checks[("oom_forecaster", "split_holds")].passed and checks[("scheduling_policy", "split_holds")].passed
    assert checks[("oom_forecaster", "no_future_features")].passed
    size = checks[("oom_forecaster", "test_size")]     # 3 workloads x 3 held-out seeds give >= 10 incidents
    assert size.passed and size.metadata["rows"].value >= size.metadata["minimum"].value == MIN_TEST_INCIDENTS
    mats = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert {"memory_telemetry", "oom_events", "oom_forecaster", "oom_recommender", "scheduling_policy",
            "model_monitoring_report"} <= set(mats)
    fc = mats["oom_forecaster"]
    assert fc["mlflow_run_id"].value and int(fc["model_version"].value) == 1
    assert fc["gate_decision"].value == "promoted" and fc["eval_rows"].value == 9
    # training-set figures (train_*) are in the MLflow run, never in the asset's metrics summary (issue 15.11)
    sched = mats["scheduling_policy"]
    assert "test_turnaround_gain_vs_cfs" in sched["metrics"].value
    assert "train_" not in sched["metrics"].value and "final_loss" not in sched["metrics"].value
    logged = Tracker(Paths.of(tmp_path)).client().get_run(sched["mlflow_run_id"].value).data.metrics
    assert {"train_decisions", "train_final_loss", "train_oracle_agreement"} <= set(logged)
    assert "final_loss" not in logged and "oracle_agreement" not in logged
    assert not [(key, k) for key, c in checks.items() for k in c.metadata if k.startswith("train_")]
    rec = mats["oom_recommender"]
    assert rec["model"].value == "kforge-telemetry-recommender" and int(rec["model_version"].value) == 1
    assert rec["gate_decision"].value in ("promoted", "blocked")
    tracker = Tracker(Paths.of(tmp_path))
    mv = tracker.client().get_model_version("kforge-telemetry-recommender", "1")
    assert mv.tags["kforge.gate.decision"] == rec["gate_decision"].value
    report = json.loads((tmp_path / "exports" / "monitoring" / "model_monitoring.json").read_text())
    families = {m["family"] for m in report["models"]}
    assert "telemetry" in families
    assert "data:image/png;base64" in mats["model_monitoring_report"]["plot"].value

    # re-materializing the models on the same data with the same config registers nothing
    again = dg.materialize([tel.oom_forecaster, tel.oom_recommender, tel.scheduling_policy], resources=res,
                           run_config={"ops": {k: SMALL["ops"][k] for k in ("oom_forecaster", "oom_recommender",
                                                                          "scheduling_policy")}},
                           instance=dg.DagsterInstance.ephemeral())
    mats2 = {e.asset_key.to_user_string(): e.materialization.metadata for e in again.get_asset_materialization_events()}
    for key, spec in (("oom_forecaster", "kforge-telemetry-oom"), ("oom_recommender", "kforge-telemetry-recommender"),
                      ("scheduling_policy", "kforge-telemetry-scheduler")):
        assert mats2[key]["gate_decision"].value == "unchanged", key
        assert int(mats2[key]["model_version"].value) == 1
        assert len(tracker.client().search_model_versions(f"name='{spec}'")) == 1


def test_definitions_include_jobs_and_schedules():
    from jobs.definitions import build_definitions

    defs = build_definitions()
    assert defs.resolve_job_def("retrain_telemetry") is not None
    assert defs.resolve_schedule_def("nightly_retrain").execution_timezone == "UTC"
    # no feedback sensor: the models train on the simulators, a retrain would not read the feedback
    assert "telemetry_feedback_sensor" not in {s.name for s in defs.sensors or []}
