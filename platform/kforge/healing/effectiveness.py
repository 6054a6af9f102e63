"""P(fix works | error class, strategy, context), learned from fix outcomes.

Features: strategy, error class, exception type and their strategy crosses, one-hot, into a
regularised logistic regression. Evaluated on grouped folds (by program/error, so one error's
outcomes never straddle train and test) against the old constant 0.7 and the per-strategy base
rate of the training folds.

:meth:`FixEffectiveness.to_state` writes the fitted model as JSON (intercept and one weight per
feature, or a constant); :meth:`FixEffectiveness.from_state` predicts from that state alone, which is
what the registered ``kforge-healing-effectiveness`` holds (no pickle).
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from kforge.healing.baselines import CONSTANT_FIX_SUCCESS


def _features(o: dict[str, Any]) -> dict[str, float]:
    s, c, t = str(o["strategy"]), str(o["error_class"]), str(o.get("exc_type", ""))
    return {f"s={s}": 1.0, f"c={c}": 1.0, f"t={t}": 1.0, f"s={s}|c={c}": 1.0, f"s={s}|t={t}": 1.0}


class FixEffectiveness:
    def __init__(self, C: float = 1.0) -> None:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vec = DictVectorizer()
        self.clf = LogisticRegression(C=C, max_iter=1000)
        self.constant: float | None = None
        self.weights: dict[str, float] | None = None
        self.intercept = 0.0

    def fit(self, outcomes: Sequence[dict[str, Any]]) -> "FixEffectiveness":
        y = np.array([bool(o["success"]) for o in outcomes])
        if len(set(y.tolist())) < 2:
            self.constant = float(y.mean()) if len(y) else CONSTANT_FIX_SUCCESS
            return self
        self.clf.fit(self.vec.fit_transform([_features(o) for o in outcomes]), y)
        return self

    def predict(self, outcomes: Sequence[dict[str, Any]]) -> np.ndarray:
        if self.constant is not None:
            return np.full(len(outcomes), self.constant)
        if self.weights is not None:
            w = self.weights
            z = np.array([self.intercept + sum(w.get(f, 0.0) * v for f, v in _features(o).items()) for o in outcomes])
            return 1.0 / (1.0 + np.exp(-z))
        return self.clf.predict_proba(self.vec.transform([_features(o) for o in outcomes]))[:, 1]

    def to_state(self) -> dict[str, Any]:
        """The fitted model as JSON-ready numbers: P(success) = sigmoid(intercept + sum of feature weights)."""
        if self.constant is not None:
            return {"kind": "effectiveness", "constant": self.constant}
        if self.weights is not None:
            return {"kind": "effectiveness", "intercept": self.intercept, "weights": dict(self.weights)}
        names = self.vec.get_feature_names_out().tolist()
        return {"kind": "effectiveness", "intercept": float(self.clf.intercept_[0]),
                "weights": {n: float(w) for n, w in zip(names, self.clf.coef_[0], strict=True) if w}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "FixEffectiveness":
        m = cls()
        if state.get("constant") is not None:
            m.constant = float(state["constant"])
        else:
            m.intercept = float(state["intercept"])
            m.weights = {str(k): float(v) for k, v in state["weights"].items()}
        return m


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import log_loss, roc_auc_score

    p = np.clip(p, 1e-4, 1 - 1e-4)
    out = {"brier": float(np.mean((p - y) ** 2)), "log_loss": float(log_loss(y, p, labels=[0, 1]))}
    # AUC needs both outcomes among the rows (NaN otherwise: there is no ranking to judge); a constant
    # prediction ranks nothing, 0.5
    if len(set(y.tolist())) < 2:
        out["auc"] = float("nan")
    else:
        out["auc"] = float(roc_auc_score(y, p)) if len(set(p.round(6).tolist())) > 1 else 0.5
    return out


def evaluate_effectiveness(outcomes: Sequence[dict[str, Any]], n_folds: int = 5) -> dict[str, dict[str, float]]:
    from sklearn.model_selection import GroupKFold

    rows = list(outcomes)
    y = np.array([float(bool(o["success"])) for o in rows])
    groups = np.array([str(o.get("program") or o["error_id"]) for o in rows])
    n = min(n_folds, len(set(groups.tolist())))
    preds = {k: np.zeros(len(rows)) for k in ("model", "constant_0.7", "strategy_rate")}
    for tr, te in GroupKFold(n_splits=n).split(np.zeros(len(rows)), groups=groups):
        train = [rows[i] for i in tr]
        preds["model"][te] = FixEffectiveness().fit(train).predict([rows[i] for i in te])
        preds["constant_0.7"][te] = CONSTANT_FIX_SUCCESS
        by: dict[str, list[float]] = defaultdict(list)
        for o in train:
            by[str(o["strategy"])].append(float(bool(o["success"])))
        prior = float(np.mean([float(bool(o["success"])) for o in train]))
        preds["strategy_rate"][te] = [float(np.mean(by[str(rows[i]["strategy"])])) if by[str(rows[i]["strategy"])] else prior
                                      for i in te]
    return {k: {**metrics(y, p), "n": float(len(rows)), "success_rate": float(y.mean())} for k, p in preds.items()}
