"""XGBoost (xgboost.dask) and LightGBM (Dask estimators) on a 2-worker LocalCluster, chosen by
config, against the same spec trained in-process: same held-out quality, both beat a baseline."""

import numpy as np
import pytest
from kforge.errors import InputError
from kforge.scale import ClusterConfig, GbmSpec, dask_client, train_gbm
from sklearn.metrics import roc_auc_score


def _data(n: int = 4000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    logit = 1.2 * X[:, 0] - 0.8 * X[:, 1] + 1.5 * X[:, 2] * X[:, 3] + 0.5 * np.sin(3 * X[:, 4])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return X, y


@pytest.fixture(scope="module")
def cluster_client():  # noqa: ANN201
    with dask_client(ClusterConfig.parse("dask", n_workers=2)) as client:
        yield client


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_dask_training_matches_local_on_held_out_rows(kind: str, cluster_client) -> None:  # noqa: ANN001
    X, y = _data()
    Xtr, ytr, Xte, yte = X[:3000], y[:3000], X[3000:], y[3000:]
    spec = GbmSpec(kind=kind, n_estimators=80, learning_rate=0.1, max_depth=4)
    local = train_gbm(Xtr, ytr, spec)
    dist = train_gbm(Xtr, ytr, spec, client=cluster_client)
    assert local.mode == "local" and dist.workers == 2 and dist.partitions >= 2
    auc_local = roc_auc_score(yte, local.predict(Xte))
    auc_dask = roc_auc_score(yte, dist.predict(Xte))
    baseline = roc_auc_score(yte, Xte[:, 0])  # the single strongest raw feature
    assert auc_dask > baseline + 0.03, (auc_dask, baseline)
    assert abs(auc_dask - auc_local) < 0.03, (auc_dask, auc_local)


def test_regression_on_the_cluster(cluster_client) -> None:  # noqa: ANN001
    X, _ = _data(1200)
    target = 2 * X[:, 0] + X[:, 1] ** 2
    model = train_gbm(X[:900], target[:900], GbmSpec(kind="lightgbm", task="regression", n_estimators=60),
                      client=cluster_client)
    pred = model.predict(X[900:])
    mse, mse_mean = np.mean((pred - target[900:]) ** 2), np.mean((target[:900].mean() - target[900:]) ** 2)
    assert mse < 0.5 * mse_mean


@pytest.mark.parametrize(("value", "message"), [
    ("spark", "use 'local', 'dask'"),
    ("http//nohost", "use 'local', 'dask'"),
])
def test_bad_cluster_config_is_rejected(value: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ClusterConfig.parse(value)


def test_config_values_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ClusterConfig.parse("dask://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    with pytest.raises(InputError, match="n_workers"):
        ClusterConfig.parse("dask", n_workers=0)
    monkeypatch.setenv("KFORGE_DASK_WORKERS", "-3")
    with pytest.raises(InputError, match="KFORGE_DASK_WORKERS"):
        ClusterConfig.from_env()
    with pytest.raises(InputError, match="model kind"):
        GbmSpec(kind="catboost")
    with pytest.raises(InputError, match="labels must be 0/1"):
        train_gbm(np.zeros((4, 2)), np.array([0, 1, 2, 1]), GbmSpec())
    with pytest.raises(InputError, match="expected X"):
        train_gbm(np.zeros((4, 2)), np.zeros(3), GbmSpec())


def test_unreachable_scheduler_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        with dask_client(ClusterConfig(mode="dask", address="tcp://127.0.0.1:1", connect_timeout_s=1)):
            pass
