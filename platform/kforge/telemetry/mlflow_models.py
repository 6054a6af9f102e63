"""Saving and loading the telemetry models as MLflow models (run artifacts, then registered).

* OOM forecaster: an MLflow LightGBM model (sklearn API) whose input is the feature frame;
  its alarm threshold, feature list and seeds are in ``threshold.json`` in the model directory.
* Scheduling policy: an MLflow pyfunc over the numpy weights (input: candidate features with a
  ``decision`` column; output: a score per candidate), plus the TorchScript file as a run artifact.
* Recommender: see :mod:`kforge.telemetry.recommender_model` (a JSON-state pyfunc).
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kforge.telemetry.features import FEATURES
from kforge.telemetry.schedsim import N_FEATURES

POLICY_COLUMNS = ["decision"] + [f"f{i}" for i in range(N_FEATURES)]


FORECASTER_PIP = ["lightgbm==4.7.0", "scikit-learn==1.9.1", "pandas==2.3.3"]
META_FILE = "threshold.json"


def save_forecaster(model: Any, example: pd.DataFrame, meta: dict[str, Any], out: Path) -> Path:
    """Write an MLflow LightGBM model directory; ``meta`` (threshold, features, seeds) goes to
    ``threshold.json`` next to it."""
    import mlflow.lightgbm
    from mlflow.models import infer_signature

    feats = list(meta.get("features", FEATURES))
    sig = infer_signature(example[feats], model.predict_proba(example[feats])[:, 1])
    mlflow.lightgbm.save_model(model, str(out), signature=sig, input_example=example[feats].head(3),
                               pip_requirements=FORECASTER_PIP)
    (out / META_FILE).write_text(json.dumps({"features": feats, **meta}, sort_keys=True))
    return out


def load_forecaster_dir(path: Path) -> tuple[Any, dict[str, Any]]:
    """(model, meta) from a forecaster model directory; ``meta`` has at least threshold and features."""
    import mlflow.lightgbm

    meta = json.loads((path / META_FILE).read_text())
    meta.setdefault("features", FEATURES)
    return mlflow.lightgbm.load_model(str(path)), meta


def load_forecaster_meta(model_uri: str, tracking_uri: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(model, meta) from ``models:/name@alias``, ``models:/name/version`` or ``runs:/...`` (meta: the
    threshold, features, horizon and seeds the version was trained with)."""
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, tracking_uri=tracking_uri))
    return load_forecaster_dir(local)


def load_forecaster(model_uri: str, tracking_uri: str | None = None) -> tuple[Any, float]:
    """(model, threshold) from ``models:/name@alias``, ``models:/name/version`` or ``runs:/...``."""
    model, meta = load_forecaster_meta(model_uri, tracking_uri)
    return model, float(meta["threshold"])


def _pyfunc_class() -> type:
    """Built lazily: importing mlflow.pyfunc costs seconds."""
    import mlflow.pyfunc

    class SchedulerPolicyModel(mlflow.pyfunc.PythonModel):
        """Scores each candidate task of each decision; higher = run next."""

        def load_context(self, context: Any) -> None:
            from kforge.telemetry.policy import NumpyPolicy

            self.policy = NumpyPolicy.load(Path(context.artifacts["weights"]))

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
            x = model_input[POLICY_COLUMNS[1:]].to_numpy(dtype=np.float32)
            out = np.empty(len(x), dtype=np.float64)
            dec = model_input["decision"].to_numpy()
            for d in np.unique(dec):
                m = dec == d
                out[m] = self.policy.scores(x[m])
            return out

    return SchedulerPolicyModel


def save_policy(weights_npz: Path, example: pd.DataFrame, out: Path) -> Path:
    """Write an MLflow pyfunc model directory over the numpy weights (``artifacts/*.npz``)."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    cls = _pyfunc_class()
    sig = infer_signature(example[POLICY_COLUMNS], np.zeros(len(example)))
    mlflow.pyfunc.save_model(str(out), python_model=cls(), artifacts={"weights": str(weights_npz)},
                             signature=sig, input_example=example[POLICY_COLUMNS].head(4),
                             pip_requirements=["numpy==2.4.0", "pandas==2.3.3"])
    return out


def load_policy_dir(path: Path) -> Any:
    """The NumpyPolicy inside a policy model directory."""
    from kforge.telemetry.policy import NumpyPolicy

    found = sorted(path.rglob("*.npz"))
    if not found:
        raise FileNotFoundError(f"no policy weights under {path}")
    return NumpyPolicy.load(found[0])


def load_policy(model_uri: str, tracking_uri: str | None = None) -> Any:
    """The NumpyPolicy inside a logged policy model."""
    import mlflow

    return load_policy_dir(Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, tracking_uri=tracking_uri)))


def policy_example(x: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(x, columns=POLICY_COLUMNS[1:])
    df.insert(0, "decision", 0)
    return df
