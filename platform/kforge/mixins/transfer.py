"""The unseen-mixin scorer: the structural rule score, re-ranked by a learner that sees only
features that transfer across mixins, by as much as validation on held-out mixins allows.

A query involving a mixin with little or no history (fewer than :data:`MIN_MIXIN_HISTORY`
observations) cannot lean on outcome rates or on the mixin's identity, which is why the history
learner (:class:`~kforge.mixins.model.CompatModel`) ranks such rows worse than the rules. This
scorer starts from the rules and adds a shrunk, centred correction::

    logit(p) = logit(rule_score) + shrink * (residual(x) - mean residual on training rows)

* ``residual``: LightGBM boosted from ``logit(rule_score)`` (``init_score``) on introspected traits,
  set interactions and the node type only (no ``has_<mixin>`` identity, no history), with monotone
  constraints: never more likely to work because a structural risk is present.
* ``shrink`` is chosen on validation data: leave-mixins-out folds *inside* the training rows
  (the rows being evaluated play no part). Each validation mixin gives one AUC gain over the
  rules; a shrink is judged by the one-sided 95% lower confidence bound of the mean gain
  (:func:`choose_shrink`), so the learner is served only where validation shows it is *clearly*
  better on mixins it never saw. ``shrink = 0`` is the fallback, chosen when no bound is positive:
  the rule score itself, bit for bit (a held-out mixin it serves ties the rules exactly, which the
  ``generalizes`` gate counts as "not worse"). The decision never sees an evaluated mixin's rows.
* No recalibration on top: the output stays on the rule score's scale (a per-model Platt step
  moved each evaluation fold's scores differently and cost 0.05-0.07 pooled AUC).

Example::

    ts = TransferScorer.fit(train_frame, feature_columns(train_frame), seed=0)
    ts.predict_proba(test_frame)     # P(success) for rows with an unseen mixin
    ts.served_by                     # "transfer", or "rules" when validation chose the fallback
"""

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from kforge.mixins.baselines import RULES, rule_score
from kforge.mixins.model import _matrix

MIN_MIXIN_HISTORY = 10            # fewer observations of a query's mixin: served by this scorer
SHRINKS = (0.0, 0.1, 0.25, 0.5, 1.0)
INNER_FOLDS = 3
PARAMS = {"n_estimators": 100, "learning_rate": 0.03, "num_leaves": 7, "min_child_samples": 40,
          "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "verbose": -1, "n_jobs": 1}
BOUND_Z = 1.645                   # one-sided 95%: serve the learner only when its gain is this clear
SELECT = "bound"                  # "bound": best lower bound; "mean": best mean gain (session 6)
RISK_COLS = frozenset(c for c, _, _ in RULES)


def _mean_and_bound(deltas: np.ndarray) -> tuple[float, float]:
    """Mean per-mixin AUC gain and its one-sided lower confidence bound (mean - z * standard error)."""
    if len(deltas) == 0:
        return 0.0, 0.0
    mean = float(np.mean(deltas))
    if len(deltas) < 2:
        return mean, 0.0
    return mean, mean - BOUND_Z * float(np.std(deltas, ddof=1)) / float(np.sqrt(len(deltas)))


def choose_shrink(gains: dict[float, np.ndarray], select: str | None = None) -> tuple[float, dict[str, float],
                                                                                     dict[str, float]]:
    """``gains``: shrink -> per-validation-mixin AUC gain over the rules. Returns the chosen shrink
    (0: the fallback), the mean gain and its lower bound per shrink. ``select`` ("bound", the
    default :data:`SELECT`; or "mean") is what must be positive and is maximised."""
    scores, bounds = {}, {}
    for sh, g in gains.items():
        scores[f"{sh:g}"], bounds[f"{sh:g}"] = _mean_and_bound(np.asarray(g, dtype=float))
    crit = bounds if (select or SELECT) == "bound" else scores
    best = max(gains, key=lambda sh: (crit[f"{sh:g}"], -sh))
    return (best if crit[f"{best:g}"] > 0 else 0.0), scores, bounds


def transfer_columns(feature_cols: list[str]) -> list[str]:
    """Model inputs that mean the same for a mixin never observed: no identity, no history."""
    return [c for c in feature_cols if not c.startswith(("has_", "h_", "hb_"))]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")


@dataclass
class TransferScorer:
    cols: list[str]
    booster: Any
    offset: float                     # mean residual on the training rows (the correction is centred)
    shrink: float                     # 0: the rule score itself (the fallback)
    validation: dict[str, float] = field(default_factory=dict)   # shrink -> mean per-mixin AUC gain vs rules
    validation_mixins: int = 0
    validation_bound: dict[str, float] = field(default_factory=dict)  # shrink -> lower bound of that gain
    select: str = "mean"              # how shrink was chosen (bundles before session 7: "mean")

    @property
    def served_by(self) -> str:
        """``"rules"`` when validation chose the fallback (the rule score is served), else ``"transfer"``."""
        return "rules" if self.shrink == 0.0 else "transfer"

    @staticmethod
    def _fit_booster(frame: pl.DataFrame, cols: list[str], seed: int) -> tuple[Any, float]:
        from lightgbm import LGBMClassifier

        y = frame["passed"].cast(pl.Int32).to_numpy()
        mono = [1 if c == "rule_score" else (-1 if c in RISK_COLS else 0) for c in cols]
        X = _matrix(frame, cols)
        b = LGBMClassifier(random_state=seed, monotone_constraints=mono, **PARAMS)
        b.fit(X, y, init_score=_logit(rule_score(frame)))
        return b, float(np.mean(b.predict(X, raw_score=True)))

    @classmethod
    def fit(cls, frame: pl.DataFrame, feature_cols: list[str], seed: int = 0) -> "TransferScorer":
        """Fit on ``frame`` (training rows only); choose ``shrink`` by leave-mixins-out validation
        inside it (:func:`choose_shrink`): the shrink whose per-mixin AUC gain over the rules has
        the best lower confidence bound, or 0 (the rules themselves) when no bound is positive."""
        cols = transfer_columns(feature_cols)
        mixins = sorted({m for ms in frame["mixins"].to_list() for m in ms})
        order = mixins[:]
        random.Random(seed + 7).shuffle(order)
        fold_of = {m: i % INNER_FOLDS for i, m in enumerate(order)}
        mix_lists = frame["mixins"].to_list()
        is_pair = np.array([len(ms) == 2 for ms in mix_lists])
        parts = []
        for k in range(INNER_FOLDS):
            held = {m for m, f in fold_of.items() if f == k}
            has_held = np.array([bool(set(ms) & held) for ms in mix_lists])
            train, test = frame.filter(pl.Series(~has_held)), frame.filter(pl.Series(has_held & is_pair))
            if test.height == 0 or train["passed"].n_unique() < 2:
                continue
            booster, offset = cls._fit_booster(train, cols, seed)
            parts.append(test.select("passed").with_columns(
                rule_logit=pl.Series(_logit(rule_score(test))),
                res=pl.Series(booster.predict(_matrix(test, cols), raw_score=True) - offset),
                held=pl.Series([sorted(set(ms) & held) for ms in test["mixins"].to_list()])))
        booster, offset = cls._fit_booster(frame, cols, seed)
        if not parts:
            return cls(cols, booster, offset, 0.0, select=SELECT)
        val = pl.concat(parts)
        y = val["passed"].cast(pl.Int32).to_numpy()
        z0, res = val["rule_logit"].to_numpy(), val["res"].to_numpy()
        groups = [g["i"].to_numpy() for _, g in val.with_row_index("i").explode("held").group_by("held")]
        gains = {sh: np.array([d for d in (_auc(y[i], z0[i] + sh * res[i]) - _auc(y[i], z0[i]) for i in groups)
                               if d == d]) for sh in SHRINKS}
        shrink, scores, bounds = choose_shrink(gains)
        return cls(cols, booster, offset, shrink, scores, len(groups), bounds, SELECT)

    def explain(self, frame: pl.DataFrame, k: int = 5) -> list[list[tuple[str, float, float]]]:
        """What this scorer's log-odds are made of, per row: the rule score's own log-odds (``rule_score``),
        then the top-``k`` features of the shrunk correction by |contribution| (none for the fallback)."""
        rules = rule_score(frame)
        base = _logit(rules)
        out: list[list[tuple[str, float, float]]] = [[("rule_score", float(r), float(z))] for r, z in zip(rules, base, strict=True)]
        if not self.shrink or frame.height == 0:
            return out
        X = _matrix(frame, self.cols)
        contrib = self.shrink * self.booster.predict(X, pred_contrib=True)[:, :-1]
        for i in range(X.shape[0]):
            top = np.argsort(-np.abs(contrib[i]))[:k]
            out[i] += [(self.cols[j], float(X[i, j]), float(contrib[i, j])) for j in top if contrib[i, j] != 0]
        return out

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """P(success); the fallback (``shrink == 0``) returns the rule score itself, bit for bit."""
        rules = rule_score(frame)
        if not self.shrink or frame.height == 0:
            return rules
        z = _logit(rules) + self.shrink * (self.booster.predict(_matrix(frame, self.cols), raw_score=True) - self.offset)
        return 1 / (1 + np.exp(-z))
