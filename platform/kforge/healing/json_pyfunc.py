"""MLflow pyfunc models whose whole state is one JSON file (no pickle): the strategy bandit
(``kforge-healing-bandit``) and the fix-effectiveness model (``kforge-healing-effectiveness``).

The model directory holds ``data/state.json`` and an ``MLmodel`` naming this module as the loader
(``loader_module``); loading reads the JSON and rebuilds the model from counts or weights.

Input (both): a frame with ``error_class``, ``strategy`` and ``exc_type``. Output: the bandit's
posterior mean success (``posterior_mean``) or the effectiveness model's ``p_fix_works``.

Example::

    model = mlflow.pyfunc.load_model("models:/kforge-healing-bandit@champion")
    model.predict(pd.DataFrame({"error_class": ["py-keyerror"], "strategy": ["dict-get-default"],
                                "exc_type": ["KeyError"]}))
"""

import json
from pathlib import Path
from typing import Any

import pandas as pd
from kforge.registry.json_state import STATE_FILE, read_json_state

PIP_REQUIREMENTS = ["scikit-learn==1.9.1", "numpy==2.4.0", "pandas==2.3.3"]
INPUT_COLUMNS = ("error_class", "strategy", "exc_type")


class _StateModel:
    """What ``mlflow.pyfunc.load_model`` wraps: predict() over the input frame."""

    def __init__(self, state: dict[str, Any]) -> None:
        from kforge.healing.bandit import ThompsonBandit
        from kforge.healing.effectiveness import FixEffectiveness

        self.state = state
        self.kind = state["kind"]
        self.bandit = ThompsonBandit.from_state(state) if self.kind == "bandit" else None
        self.effectiveness = FixEffectiveness.from_state(state) if self.kind == "effectiveness" else None

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        rows = [{c: str(r.get(c) or "") for c in INPUT_COLUMNS} for r in model_input.to_dict(orient="records")]
        if self.bandit is not None:
            return pd.DataFrame({"posterior_mean": [self.bandit.mean(r["error_class"], r["strategy"]) for r in rows]})
        assert self.effectiveness is not None
        return pd.DataFrame({"p_fix_works": self.effectiveness.predict(rows).astype(float)})


def _load_pyfunc(data_path: str) -> _StateModel:
    """MLflow's loader hook: ``data_path`` is the model's ``data/state.json``."""
    return _StateModel(read_state(Path(data_path)))


def read_state(path: Path) -> dict[str, Any]:
    """The JSON state of a model directory (or of the state file itself)."""
    return read_json_state(path, ("bandit", "effectiveness"), "healing strategy model")


def save_state_model(state: dict[str, Any], out: Path) -> Path:
    """Write an MLflow pyfunc model directory holding ``state`` as JSON, with a signature and an example."""
    import tempfile

    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import infer_signature

    example = pd.DataFrame({"error_class": ["py-keyerror", "py-nameerror"],
                            "strategy": ["dict-get-default", "define-name"], "exc_type": ["KeyError", "NameError"]})
    output = _StateModel(state).predict(example)
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / STATE_FILE
        src.write_text(json.dumps(state, sort_keys=True, indent=1))
        mlflow.pyfunc.save_model(str(out), loader_module=__name__, data_path=str(src),
                                 pip_requirements=PIP_REQUIREMENTS, input_example=example,
                                 signature=infer_signature(example, output))
    return out
