"""MLflow tracking + registry: standard tags, challenger on register, promotion and rollback (the
gate itself is the release path: test_release.py)."""

from pathlib import Path

import polars as pl
import pytest
from kforge.config import Paths
from kforge.errors import InputError
from kforge.registry import Tracker, data_version


def _log_dummy(tracker: Tracker, score: float) -> str:
    import mlflow

    with tracker.run("unit", "dummy", dagster_run_id="r1", asset_key="dummy_model", data_version="dv") as run:
        mlflow.log_metric("test_auc", score)
        mlflow.log_text("model", "model/MLmodel")
        return run.info.run_id


def test_run_tags_register_promote_and_rollback(kforge_home: Path) -> None:
    tracker = Tracker(Paths.of(kforge_home))
    run1 = _log_dummy(tracker, 0.7)
    tags = tracker.client().get_run(run1).data.tags
    for key in ("dagster_run_id", "asset_key", "data_version", "git_sha"):
        assert tags[key], key
    assert tracker.client().get_experiment_by_name("kforge/unit") is not None

    v1 = tracker.register(run1, "model", "kforge-unit")
    assert int(tracker.client().get_model_version_by_alias("kforge-unit", "challenger").version) == v1
    tracker.promote("kforge-unit", v1, reason="first")
    assert int(tracker.champion("kforge-unit").version) == v1
    v2 = tracker.register(_log_dummy(tracker, 0.6), "model", "kforge-unit")
    assert int(tracker.champion("kforge-unit").version) == v1  # registering never moves the champion
    v3 = tracker.register(_log_dummy(tracker, 0.9), "model", "kforge-unit")
    tracker.promote("kforge-unit", v3, reason="better")
    assert tracker.version_of("kforge-unit", "previous-champion") == v1
    assert tracker.rollback("kforge-unit") == v1
    assert int(tracker.champion("kforge-unit").version) == v1
    tracker.promote("kforge-unit", v2)

    listing = tracker.list_models()
    assert set(listing["version"].to_list()) == {v1, v2, v3}
    assert "champion" in listing.filter(pl.col("version") == v2)["aliases"][0]


def test_promote_and_rollback_errors(kforge_home: Path) -> None:
    tracker = Tracker(Paths.of(kforge_home))
    v1 = tracker.register(_log_dummy(tracker, 0.5), "model", "kforge-unit2")
    with pytest.raises(InputError, match="no version 99"):
        tracker.promote("kforge-unit2", 99)
    with pytest.raises(InputError, match="no previous champion"):
        tracker.rollback("kforge-unit2")
    tracker.promote("kforge-unit2", v1)
    assert int(tracker.champion("kforge-unit2").version) == v1


def test_data_version_is_order_insensitive_and_content_sensitive() -> None:
    a = pl.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    assert data_version(a) == data_version(a.reverse())
    assert data_version(a) != data_version(a.with_columns(pl.col("x") + 1))
    assert data_version(a.head(0)) == "empty"


def test_register_a_logged_model_uri_and_load_it_by_alias(kforge_home: Path) -> None:
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    tracker = Tracker(Paths.of(kforge_home))
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    with tracker.run("unit", "sk") as run:
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"], input_example=X[:2])
    v = tracker.register(run.info.run_id, info.model_uri, "kforge-unit3")
    loaded = mlflow.pyfunc.load_model(tracker.model_uri("kforge-unit3", "challenger"))
    assert list(loaded.predict(X)) == [0, 0, 1, 1]
    assert v == 1


def test_feedback_families_are_registered() -> None:
    from kforge.feedback import schemas

    assert "mixins" in schemas()
