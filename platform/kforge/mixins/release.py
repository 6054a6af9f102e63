"""``kforge-mixins`` through the one release path: train on the stored outcomes, score the
challenger, its baselines and the registered champion on the same held-out outcomes, gate,
promote, and invalidate the prediction cache on promotion.

The ``mixin_model`` asset and ``kforge mixins train`` both call :func:`train_and_release` with a
:class:`TrainConfig`::

    run = train_and_release(tracker, warehouse, TrainConfig(seed=0), dagster_run_id=context.run.run_id)
    run.release.decision, run.release.version, run.cache_entries_invalidated
"""

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from kforge.mixins.cache import PredictionCache
from kforge.mixins.catalogue import Catalogue, load_catalogue
from kforge.mixins.evaluate import MIN_TEST_ROWS
from kforge.mixins.leakage import SEPARABILITY_AUC
from kforge.mixins.outcomes import read_outcomes
from kforge.mixins.predictor import MixinPredictor
from kforge.mixins.training import (
    BASELINES,
    GENERALIZES_BASELINE,
    GENERALIZES_METRIC,
    GENERALIZES_OVER,
    TrainResult,
    score_on,
    train,
)
from kforge.mixins.transfer import BOUND_Z, MIN_MIXIN_HISTORY
from kforge.registry import Tracker, data_version
from kforge.registry.gates import (
    BEATS_CHAMPION,
    GENERALIZES,
    NO_FUTURE_FEATURES,
    SPLIT_HOLDS,
    TEST_SIZE,
    ModelSpec,
    beats,
)
from kforge.registry.release import Candidate, ReleaseResult, Scored, release
from kforge.storage import Warehouse

MODEL_NAME = "kforge-mixins"
BUNDLE_FILE = "bundle.joblib"   # its sha256 is recorded on the release run (kforge.registry.trusted)
PIP = ["kforge", "lightgbm==4.7.0", "scikit-learn==1.9.1", "polars==2.1.0", "numpy==2.4.0", "pandas==2.3.3",
       "joblib", "mlflow==3.17.2"]

SPEC = ModelSpec(
    name=MODEL_NAME, family="mixins", asset_key="mixin_model", metric="brier", higher_is_better=False,
    baselines=BASELINES, split="time", split_unit="outcomes", min_test_rows=MIN_TEST_ROWS,
    generalizes_over=GENERALIZES_OVER, generalizes_baseline=GENERALIZES_BASELINE,
    descriptions={
        SPLIT_HOLDS: "Seen-pair split by time (every training outcome before the cut; the gated held-out outcomes "
                     "after it); unseen-pair and unseen-mixin splits share no pair / mixin with training.",
        NO_FUTURE_FEATURES: "No feature changes when labels are flipped (label perturbation at 3 cuts) and no "
                            f"single feature separates the held-out labels (AUC > {SEPARABILITY_AUC}).",
        TEST_SIZE: f"At least {MIN_TEST_ROWS} held-out outcomes in every split (seen pair, unseen pair, unseen mixin).",
        beats("beta_binomial"): "Brier < the Beta-binomial baseline's Brier on the held-out seen-pair outcomes "
                                "and on the unseen-pair outcomes.",
        beats("rules"): "Brier < the structural rule scorer's Brier on the held-out seen-pair outcomes.",
        GENERALIZES: f"Leave mixins out (4 folds; every outcome involving the mixin removed from training): "
                     f"ROC-AUC of what serving answers for a mixin with < {MIN_MIXIN_HISTORY} observations > the "
                     "rule scorer's on every held-out mixin's pairs (per-mixin numbers, pooled figure and the worst "
                     "mixin in the metadata).",
        BEATS_CHAMPION: "Brier < the champion's by more than min_delta (default 0) on the same held-out "
                        "seen-pair outcomes (decides promotion).",
    })


@dataclass(frozen=True)
class TrainConfig:
    """What one training run of ``kforge-mixins`` needs (the asset's and the CLI's options)."""

    seed: int = 0
    min_delta: float = 0.0


@dataclass
class MixinsRun:
    """One training run: the trained model and its evaluation, what the release path decided,
    and how many cached predictions a promotion invalidated."""

    train: TrainResult
    release: ReleaseResult
    cache_entries_invalidated: int
    calibration_plot: Path


def load_bundle(model_dir: Path) -> MixinPredictor:
    """The predictor inside a registered ``kforge-mixins`` model directory (pyfunc + bundle)."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(model_dir)).unwrap_python_model().predictor


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


def _save_model(result: TrainResult, workdir: Path):  # noqa: ANN202 - Candidate.save_model
    def save(model_dir: Path) -> None:
        import joblib
        import mlflow.pyfunc
        import pandas as pd
        from mlflow.models import infer_signature

        from kforge.mixins.pyfunc import MixinPyfunc
        from kforge.registry.trusted import record

        bundle = workdir / BUNDLE_FILE
        joblib.dump(result.predictor, bundle)
        record(bundle, BUNDLE_FILE)   # on the release run: what the serving cache is checked against
        example = pd.DataFrame({"mixins": ["Caching,Retry"], "node_type": ["EFFECT"]})
        mlflow.pyfunc.save_model(str(model_dir), python_model=MixinPyfunc(), artifacts={"bundle": str(bundle)},
                                 pip_requirements=PIP, input_example=example,
                                 signature=infer_signature(example, pd.DataFrame({"probability": [0.5]})))

    return save


def candidate(result: TrainResult, outcomes: pl.DataFrame, cat: Catalogue, config: TrainConfig,
              workdir: Path) -> Candidate:
    """The release-path candidate of one trained model: Brier on the held-out seen-pair outcomes
    (keys: outcome ids), the baselines on those rows, the family's gates, and a champion scorer
    that loads a registered model directory and scores the same rows."""
    model = result.predictor.model
    heldout = result.heldout
    challenger = score_on(result.predictor, heldout)
    importances = dict(sorted(model.importances().items(), key=lambda kv: -kv[1])[:40])
    params = {"seed": config.seed, "n_outcomes": result.n_outcomes, "n_features": len(model.feature_cols),
              "lgbm": json.dumps(model.params["lgbm"], sort_keys=True),
              "rf": json.dumps(model.params["rf"], sort_keys=True),
              "calib_fraction": model.params["calib_fraction"], "beta_strength": result.predictor.strength,
              "trained_until": str(result.predictor.trained_until),
              "history_through_id": result.predictor.history_through_id,
              "catalogue": data_version(cat.traits_frame().select(pl.all().cast(pl.String)))}

    def score_registered(model_dir: Path) -> Scored:
        return score_on(load_bundle(model_dir), heldout)

    groups = result.per_mixin()
    transfer = result.predictor.transfer
    per_mixin = {f"generalizes_{GENERALIZES_METRIC}_{r['mixin']}": r["model_roc_auc"] for r in groups.iter_rows(named=True)}
    per_mixin |= {f"generalizes_rules_{GENERALIZES_METRIC}_{r['mixin']}": r["rules_roc_auc"]
                  for r in groups.iter_rows(named=True)}
    worst = groups.sort("delta_roc_auc").row(0, named=True) if groups.height else None
    fallback = ",".join(result.fallback_mixins()) or "none"   # "say so": mixins the rules served in evaluation
    # settings are params (they make "same data, code and params" = unchanged); what training chose from the data
    # (shrink, validation gains, the fallback mixins) are tags: results, not settings
    derived = {"generalizes_fallback_mixins": fallback}
    if transfer is not None:
        params |= {"transfer_min_mixin_history": MIN_MIXIN_HISTORY, "transfer_select": getattr(transfer, "select", "mean"),
                   "transfer_bound_z": BOUND_Z}
        derived |= {"transfer_shrink": str(transfer.shrink), "transfer_served_by": transfer.served_by,
                    "transfer_validation": json.dumps(transfer.validation, sort_keys=True),
                    "transfer_validation_bound": json.dumps(getattr(transfer, "validation_bound", {}), sort_keys=True)}

    return Candidate(
        replace(SPEC, min_delta=config.min_delta), train_table=outcomes, eval_keys=challenger.keys,
        score=challenger.score, baselines=result.baselines(), checks=list(result.checks), params=params,
        metrics={"n_outcomes": float(result.n_outcomes),
                 **{f"test_{k}": v for k, v in result.headline().items()}, **per_mixin,
                 **({f"generalizes_{GENERALIZES_METRIC}_worst_delta": worst["delta_roc_auc"]} if worst else {})},
        plots=[_calibration_plot(result, workdir)],
        texts={"evaluation/evaluation.csv": result.evaluation.table().write_csv(),
               "evaluation/importances.json": json.dumps(importances, indent=1),
               "evaluation/leakage.txt": result.leakage.describe(),
               "evaluation/generalizes_mixin.csv": groups.write_csv()},
        tags={"history_through_id": str(result.predictor.history_through_id),
              "trained_until": str(result.predictor.trained_until),
              "unseen_mixin_scorer": transfer.served_by if transfer is not None else "learner", **derived},
        save_model=_save_model(result, workdir), score_registered=score_registered)


def train_and_release(tracker: Tracker, wh: Warehouse, config: TrainConfig, *, catalogue: Catalogue | None = None,
                      dagster_run_id: str = "") -> MixinsRun:
    """Train on every stored outcome, release ``kforge-mixins`` and, on promotion, drop the
    prediction cache of older versions. Raises ``ValueError`` when there are too few outcomes."""
    from kforge.monitoring.calls import set_training_reference

    cat = catalogue or load_catalogue(tracker.paths)
    outcomes = read_outcomes(wh)
    result = train(outcomes, cat, seed=config.seed)
    workdir = Path(tempfile.mkdtemp(prefix="kforge-mixins-"))
    cand = candidate(result, outcomes, cat, config, workdir)
    rel = release(tracker, cand, dagster_run_id=dagster_run_id)
    invalidated = 0
    if rel.promoted:
        cache = PredictionCache(tracker.paths)
        try:
            invalidated = cache.invalidate(keep_version=rel.version)
        finally:
            cache.close()
    if rel.decision != "unchanged":
        set_training_reference(wh, "mixins", MODEL_NAME, rel.version, result.reference_inputs())
    return MixinsRun(result, rel, invalidated, cand.plots[0])
