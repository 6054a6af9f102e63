"""Train, evaluate and leakage-check in one call (what the ``mixin_model`` asset and
``kforge mixins train`` run)."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from kforge.mixins.catalogue import Catalogue
from kforge.mixins.dataset import feature_columns, feature_frame
from kforge.mixins.evaluate import Evaluation, evaluate
from kforge.mixins.leakage import LeakageReport, leakage_report
from kforge.mixins.metrics import binary_metrics
from kforge.mixins.predictor import MixinPredictor, conflict_reasons
from kforge.mixins.snapshot import HistorySnapshot

MIN_OUTCOMES = 300


@dataclass
class TrainResult:
    predictor: MixinPredictor
    evaluation: Evaluation
    leakage: LeakageReport
    heldout: pl.DataFrame          # the seen-pair test rows (features), shared with the champion in the gate
    n_outcomes: int
    checks: dict[str, bool]

    def headline(self) -> dict[str, float]:
        m = self.evaluation.flat_metrics()
        return {k: v for k, v in m.items() if k.endswith(("_accuracy", "_roc_auc", "_brier", "_log_loss", "_n"))}

    def reference_inputs(self) -> pl.DataFrame:
        """The model's inputs on its training rows (the drift baseline for monitoring)."""
        frame = self.evaluation.seen_frame
        if frame is None:
            return pl.DataFrame()
        return frame.filter(pl.col("observed_at") < self.predictor.trained_until).select(feature_columns(frame))

    def blocked_by(self) -> list[str]:
        return [name for name, ok in self.checks.items() if not ok]


def train(outcomes: pl.DataFrame, cat: Catalogue, seed: int = 0, extra_features: dict[str, Any] | None = None) -> TrainResult:
    """``extra_features`` (tests only): column -> function(frame) added to every frame, e.g. to
    prove that the leakage check catches a label-derived feature."""
    if outcomes.height < MIN_OUTCOMES:
        raise ValueError(f"only {outcomes.height} outcomes; at least {MIN_OUTCOMES} are needed to train and evaluate")

    def build(o: pl.DataFrame, **kw: Any) -> pl.DataFrame:
        f = feature_frame(o, cat, **kw)
        for name, fn in (extra_features or {}).items():
            f = f.with_columns(pl.Series(name, fn(f)))
        return f

    ev = evaluate(outcomes, cat, seed, build=build)
    frame = ev.seen_frame
    assert frame is not None and ev.seen_model is not None
    cols = feature_columns(frame)
    test_ids = ev.splits["seen_pair"].predictions["outcome_id"]
    heldout = frame.filter(pl.col("outcome_id").is_in(test_ids.to_list()))
    leak = leakage_report(outcomes, build, cols, heldout, seed=seed)
    model = ev.seen_model
    trained_until = heldout["observed_at"].min()
    predictor = MixinPredictor(model, HistorySnapshot.of(outcomes), sorted(cat.mixins), sorted(cat.nodes),
                               ev.strength, conflict_reasons(outcomes), trained_until,
                               int(outcomes["outcome_id"].max()), {})
    s = ev.splits
    checks = {
        "no_label_leakage": leak.passed,
        "split_integrity": all(v for name, sp in s.items() for k, v in sp.checks.items() if k != "test_large_enough"),
        "test_set_size": all(sp.checks.get("test_large_enough", False) for sp in s.values()),
        "beats_baseline": all(s[n].metrics["model"]["brier"] <= s[n].metrics["beta_binomial"]["brier"]
                              for n in ("seen_pair", "unseen_pair")),
    }
    predictor.metrics = ev.flat_metrics()
    return TrainResult(predictor, ev, leak, heldout, outcomes.height, checks)


def score_on(predictor: MixinPredictor, heldout: pl.DataFrame) -> dict[str, float] | None:
    """Metrics of any predictor on the gate rows, or None if it was trained on any of them."""
    if heldout.height == 0 or heldout["observed_at"].min() < predictor.trained_until:
        return None
    y = heldout["passed"].cast(pl.Int32).to_numpy()
    return binary_metrics(y, np.asarray(predictor.model.predict_proba(heldout)))
