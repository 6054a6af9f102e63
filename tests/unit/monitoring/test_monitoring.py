import json

import numpy as np
import polars as pl
import pytest
from kforge.errors import InputError
from kforge.monitoring import (
    log_followed,
    log_outcomes,
    log_predictions,
    monitoring_report,
    plot_report,
    psi,
    set_reference,
    summarize_inputs,
    write_json,
)
from kforge.storage import Warehouse


def test_psi_is_zero_for_same_distribution_and_large_for_shift():
    assert psi([0.5, 0.5], [50, 50]) == pytest.approx(0.0, abs=1e-9)
    assert psi([0.5, 0.5], [95, 5]) > 0.2
    with pytest.raises(ValueError, match="mismatch"):
        psi([0.5, 0.5], [1, 2, 3])


def test_log_report_and_exports(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    rng = np.random.default_rng(0)
    set_reference(wh, "acceptance", "kforge-acceptance", 2, pl.DataFrame({"a": rng.normal(size=2000)}))
    stable = pl.DataFrame({"a": rng.normal(size=500)})
    shifted = pl.DataFrame({"a": rng.normal(2, 1, size=500)})
    ids = [log_predictions(wh, "acceptance", "kforge-acceptance", 2, 5.0, 500,
                           summarize_inputs(wh, "kforge-acceptance", 2, stable))]
    ids.append(log_predictions(wh, "healing", "kforge-healing", 1, 1.0, 10))
    assert ids == [1, 2]
    log_followed(wh, "acceptance", "kforge-acceptance", 2, 3, 4)
    log_outcomes(wh, "acceptance", "kforge-acceptance", 2, 10, 7)
    rep = monitoring_report(wh)
    acc = next(m for m in rep["models"] if m["family"] == "acceptance")
    assert acc["predictions"] == 500 and acc["followed_rate"] == 0.75 and acc["accuracy"] == 0.7
    assert acc["latency_ms_per_row_p50"] == pytest.approx(0.01) and acc["drift_alert"] is False
    assert "generation" in rep["families_without_predictions"] and "healing" not in rep["families_without_predictions"]
    log_predictions(wh, "acceptance", "kforge-acceptance", 2, 5.0, 500, summarize_inputs(wh, "kforge-acceptance", 2, shifted))
    rep = monitoring_report(wh)
    assert next(m for m in rep["models"] if m["family"] == "acceptance")["drift_alert"] is True
    js = write_json(rep, tmp_path / "r.json")
    assert json.loads(js.read_text())["totals"]["prediction_calls"] == 3
    assert plot_report(rep, tmp_path / "r.png").stat().st_size > 1000


def test_bad_monitoring_inputs(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(InputError, match="family"):
        log_predictions(wh, "", "m", 1, 1.0, 1)
    with pytest.raises(InputError, match=">= 0"):
        log_predictions(wh, "telemetry", "m", 1, -1.0, 1)
    with pytest.raises(InputError, match="n_followed"):
        log_followed(wh, "telemetry", "m", 1, 5, 2)
    with pytest.raises(InputError, match="n_correct"):
        log_outcomes(wh, "telemetry", "m", 1, 2, 5)
    with pytest.raises(InputError, match="numeric"):
        set_reference(wh, "telemetry", "m", 1, pl.DataFrame({"s": ["a"]}))
    assert monitoring_report(wh)["models"] == []
