"""Gradient-boosted trees (XGBoost or LightGBM) trained in-process or on a Dask cluster.

Example::

    spec = GbmSpec(kind="lightgbm", n_estimators=200)
    with dask_client(ClusterConfig.parse("dask")) as client:       # LocalCluster, 2 workers
        model = train_gbm(X_train, y_train, spec, client=client)
    p = model.predict(X_test)                                      # numpy, no cluster needed

On a cluster the data is split into row partitions (``partitions``, default one per worker
thread x 2) and each worker builds histograms on its share (``xgboost.dask`` uses Rabit
allreduce, LightGBM's Dask estimators its socket-based data-parallel learner). The fitted
model is brought back as a plain local model, so scoring and MLflow logging do not change.
"""

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kforge.errors import InputError
from kforge.scale.cluster import ClusterConfig

KINDS = ("xgboost", "lightgbm")
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class GbmSpec:
    kind: str = "lightgbm"
    task: str = "classification"
    n_estimators: int = 200
    learning_rate: float = 0.05
    max_depth: int = 6
    num_leaves: int = 31
    min_child_samples: int = 20
    seed: int = 7
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"model kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.task not in TASKS:
            raise InputError(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        if not 1 <= self.n_estimators <= 100_000:
            raise InputError(f"n_estimators must be 1..100000, got {self.n_estimators}")
        if not 0 < self.learning_rate <= 1:
            raise InputError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if not 1 <= self.max_depth <= 64:
            raise InputError(f"max_depth must be 1..64, got {self.max_depth}")

    def xgb_params(self) -> dict[str, Any]:
        return {"n_estimators": self.n_estimators, "learning_rate": self.learning_rate, "max_depth": self.max_depth,
                "tree_method": "hist", "random_state": self.seed, "n_jobs": 1, **self.extra}

    def lgb_params(self) -> dict[str, Any]:
        return {"n_estimators": self.n_estimators, "learning_rate": self.learning_rate, "max_depth": self.max_depth,
                "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
                "random_state": self.seed, "n_jobs": 1, "verbose": -1, **self.extra}


@dataclass
class GbmModel:
    """A fitted model usable without the cluster: ``predict`` gives P(y=1) or the regression value."""

    kind: str
    task: str
    estimator: Any
    mode: str
    workers: int
    partitions: int
    train_seconds: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.kind == "xgboost":  # a Booster: inplace_predict gives probabilities for binary:logistic
            return np.asarray(self.estimator.inplace_predict(X), dtype=np.float64)
        if self.task == "classification":
            return np.asarray(self.estimator.predict_proba(X)[:, 1], dtype=np.float64)
        return np.asarray(self.estimator.predict(X), dtype=np.float64)


def _check_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise InputError(f"expected X (rows x features) and y (rows), got {X.shape} and {y.shape}")
    if X.shape[0] < 2:
        raise InputError("need at least 2 training rows")
    return X, y


def _local(X: np.ndarray, y: np.ndarray, spec: GbmSpec) -> Any:
    if spec.kind == "xgboost":
        import xgboost as xgb

        cls = xgb.XGBClassifier if spec.task == "classification" else xgb.XGBRegressor
        return cls(**spec.xgb_params()).fit(X, y).get_booster()
    import lightgbm as lgb

    cls = lgb.LGBMClassifier if spec.task == "classification" else lgb.LGBMRegressor
    return cls(**spec.lgb_params()).fit(X, y)


def _on_dask(X: np.ndarray, y: np.ndarray, spec: GbmSpec, client: Any, partitions: int) -> Any:
    import dask.array as da

    rows = math.ceil(X.shape[0] / partitions)
    dX = da.from_array(X, chunks=(rows, X.shape[1]))
    dy = da.from_array(y, chunks=(rows,))
    dX, dy = client.persist([dX, dy])
    if spec.kind == "xgboost":
        from xgboost import dask as dxgb

        cls = dxgb.DaskXGBClassifier if spec.task == "classification" else dxgb.DaskXGBRegressor
        params = {k: v for k, v in spec.xgb_params().items() if k != "n_jobs"}
        model = cls(**params)
        model.client = client
        return model.fit(dX, dy).get_booster()
    import lightgbm as lgb

    cls = lgb.DaskLGBMClassifier if spec.task == "classification" else lgb.DaskLGBMRegressor
    return cls(client=client, **spec.lgb_params()).fit(dX, dy).to_local()


def train_gbm(X: Any, y: Any, spec: GbmSpec, client: Any = None, partitions: int | None = None,
              config: ClusterConfig | None = None) -> GbmModel:
    """Fit ``spec`` on (X, y): in-process when ``client`` is None, else on the client's Dask cluster."""
    X, y = _check_xy(X, y)
    if spec.task == "classification" and set(np.unique(y)) - {0.0, 1.0}:
        raise InputError("classification labels must be 0/1")
    start = time.perf_counter()
    if client is None:
        est = _local(X, y, spec)
        return GbmModel(spec.kind, spec.task, est, "local", 1, 1, time.perf_counter() - start)
    workers = len(client.scheduler_info().get("workers", {}))
    if workers == 0:
        raise InputError("the Dask cluster has no workers")
    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    parts = partitions or max(2, 2 * threads)
    parts = min(parts, X.shape[0] // 2)
    est = _on_dask(X, y, spec, client, parts)
    mode = f"dask:{config.address or 'LocalCluster'}" if config else "dask"
    return GbmModel(spec.kind, spec.task, est, mode, workers, parts, time.perf_counter() - start)
