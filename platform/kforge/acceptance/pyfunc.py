"""The MLflow pyfunc wrapper of an :class:`AcceptanceEnsemble` (what the registry serves)."""

from typing import Any

import mlflow.pyfunc
import pandas as pd
import polars as pl

from kforge.acceptance.model import AcceptanceEnsemble

PIP_REQUIREMENTS = ["lightgbm==4.7.0", "xgboost-cpu==3.2.0", "scikit-learn==1.9.1", "polars==2.1.0",
                    "numpy==2.4.0", "pandas==2.3.3"]


class AcceptancePyfunc(mlflow.pyfunc.PythonModel):
    """``predict(pandas frame of feature columns)`` -> probability per row."""

    def __init__(self, model: AcceptanceEnsemble, target: str, score_col: str) -> None:
        self.model = model
        self.target = target
        self.score_col = score_col

    def frame(self, model_input: Any) -> pl.DataFrame:
        df = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        cols = [*self.model.numeric, *self.model.categorical,
                *dict.fromkeys(c for c in (self.model.text, self.model.text_encoder) if c)]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            from kforge.errors import InputError

            raise InputError(f"input lacks feature columns: {', '.join(missing)}")
        return df

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        p = self.model.predict_proba(self.frame(model_input))
        return pd.DataFrame({self.score_col: p})
