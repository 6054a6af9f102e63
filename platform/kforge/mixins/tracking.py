"""MLflow for the mixins family: log a training run, register ``kforge-mixins``, run the
champion/challenger gate on the shared held-out rows, invalidate the prediction cache on promotion."""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from kforge.mixins.cache import PredictionCache
from kforge.mixins.training import TrainResult, score_on
from kforge.registry import Tracker, data_version
from kforge.registry.aliases import GateDecision

GROUP = "mixins"
MODEL_NAME = "kforge-mixins"
GATE_METRIC = "brier"
PIP = ["kforge", "lightgbm==4.7.0", "scikit-learn==1.9.1", "polars==2.1.0", "numpy==2.4.0", "pandas==2.3.3",
       "joblib", "mlflow==3.17.2"]


@dataclass
class Registered:
    run_id: str
    version: int
    decision: GateDecision
    cache_entries_invalidated: int


def _calibration_plot(result: TrainResult, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kforge.mixins.metrics import calibration_table

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    for name, split in result.evaluation.splits.items():
        p = split.predictions
        tab = calibration_table(p["passed"].cast(pl.Int32).to_numpy(), p["model"].to_numpy())
        ax.plot([r["mean_predicted"] for r in tab], [r["observed_rate"] for r in tab], "o-", label=name)
    ax.set_xlabel("predicted P(success)")
    ax.set_ylabel("observed success rate")
    ax.set_title("mixins: calibration on held-out rows")
    ax.legend()
    fig.tight_layout()
    path = out / "calibration.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _champion_predictor(tracker: Tracker) -> tuple[int | None, Any]:
    champ = tracker.champion(MODEL_NAME)
    if champ is None:
        return None, None
    from kforge.mixins.service import load_predictor

    return int(champ.version), load_predictor(tracker, int(champ.version))


def log_and_gate(tracker: Tracker, result: TrainResult, outcomes: pl.DataFrame, *, dagster_run_id: str = "",
                 asset_key: str = "mixin_model", min_delta: float = 0.0) -> tuple[Registered, Path]:
    """Log, register a challenger, gate it against the champion on the same held-out rows."""
    import joblib
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from kforge.mixins.pyfunc import MixinPyfunc

    workdir = Path(tempfile.mkdtemp(prefix="kforge-mixins-"))
    version_tag = data_version(outcomes.select("outcome_id", "combination", "node_type", "passed"))
    with tracker.run(GROUP, "mixin_model", dagster_run_id=dagster_run_id, asset_key=asset_key,
                     data_version=version_tag) as run:
        model = result.predictor.model
        mlflow.log_params({"n_outcomes": result.n_outcomes, "n_features": len(model.feature_cols),
                           "lgbm": json.dumps(model.params["lgbm"]), "rf": json.dumps(model.params["rf"]),
                           "calib_fraction": model.params["calib_fraction"], "beta_strength": result.predictor.strength,
                           "trained_until": str(result.predictor.trained_until),
                           "history_through_id": result.predictor.history_through_id})
        metrics = {f"test_{k}": v for k, v in result.headline().items() if v == v}
        mlflow.log_metrics(metrics)
        mlflow.set_tags({f"check_{k}": str(v) for k, v in result.checks.items()} | {"leakage": result.leakage.describe()})
        result.evaluation.table().write_csv(workdir / "evaluation.csv")
        (workdir / "importances.json").write_text(json.dumps(
            dict(sorted(model.importances().items(), key=lambda kv: -kv[1])[:40]), indent=1))
        plot = _calibration_plot(result, workdir)
        for f in ("evaluation.csv", "importances.json", "calibration.png"):
            mlflow.log_artifact(str(workdir / f), "evaluation")
        bundle = workdir / "bundle.joblib"
        joblib.dump(result.predictor, bundle)
        mlflow.log_artifact(str(bundle), "bundle")
        example = pd.DataFrame({"mixins": ["Caching,Retry"], "node_type": ["EFFECT"]})
        mlflow.pyfunc.save_model(str(workdir / "model"), python_model=MixinPyfunc(), artifacts={"bundle": str(bundle)},
                                 pip_requirements=PIP, input_example=example,
                                 signature=infer_signature(example, pd.DataFrame({"probability": [0.5]})))
        mlflow.log_artifacts(str(workdir / "model"), "model")
        run_id = run.info.run_id
    version = tracker.register(run_id, "model", MODEL_NAME, tags={
        "history_through_id": str(result.predictor.history_through_id),
        "trained_until": str(result.predictor.trained_until)})
    challenger = score_on(result.predictor, result.heldout)
    assert challenger is not None
    champ_version, champ = _champion_predictor(tracker)
    champ_score = None
    if champ is not None:
        scored = score_on(champ, result.heldout)
        champ_score = None if scored is None else scored[GATE_METRIC]
    decision = tracker.gate(MODEL_NAME, version, metric=GATE_METRIC, challenger_score=challenger[GATE_METRIC],
                            champion_score=champ_score, higher_is_better=False, min_delta=min_delta,
                            blocked_by=result.blocked_by())
    invalidated = 0
    if decision.promoted:
        cache = PredictionCache(tracker.paths)
        invalidated = cache.invalidate(keep_version=version)
        cache.close()
    return Registered(run_id, version, decision, invalidated), plot
