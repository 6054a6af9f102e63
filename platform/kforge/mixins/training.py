"""Train, evaluate and leakage-check in one call; the evaluation gates in the release path's
vocabulary (``split_holds``, ``no_future_features``, ``test_size``, ``beats_beta_binomial``,
``generalizes``: ROC-AUC at least the rule scorer's on every held-out mixin, a mixin served by the
rule score itself counting as a tie).
:func:`kforge.mixins.release.train_and_release` runs it for the ``mixin_model`` asset and
``kforge mixins train``."""

from dataclasses import dataclass
from typing import Any

import polars as pl

from kforge.errors import InputError
from kforge.mixins.catalogue import Catalogue
from kforge.mixins.dataset import feature_columns, feature_frame
from kforge.mixins.evaluate import MIN_TEST_ROWS, Evaluation, evaluate, served_proba
from kforge.mixins.leakage import LeakageReport, leakage_report
from kforge.mixins.metrics import binary_metrics
from kforge.mixins.predictor import MixinPredictor, conflict_reasons
from kforge.mixins.snapshot import HistorySnapshot
from kforge.registry.gates import (
    NO_FUTURE_FEATURES,
    SPLIT_HOLDS,
    TEST_SIZE,
    Check,
    ModelSpec,
    beats,
    generalizes_check,
)
from kforge.registry.release import Scored

MIN_OUTCOMES = 300
GATE_SPLIT = "seen_pair"          # the held-out rows the release path scores challenger and champion on
BASELINES = ("beta_binomial", "rules")
GENERALIZES_OVER, GENERALIZES_BASELINE, GENERALIZES_METRIC = "mixin", "rules", "roc_auc"
# the ``generalizes`` gate compares ROC-AUC (higher is better), not the release metric (Brier)
_AUC = ModelSpec(name="kforge-mixins", family="mixins", asset_key="mixin_model", metric=GENERALIZES_METRIC,
                 generalizes_over=GENERALIZES_OVER, generalizes_baseline=GENERALIZES_BASELINE)


@dataclass
class TrainResult:
    predictor: MixinPredictor
    evaluation: Evaluation
    leakage: LeakageReport
    heldout: pl.DataFrame          # the seen-pair test rows (features), shared with the champion in the gate
    n_outcomes: int
    checks: list[Check]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def eval_keys(self) -> list[str]:
        """The held-out rows' keys: their outcome ids."""
        return [str(i) for i in self.heldout["outcome_id"].to_list()]

    def baselines(self) -> dict[str, float]:
        """Each baseline's Brier on the held-out rows (the seen-pair split's test rows)."""
        m = self.evaluation.splits[GATE_SPLIT].metrics
        return {b: float(m[b]["brier"]) for b in BASELINES}

    def headline(self) -> dict[str, float]:
        m = self.evaluation.flat_metrics()
        return {k: v for k, v in m.items() if k.endswith(("_accuracy", "_roc_auc", "_brier", "_log_loss", "_n"))}

    def reference_inputs(self) -> pl.DataFrame:
        """The model's inputs on its training rows (the drift baseline for monitoring)."""
        frame = self.evaluation.seen_frame
        if frame is None:
            return pl.DataFrame()
        return frame.filter(pl.col("observed_at") < self.predictor.trained_until).select(feature_columns(frame))

    def per_mixin(self) -> pl.DataFrame:
        """Per held-out mixin: rows, served scorer, model / learner / rules ROC-AUC and Brier."""
        groups = self.evaluation.splits["unseen_mixin"].groups
        return groups if groups is not None else pl.DataFrame()

    def fallback_mixins(self) -> list[str]:
        """Held-out mixins whose unseen-mixin rows were served by the rule score itself (the transfer
        scorer's fallback, chosen without their outcomes): ties with the rules, by construction."""
        return fallback_mixins(self.per_mixin())

    def blocked_by(self) -> list[str]:
        return [c.name for c in self.checks if c.passed is not True]


def train(outcomes: pl.DataFrame, cat: Catalogue, seed: int = 0, extra_features: dict[str, Any] | None = None) -> TrainResult:
    """``extra_features`` (tests only): column -> function(frame) added to every frame, e.g. to
    prove that the leakage check catches a label-derived feature."""
    if outcomes.height < MIN_OUTCOMES:
        raise InputError(f"only {outcomes.height} outcomes; at least {MIN_OUTCOMES} are needed to train and evaluate")

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
    transfer = ev.seen_transfer       # fitted on the learner's training rows: none of the held-out rows
    predictor = MixinPredictor(model, HistorySnapshot.of(outcomes), sorted(cat.mixins), sorted(cat.nodes),
                               ev.strength, conflict_reasons(outcomes), trained_until,
                               int(outcomes["outcome_id"].max()), {}, transfer)
    checks = gate_checks(ev, leak, heldout)
    predictor.metrics = ev.flat_metrics()
    return TrainResult(predictor, ev, leak, heldout, outcomes.height, checks)


def fallback_mixins(groups: pl.DataFrame | None) -> list[str]:
    if groups is None or groups.height == 0:
        return []
    return sorted(groups.filter(pl.col("served_by") == "rules")["mixin"].to_list())


def gate_checks(ev: Evaluation, leak: LeakageReport, heldout: pl.DataFrame) -> list[Check]:
    """The family's evaluation gates (``beats_rules`` is computed by the release path from
    :meth:`TrainResult.baselines`)."""
    s = ev.splits
    same_rows = sorted(s[GATE_SPLIT].predictions["outcome_id"].to_list()) == sorted(heldout["outcome_id"].to_list())
    split_checks = {f"{name}.{k}": v for name, sp in s.items() for k, v in sp.checks.items() if k != "test_large_enough"}
    split_ok = all(split_checks.values()) and same_rows
    failed = [k for k, v in split_checks.items() if not v] + ([] if same_rows else ["gate rows != seen-pair test rows"])
    sizes = {name: sp.n_test for name, sp in s.items()}
    size_ok = all(sp.checks.get("test_large_enough", False) for sp in s.values())
    pairs = {n: (s[n].metrics["model"]["brier"], s[n].metrics["beta_binomial"]["brier"]) for n in (GATE_SPLIT, "unseen_pair")}
    beats_beta = all(model < base for model, base in pairs.values())
    groups = s["unseen_mixin"].groups
    per_group = {} if groups is None else {
        r["mixin"]: (r["model_roc_auc"], r["rules_roc_auc"]) for r in groups.iter_rows(named=True)
        if r["model_roc_auc"] == r["model_roc_auc"] and r["rules_roc_auc"] == r["rules_roc_auc"]}
    # target: at least the rule scorer; a mixin served by the rules themselves (the fallback) ties
    gen = generalizes_check(_AUC, per_group, ties_pass=True)
    pooled = s["unseen_mixin"].metrics
    fallback = fallback_mixins(groups)
    said = (f"; served by the rule scorer (fallback, a tie): {', '.join(fallback)}" if fallback
            else "; no mixin served by the fallback")
    gen = Check(gen.name, gen.passed, gen.detail + said + (f"; pooled unseen-mixin ROC-AUC "
                                                          f"{pooled['model']['roc_auc']:.4f} "
                                                          f"vs rules {pooled['rules']['roc_auc']:.4f}"),
                {**gen.numbers, "pooled_model": round(pooled["model"]["roc_auc"], 4),
                 "pooled_rules": round(pooled["rules"]["roc_auc"], 4), "fallback_groups": float(len(fallback))})
    return [
        Check(SPLIT_HOLDS, split_ok, "all split checks hold: " + ", ".join(split_checks) if split_ok
              else "failed: " + ", ".join(failed), {"splits": float(len(s))}),
        Check(NO_FUTURE_FEATURES, leak.passed, leak.describe(),
              {"cuts": float(leak.cuts_tested), "perturbed_columns": float(len(leak.perturbed)),
               "separable_columns": float(len(leak.separable))}),
        Check(TEST_SIZE, size_ok, "held-out outcomes per split: " + ", ".join(f"{n} {k}" for n, k in sizes.items())
              + f" (minimum {MIN_TEST_ROWS} each)", {**{f"{n}_rows": float(k) for n, k in sizes.items()},
                                                    "minimum": float(MIN_TEST_ROWS)}),
        Check(beats("beta_binomial"), beats_beta, "; ".join(f"{n}: Brier {m:.4f} vs beta_binomial {b:.4f}"
                                                             for n, (m, b) in pairs.items()),
              {**{f"{n}_model": round(m, 4) for n, (m, _) in pairs.items()},
               **{f"{n}_beta_binomial": round(b, 4) for n, (_, b) in pairs.items()}}),
        gen,
    ]


def score_on(predictor: MixinPredictor, heldout: pl.DataFrame) -> Scored:
    """Brier of any predictor on the held-out rows, with the outcome ids it scored. Raises when the
    predictor was trained on any of them (the release path records that as why it was not compared)."""
    if heldout.height == 0:
        raise ValueError("no held-out rows to score")
    if heldout["observed_at"].min() < predictor.trained_until:  # type: ignore[operator]
        raise ValueError(f"the model was trained on outcomes up to {predictor.trained_until}, "
                         f"after the first held-out outcome ({heldout['observed_at'].min()})")
    y = heldout["passed"].cast(pl.Int32).to_numpy()
    m = binary_metrics(y, served_proba(predictor.model, getattr(predictor, "transfer", None), heldout))
    return Scored(float(m["brier"]), [str(i) for i in heldout["outcome_id"].to_list()])
