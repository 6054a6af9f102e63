"""The telemetry models through the one release path: identical inputs register nothing new, and a
champion that cannot be scored on the held-out rows blocks promotion with the reason recorded
(the old asset logged "champion not scorable" and gated as if there were no champion)."""

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import polars as pl
import pytest
from kforge.config import Paths
from kforge.registry import Tracker
from kforge.registry.gates import Check
from kforge.storage import Warehouse
from kforge.telemetry import release as tr
from kforge.telemetry.forecast import ForecastConfig
from kforge.telemetry.specs import FORECASTER, SCHEDULER

SIM = tr.SimulationConfig(fit_seeds=(0, 1, 2, 3), calib_seeds=(4, 5), test_seeds=(100, 101, 102), duration_s=300,
                          workloads=("leak", "burst", "fragmenting"))
SCHED = tr.SchedulerConfig(train_seeds=(0,), test_seeds=(1000,), n_tasks=40, epochs=2, dagger_rounds=0)


@pytest.fixture(scope="module")
def telemetry(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Simulated once per module: (samples, events) with each run's seed role in ``split``."""
    return tr.store_telemetry(Warehouse(tmp_path_factory.mktemp("sim") / "w.duckdb"), SIM)


@pytest.fixture()
def tracker(kforge_home: Path) -> Tracker:
    return Tracker(Paths.of(kforge_home))


def _version_dir(tracker: Tracker, name: str, version: int) -> Path:
    client = tracker.client()
    run = client.get_run(client.get_model_version(name, str(version)).run_id)
    uri = run.info.artifact_uri
    return Path(unquote(urlparse(uri).path) if uri.startswith("file:") else uri) / "model"


def _versions(tracker: Tracker, name: str) -> int:
    return len(tracker.client().search_model_versions(f"name='{name}'"))


def _checks(result) -> dict[str, bool | None]:  # noqa: ANN001
    return {c.name: c.passed for c in result.checks}


def test_forecaster_unchanged_and_unscorable_champion(tracker: Tracker, warehouse: Warehouse, telemetry) -> None:  # noqa: ANN001
    samples, events = telemetry
    warehouse.replace(tr.MEMORY_TABLE, samples)
    warehouse.replace(tr.EVENTS_TABLE, events)
    r1 = tr.train_and_release_forecaster(tracker, warehouse, ForecastConfig(n_estimators=60)).result
    assert r1.decision == "promoted", r1.reason
    c = _checks(r1)
    assert c["split_holds"] and c["no_future_features"] and c["test_size"] and c["beats_heuristic"]
    assert r1.eval_rows == 9 and r1.baselines["heuristic"] < r1.challenger_score   # 3 workloads x 3 test seeds

    # identical config and data: nothing registered, the decision says so
    r2 = tr.train_and_release_forecaster(tracker, warehouse, ForecastConfig(n_estimators=60)).result
    assert r2.decision == "unchanged" and r2.version == r1.version
    assert _versions(tracker, FORECASTER.name) == 1

    # the champion was trained on a feature these rows lack: it cannot be scored, so nothing is promoted
    meta_file = _version_dir(tracker, FORECASTER.name, r1.version) / "threshold.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "features": [*meta["features"], "gpu_mem_used"]}))
    r3 = tr.train_and_release_forecaster(tracker, warehouse, ForecastConfig(n_estimators=80)).result
    assert r3.decision == "blocked" and r3.version == 2
    assert "could not be scored" in r3.reason and "gpu_mem_used" in r3.reason
    tags = tracker.client().get_model_version(FORECASTER.name, "2").tags
    assert tags["kforge.gate.decision"] == "blocked" and "gpu_mem_used" in tags["kforge.gate.reason"]
    assert _checks(r3)["beats_champion"] is False
    assert tracker.version_of(FORECASTER.name) == 1


def test_scheduler_cli_and_library_share_a_config_and_unscorable_champion_blocks(tracker: Tracker, kforge_home: Path,
                                                                                 capsys: pytest.CaptureFixture) -> None:
    from kforge.cli.main import main

    assert main(["--home", str(kforge_home), "telemetry", "train", "--model", "scheduler", "--sched-train-seeds", "0",
                 "--sched-test-seeds", "1000", "--n-tasks", "40", "--epochs", "2", "--dagger-rounds", "0"]) == 0
    out = json.loads(capsys.readouterr().out)["scheduler"]
    assert out["model"] == SCHEDULER.name and out["version"] == 1 and out["decision"] in ("promoted", "blocked")
    if out["decision"] == "blocked":   # a tiny policy may lose to CFS; the champion case needs one
        tracker.promote(SCHEDULER.name, 1, "test")
    # the same config through the library (what the asset calls): unchanged
    r = tr.train_and_release_scheduler(tracker, SCHED).result
    assert r.decision == "unchanged" and r.version == 1 and _versions(tracker, SCHEDULER.name) == 1
    assert r.check("beats_champion") == Check("beats_champion", None, r.reason)

    # the champion's weights are gone: it cannot be scored on the held-out workloads
    for f in _version_dir(tracker, SCHEDULER.name, 1).rglob("*.npz"):
        f.unlink()
    r2 = tr.train_and_release_scheduler(tracker, tr.SchedulerConfig(**{**SCHED.__dict__, "epochs": 3})).result
    assert r2.decision == "blocked" and "could not be scored" in r2.reason and "no policy weights" in r2.reason
    assert tracker.client().get_model_version(SCHEDULER.name, "2").tags["kforge.gate.decision"] == "blocked"
    assert tracker.version_of(SCHEDULER.name) == 1


def test_recommender_model_is_json_state_naming_its_forecaster(tmp_path: Path, telemetry) -> None:  # noqa: ANN001
    import warnings

    import mlflow.pyfunc
    from kforge.telemetry.features import FEATURES
    from kforge.telemetry.forecast import build_dataset, fit_model
    from kforge.telemetry.recommender_model import (
        make_state,
        read_state,
        run_closed_loop,
        save_state_model,
        scorer_of,
    )

    state = make_state(FORECASTER.name, 3, 0.5, lookahead_s=10, cooldown_s=10)
    d = save_state_model(state, tmp_path / "rec")
    assert read_state(d) == state and not list(d.rglob("*.pkl"))
    assert "loader_module: kforge.telemetry.recommender_model" in (d / "MLmodel").read_text()
    assert mlflow.pyfunc.load_model(str(d)).metadata.signature.inputs.input_names() == ["workload", "seed",
                                                                                        "duration_s"]
    samples, events = telemetry
    ds = build_dataset(samples, events, 20.0)
    model = fit_model(ds.filter(pl.col("split") == "fit"), ForecastConfig(n_estimators=20))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*valid feature names.*")
        out = run_closed_loop(state, scorer_of(model), [("fragmenting", 100, 30.0)])
    assert out[0]["strategy"] == "recommender" and out[0]["cost"] >= 0 and len(FEATURES) == model.n_features_in_
