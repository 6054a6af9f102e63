"""The serving replay judges the champion forecaster's alarms against the horizon that version was
trained to predict (recorded in its meta), not a fixed 20 s."""

from types import SimpleNamespace

import numpy as np
import polars as pl
from kforge.storage import Warehouse
from kforge.telemetry import mlflow_models, serving


class _Silent:
    def predict_proba(self, x):  # noqa: ANN001, ANN201 - never alarms
        return np.zeros((len(x), 2))


def test_replay_labels_outcomes_with_the_versions_horizon(tmp_path, monkeypatch):
    tracker = SimpleNamespace(champion=lambda name: SimpleNamespace(version="3"), model_uri=lambda name: "models:/x",
                              tracking_uri=None)
    import mlflow.artifacts

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", lambda **kw: str(tmp_path))
    monkeypatch.setattr(mlflow_models, "load_forecaster_dir",
                        lambda path: (_Silent(), {"threshold": 0.5, "horizon_s": 5.0}))
    horizons = []
    real = serving.build_dataset

    def spy(samples: pl.DataFrame, events: pl.DataFrame, horizon_s: float) -> pl.DataFrame:
        horizons.append(horizon_s)
        return real(samples, events, horizon_s)

    monkeypatch.setattr(serving, "build_dataset", spy)
    wh = Warehouse(tmp_path / "w.duckdb")
    out = serving.replay_forecaster(wh, tracker, "kforge-telemetry-oom", 5000, 60.0, 30)
    assert horizons == [5.0]
    # a model that never alarms is right exactly on the rows without an OOM in the next 5 s
    ds = real(*[pl.concat(p) for p in zip(*[serving.simulate(w, 5000, 60.0) for w in serving.WORKLOADS],
                                          strict=True)], 5.0)
    assert out["accuracy"] == (ds["y"] == 0).mean()
