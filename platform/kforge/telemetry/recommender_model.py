"""The OOM recommender as an MLflow pyfunc whose whole state is one JSON file (no pickle).

The recommender learns nothing by itself: on each forecaster alarm it simulates every action on a
fork of the machine and picks the cheapest (:mod:`kforge.telemetry.recommend`). What a version
holds is its config: the look-ahead, the cool-down between actions, and the forecaster it listens
to (registered name, version and alarm threshold). ``data/state.json`` holds that config and the
``MLmodel`` names this module as the loader.

Input: a frame of closed-loop runs, ``workload``, ``seed`` and ``duration_s``. Output: per run the
closed-loop ``cost``, ``oom_kills``, ``alarms`` and actions taken (the forecaster version is loaded
from the registry MLflow points at).

Example::

    model = mlflow.pyfunc.load_model("models:/kforge-telemetry-recommender@champion")
    model.predict(pd.DataFrame({"workload": ["leak"], "seed": [100], "duration_s": [300.0]}))
"""

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from kforge.registry.json_state import STATE_FILE, read_json_state

KIND = "oom_recommender"
PIP_REQUIREMENTS = ["lightgbm==4.7.0", "scikit-learn==1.9.1", "numpy==2.4.0", "pandas==2.3.3", "polars==2.1.0"]
INPUT_COLUMNS = ("workload", "seed", "duration_s")
OUTPUT_COLUMNS = ("cost", "oom_kills", "alarms", "n_nothing", "n_compact", "n_reclaim", "n_kill_largest")

Scorer = Callable[[pd.DataFrame], float]


def make_state(forecaster_name: str, forecaster_version: int, threshold: float, lookahead_s: float,
               cooldown_s: float) -> dict[str, Any]:
    """The JSON state of a recommender version."""
    return {"kind": KIND, "strategy": "recommender", "lookahead_s": float(lookahead_s),
            "cooldown_s": float(cooldown_s),
            "forecaster": {"name": forecaster_name, "version": int(forecaster_version), "threshold": float(threshold)}}


def scorer_of(model: Any) -> Scorer:
    """The forecaster's alarm score of one feature row (a frame with feature names)."""

    def score(x: pd.DataFrame) -> float:
        return float(model.predict_proba(x)[0, 1])

    return score


def run_closed_loop(state: dict[str, Any], scorer: Scorer, rows: Sequence[tuple[str, int, float]],
                    strategy: str | None = None) -> list[dict[str, Any]]:
    """Closed-loop results of ``strategy`` (default: the recommender) on (workload, seed, duration) rows,
    with the state's threshold, look-ahead and cool-down."""
    from kforge.telemetry.recommend import closed_loop

    thr = float(state["forecaster"]["threshold"])
    return [closed_loop(w, int(s), float(d), scorer, thr, strategy or state["strategy"],
                        cooldown_s=float(state["cooldown_s"]), lookahead_s=float(state["lookahead_s"]))
            for w, s, d in rows]


class _StateModel:
    """What ``mlflow.pyfunc.load_model`` wraps."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self._scorer: Scorer | None = None

    def _forecaster(self) -> Scorer:
        if self._scorer is None:
            from kforge.telemetry.mlflow_models import load_forecaster

            f = self.state["forecaster"]
            model, _ = load_forecaster(f"models:/{f['name']}/{f['version']}")
            self._scorer = scorer_of(model)
        return self._scorer

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        rows = [(str(r["workload"]), int(r["seed"]), float(r["duration_s"]))
                for r in model_input.to_dict(orient="records")]
        out = run_closed_loop(self.state, self._forecaster(), rows)
        return pd.DataFrame([{c: float(r[c]) for c in OUTPUT_COLUMNS} for r in out], columns=list(OUTPUT_COLUMNS))


def _load_pyfunc(data_path: str) -> _StateModel:
    """MLflow's loader hook: ``data_path`` is the model's ``data/state.json``."""
    return _StateModel(read_state(Path(data_path)))


def read_state(path: Path) -> dict[str, Any]:
    """The JSON state of a model directory (or of the state file itself)."""
    return read_json_state(path, (KIND,), "OOM recommender")


def save_state_model(state: dict[str, Any], out: Path) -> Path:
    """Write an MLflow pyfunc model directory holding ``state`` as JSON, with a signature and an example."""
    import tempfile

    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    example = pd.DataFrame({"workload": ["leak"], "seed": [100], "duration_s": [300.0]})
    sig = ModelSignature(
        inputs=Schema([ColSpec("string", "workload"), ColSpec("long", "seed"), ColSpec("double", "duration_s")]),
        outputs=Schema([ColSpec("double", c) for c in OUTPUT_COLUMNS]))
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / STATE_FILE
        src.write_text(json.dumps(state, sort_keys=True, indent=1))
        mlflow.pyfunc.save_model(str(out), loader_module=__name__, data_path=str(src),
                                 pip_requirements=PIP_REQUIREMENTS, input_example=example, signature=sig)
    return out
