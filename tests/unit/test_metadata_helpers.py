"""Issue 17: asset metadata a data scientist can trend and read (floats, ISO dates, inline plots)."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from kforge.dagster_io.metadata import metric_entries, plot_md, table_md


def test_held_out_metrics_are_numeric_entries_and_training_figures_stay_in_the_table() -> None:
    md = metric_entries({"test_roc_auc": 0.812345, "train_roc_auc": 0.99, "test_rows": 120, "flag": True})
    assert md["test_roc_auc"] == dg.MetadataValue.float(0.8123)
    assert md["test_rows"] == dg.MetadataValue.float(120.0)
    assert "train_roc_auc" not in md and "flag" not in md  # train_ figures are not trended beside test ones
    assert "train_roc_auc" in md["metrics"].value  # ... but are still shown
    named = metric_entries({"test_ap": 0.5}, "forecaster")
    assert set(named) == {"forecaster", "forecaster_test_ap"}


def test_epoch_columns_read_as_iso_times() -> None:
    text = table_md(pl.DataFrame({"sha": ["a"], "committer_ts": [1_700_000_000], "n": [3]})).value
    assert "2023-11-14T22:13:20Z" in text and "1700000000" not in text


def test_a_logged_plot_is_a_short_inline_image_served_by_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    png = tmp_path / "calibration.png"
    png.write_bytes(b"\x89PNG" + b"\0" * 5000)
    monkeypatch.setenv("KFORGE_MLFLOW_URL", "http://mlflow.local:5000")
    inline = plot_md(png, "abc123").value
    # Dagster renders markdown under 1,000 characters inline; a base64 PNG is far longer
    assert len(inline) < 1000
    assert inline == "![calibration](http://mlflow.local:5000/get-artifact?path=plots/calibration.png&run_uuid=abc123)"
    assert plot_md(png).value.startswith("![calibration](data:image/png;base64,")
