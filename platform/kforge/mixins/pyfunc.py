"""The MLflow pyfunc flavour of the mixin model: input ``mixins`` (comma-separated) and
``node_type``; output the calibrated probability that the combination works."""

from typing import Any

import mlflow.pyfunc
import pandas as pd


class MixinPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        import joblib

        from kforge.mixins.catalogue import load_catalogue

        self.predictor = joblib.load(context.artifacts["bundle"])
        self.traits = load_catalogue().traits()

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        queries = [([m.strip() for m in str(row["mixins"]).split(",") if m.strip()], str(row["node_type"]))
                   for _, row in model_input.iterrows()]
        preds = self.predictor.predict(queries, self.traits, explain=False)
        return pd.DataFrame({"probability": [p["probability"] for p in preds]})
