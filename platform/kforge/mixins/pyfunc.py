"""The MLflow pyfunc flavour of the mixin model: input ``mixins`` (comma-separated) and
``node_type``; output the calibrated probability that the combination works."""

from typing import Any

import mlflow.pyfunc
import pandas as pd


class MixinPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from pathlib import Path

        from kforge.mixins.catalogue import load_catalogue
        from kforge.mixins.release import BUNDLE_FILE
        from kforge.registry.trusted import registry_download, unpickle

        # MLflow has already unpickled this pyfunc from the registry's own directory
        self.predictor = unpickle(Path(context.artifacts["bundle"]), BUNDLE_FILE, registry_download, use_joblib=True)
        self.traits = load_catalogue().traits()

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        queries = [([m.strip() for m in str(row["mixins"]).split(",") if m.strip()], str(row["node_type"]))
                   for _, row in model_input.iterrows()]
        preds = self.predictor.predict(queries, self.traits, explain=False)
        return pd.DataFrame({"probability": [p["probability"] for p in preds]})
