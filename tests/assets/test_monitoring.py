"""The monitoring report asset's drift check: it passes only when some model's live inputs were
compared with a reference profile; with nothing compared it did not run (never "passed")."""

import dagster as dg
import numpy as np
import polars as pl
from kforge.config import Paths
from kforge.dagster_io import WarehouseResource
from kforge.monitoring import log_predictions, set_reference, summarize_inputs
from kforge.storage import Warehouse

import assets.monitoring as mon


def _check(home) -> dg.AssetCheckEvaluation:  # noqa: ANN001
    result = dg.materialize([mon.model_monitoring_report], resources={"warehouse": WarehouseResource(home=str(home))},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "monitoring_no_drift_alert"
    return check


def test_drift_check_did_not_run_without_a_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("KFORGE_HOME", str(tmp_path))
    wh = Warehouse(Paths.of(tmp_path).warehouse)
    log_predictions(wh, "healing", "kforge-healing", 1, 1.0, 10)   # a call, but no reference to compare with
    check = _check(tmp_path)
    assert check.passed is False and check.metadata["status"].value == "not run"


def test_drift_check_passes_on_stable_inputs_and_fails_on_shifted_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("KFORGE_HOME", str(tmp_path))
    wh = Warehouse(Paths.of(tmp_path).warehouse)
    rng = np.random.default_rng(0)
    set_reference(wh, "acceptance", "kforge-acceptance", 1, pl.DataFrame({"a": rng.normal(size=2000)}))
    stable = pl.DataFrame({"a": rng.normal(size=500)})
    log_predictions(wh, "acceptance", "kforge-acceptance", 1, 5.0, 500,
                    summarize_inputs(wh, "kforge-acceptance", 1, stable))
    check = _check(tmp_path)
    assert check.passed is True and check.metadata["status"].value == "passed"
    assert check.metadata["models_checked"].value == "kforge-acceptance@1"
    shifted = pl.DataFrame({"a": rng.normal(3, 1, size=2000)})
    log_predictions(wh, "acceptance", "kforge-acceptance", 1, 5.0, 2000,
                    summarize_inputs(wh, "kforge-acceptance", 1, shifted))
    check = _check(tmp_path)
    assert check.passed is False and check.metadata["drifted"].value == "kforge-acceptance@1"
