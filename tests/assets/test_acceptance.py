"""The acceptance loop on the demo repository: features -> model -> MLflow -> gate -> predictions."""

from pathlib import Path

import dagster as dg
import pytest
from kforge.config import Paths
from kforge.dagster_io import DataResource, GitReposResource, MlflowResource, WarehouseResource
from kforge.git.ingest import register_repository
from kforge.registry import Tracker
from kforge.storage import Warehouse

from assets.acceptance import acceptance_commit_model, acceptance_email_model
from assets.kernel_commits import commit_chains, imported_commits, ingest_commits, repositories
from assets.patch_features import patch_features


def _resources(home: Path, data: str = "") -> dict:
    return {"warehouse": WarehouseResource(home=str(home)), "mlflow": MlflowResource(home=str(home)),
            "git_repos": GitReposResource(), "data": DataResource(data_dir=data)}


@pytest.fixture()
def ingested(kforge_home: Path, demo_repo: Path) -> dg.DagsterInstance:
    wh = Warehouse(Paths.of(kforge_home).warehouse)
    register_repository(wh, "demo", demo_repo)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(repositories.name, ["demo"])
    assert dg.materialize([ingest_commits], partition_key="demo", instance=instance,
                          resources=_resources(kforge_home)).success
    assert dg.materialize([imported_commits, commit_chains], instance=instance,
                          resources=_resources(kforge_home)).success
    return instance


def test_features_model_gate_and_registry(kforge_home: Path, ingested: dg.DagsterInstance) -> None:
    cfg = {"ops": {"acceptance_commit_model": {"config": {"n_estimators": 60, "n_folds": 2,
                                                           "min_observation_days": 30}}}}
    res = dg.materialize([patch_features, acceptance_commit_model], instance=ingested,
                         resources=_resources(kforge_home), run_config=cfg, raise_on_error=False)
    checks = {c.check_name: c for c in res.get_asset_check_evaluations()}
    assert checks["point_in_time"].passed
    assert checks["time_split"].passed and checks["no_future_features"].passed
    mats = {m.asset_key.to_user_string(): m.materialization.metadata for m in res.get_asset_materialization_events()}
    md = mats["acceptance_commit_model"]
    print({k: v.value for k, v in md.items() if k.startswith(("gate", "n_", "split"))}, {c: (v.passed, v.metadata["detail"].value) for c, v in checks.items() if c != "point_in_time"})
    assert md["model_version"].value == 1
    tracker = Tracker(Paths.of(kforge_home))
    run = tracker.client().get_run(md["mlflow_run_id"].value)
    for key in ("test_roc_auc", "test_pr_auc", "test_f1", "test_brier", "test_ece",
                "test_roc_auc_lines_added", "test_roc_auc_plain_lr"):
        assert key in run.data.metrics, key
    assert run.data.tags["dagster_run_id"] == res.run_id
    arts = {a.path for a in tracker.client().list_artifacts(run.info.run_id, "plots")}
    assert {"plots/roc.png", "plots/pr.png", "plots/calibration.png"} <= arts
    gates_ok = all(checks[g].passed for g in ("test_size", "beats_lines_added", "beats_plain_lr"))
    # the gate promotes the first version only when every evaluation check passed
    assert md["gate_promoted"].value == gates_ok
    wh = Warehouse(Paths.of(kforge_home).warehouse)
    assert wh.count("acceptance_predictions") == wh.count("patch_features")


def test_email_model_without_data_skips_with_reason(kforge_home: Path) -> None:
    res = dg.materialize([acceptance_email_model], resources=_resources(kforge_home),
                         raise_on_error=False)
    md = res.get_asset_materialization_events()[0].materialization.metadata
    assert "no patch e-mails" in md["skipped"].value
    assert not any(c.passed for c in res.get_asset_check_evaluations())
