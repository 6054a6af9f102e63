"""Scale-out on existing engines: gradient-boosted trees on a Dask cluster chosen by config.

``ClusterConfig.parse("local")`` trains in this process (the default); ``"dask"`` starts a
``distributed.LocalCluster``; ``"tcp://host:8786"`` (or ``"dask://host:8786"``) joins a running
Dask scheduler. The same :func:`train_gbm` call then fits XGBoost (``xgboost.dask``) or LightGBM
(its Dask estimators) and returns a local model that predicts on numpy arrays.
"""

from kforge.scale.cluster import ClusterConfig, dask_client
from kforge.scale.gbm import GbmModel, GbmSpec, train_gbm

__all__ = ["ClusterConfig", "GbmModel", "GbmSpec", "dask_client", "train_gbm"]
