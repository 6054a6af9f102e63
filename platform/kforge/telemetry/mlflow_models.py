"""Saving and loading the telemetry models as MLflow models (run artifacts, then registered).

* OOM forecaster: an MLflow LightGBM model (sklearn API) whose input is the feature frame;
  its alarm threshold is a version tag and a run param.
* Scheduling policy: an MLflow pyfunc over the numpy weights (input: candidate features with a
  ``decision`` column; output: a score per candidate), plus the TorchScript file as an artifact.
"""

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kforge.telemetry.features import FEATURES
from kforge.telemetry.schedsim import N_FEATURES

POLICY_COLUMNS = ["decision"] + [f"f{i}" for i in range(N_FEATURES)]


def log_forecaster(model: Any, example: pd.DataFrame, threshold: float, artifact_path: str = "model") -> None:
    """Inside an active MLflow run: save the LightGBM model and log it as run artifacts."""
    import mlflow
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / artifact_path
        sig = infer_signature(example[FEATURES], model.predict_proba(example[FEATURES])[:, 1])
        mlflow.lightgbm.save_model(model, str(out), signature=sig, input_example=example[FEATURES].head(3),
                                   pip_requirements=["lightgbm==4.7.0", "scikit-learn==1.9.1", "pandas"])
        (out / "threshold.json").write_text(json.dumps({"threshold": threshold, "features": FEATURES}))
        mlflow.log_artifacts(str(out), artifact_path)


def load_forecaster(model_uri: str) -> tuple[Any, float]:
    """(model, threshold) from ``models:/name@alias`` or ``runs:/...``."""
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    model = mlflow.lightgbm.load_model(str(local))
    return model, float(json.loads((local / "threshold.json").read_text())["threshold"])


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


def log_policy(weights_npz: Path, torchscript: Path | None, example: pd.DataFrame, artifact_path: str = "model") -> None:
    import mlflow
    from mlflow.models import infer_signature

    cls = _pyfunc_class()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / artifact_path
        sig = infer_signature(example[POLICY_COLUMNS], np.zeros(len(example)))
        mlflow.pyfunc.save_model(str(out), python_model=cls(), artifacts={"weights": str(weights_npz)},
                                 signature=sig, input_example=example[POLICY_COLUMNS].head(4),
                                 pip_requirements=["numpy", "pandas"], code_paths=None)
        mlflow.log_artifacts(str(out), artifact_path)
    if torchscript is not None:
        mlflow.log_artifact(str(torchscript), "torchscript")


def load_policy(model_uri: str) -> Any:
    """The NumpyPolicy inside a logged policy model."""
    import mlflow

    from kforge.telemetry.policy import NumpyPolicy

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    found = sorted(local.rglob("*.npz"))
    if not found:
        raise FileNotFoundError(f"no policy weights under {model_uri}")
    return NumpyPolicy.load(found[0])


def policy_example(x: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(x, columns=POLICY_COLUMNS[1:])
    df.insert(0, "decision", 0)
    return df
