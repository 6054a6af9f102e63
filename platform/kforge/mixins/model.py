"""The compatibility model: LightGBM + random forest averaged, then calibrated by a logistic stacker
(ensemble logit, the pair's shrunk observed rate, log observation count) fitted on the latest slice
of training rows that both base models did not see; per-prediction feature contributions (TreeSHAP from
LightGBM) for explanations.

Example::

    m = CompatModel.fit(train_frame, feature_cols, seed=0)
    m.predict_proba(test_frame)          # calibrated P(success)
    m.explain(test_frame.head(1), k=5)   # [[(feature, value, contribution), ...]]
"""

import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from kforge.errors import InputError

LGBM_PARAMS = {"n_estimators": 250, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 10,
               "subsample": 0.9, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0, "verbose": -1,
               "n_jobs": 1}
CALIB_MODE = "time"   # calibration slice: the latest training rows ("time") or held-out pairs ("group")
RF_PARAMS = {"n_estimators": 200, "min_samples_leaf": 3, "max_features": "sqrt", "n_jobs": 2}


def _matrix(frame: pl.DataFrame, cols: list[str]) -> np.ndarray:
    """Columns ``cols`` as float64 (NaN for nulls and for columns the frame lacks)."""
    have = set(frame.columns)
    present = [c for c in cols if c in have]
    X = np.full((frame.height, len(cols)), np.nan)
    if present:
        sub = frame.select(present).cast(pl.Float64).to_numpy()
        idx = {c: i for i, c in enumerate(present)}
        for j, c in enumerate(cols):
            if c in idx:
                X[:, j] = sub[:, idx[c]]
    return X


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


@dataclass
class CompatModel:
    feature_cols: list[str]
    lgbm: Any
    rf: Any
    calib: tuple[float, ...]          # stacking weights: logit(ensemble), logit(pair posterior), log1p(n), bias
    fill: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pl.DataFrame, feature_cols: list[str], seed: int = 0, calib_fraction: float = 0.2,
            group_col: str = "combination") -> "CompatModel":
        from lightgbm import LGBMClassifier
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression

        if CALIB_MODE == "time":
            cut = frame["observed_at"].sort()[int(frame.height * (1 - calib_fraction))]
            is_cal = (frame["observed_at"] >= cut).to_numpy()
        else:
            groups = sorted(frame[group_col].unique().to_list())
            rng = random.Random(seed)
            rng.shuffle(groups)
            calib_groups = set(groups[: max(1, int(len(groups) * calib_fraction))])
            is_cal = frame[group_col].is_in(sorted(calib_groups)).to_numpy()
        y = frame["passed"].cast(pl.Int32).to_numpy()
        if len(set(y[~is_cal])) < 2:
            raise InputError("training rows hold only one outcome class; observe more outcomes first")
        X = _matrix(frame, feature_cols)
        fill = {c: float(np.nanmedian(X[:, i])) if np.isfinite(X[:, i]).any() else 0.0
                for i, c in enumerate(feature_cols)}
        lgbm = LGBMClassifier(random_state=seed, **LGBM_PARAMS).fit(X[~is_cal], y[~is_cal])
        rf = RandomForestClassifier(random_state=seed, **RF_PARAMS).fit(_filled(X[~is_cal], feature_cols, fill), y[~is_cal])
        rf.set_params(n_jobs=1)   # single-row serving: a thread pool per call costs more than it saves
        model = cls(feature_cols, lgbm, rf, (1.0, 0.0, 0.0, 0.0), fill,
                    {"lgbm": LGBM_PARAMS, "rf": RF_PARAMS, "calib_fraction": calib_fraction, "calib_mode": CALIB_MODE,
                     "seed": seed})
        if is_cal.sum() >= 20 and len(set(y[is_cal])) == 2:
            Z = model._stack_inputs(X[is_cal])
            lr = LogisticRegression(C=10.0).fit(Z, y[is_cal])
            model.calib = (*(float(c) for c in lr.coef_[0]), float(lr.intercept_[0]))
        return model

    def _stack_inputs(self, X: np.ndarray) -> np.ndarray:
        """Calibration-stage inputs: the ensemble's logit, the pair's shrunk observed rate and how many
        observations back it (so the calibrator learns when to trust history over structure)."""
        raw = self.raw_proba_matrix(X)
        cols = {c: i for i, c in enumerate(self.feature_cols)}
        post = X[:, cols["h_pair_post"]] if "h_pair_post" in cols else np.full(X.shape[0], 0.5)
        n = X[:, cols["h_pair_n"]] if "h_pair_n" in cols else np.zeros(X.shape[0])
        post = np.where(np.isfinite(post), post, 0.5)
        n = np.where(np.isfinite(n), n, 0.0)
        return np.column_stack([_logit(raw), _logit(post), np.log1p(n)])

    def raw_proba_matrix(self, X: np.ndarray) -> np.ndarray:
        p_gb = self.lgbm.predict_proba(X)[:, 1]
        p_rf = self.rf_proba(_filled(X, self.feature_cols, self.fill))
        return (p_gb + p_rf) / 2

    def rf_proba(self, X: np.ndarray) -> np.ndarray:
        """Same as ``rf.predict_proba(X)[:, 1]`` without sklearn's per-tree dispatch (serving latency)."""
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        pos = list(self.rf.classes_).index(1)
        total = np.zeros(X.shape[0])
        for tree in self.rf.estimators_:
            v = tree.tree_.predict(X32)
            v = v[:, 0, :] if v.ndim == 3 else v
            total += v[:, pos] / np.maximum(v.sum(axis=1), 1e-12)
        return total / len(self.rf.estimators_)

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        Z = self._stack_inputs(_matrix(frame, self.feature_cols))
        w = np.asarray(self.calib[:-1])
        return 1 / (1 + np.exp(-(Z @ w + self.calib[-1])))

    def explain(self, frame: pl.DataFrame, k: int = 5) -> list[list[tuple[str, float, float]]]:
        """Top-``k`` features by |contribution| to the boosted model's log-odds, per row."""
        X = _matrix(frame, self.feature_cols)
        contrib = self.lgbm.predict(X, pred_contrib=True)
        out = []
        for i in range(X.shape[0]):
            c = contrib[i, :-1]
            top = np.argsort(-np.abs(c))[:k]
            out.append([(self.feature_cols[j], _num(X[i, j]), float(c[j])) for j in top if c[j] != 0])
        return out

    def importances(self) -> dict[str, float]:
        gain = self.lgbm.booster_.feature_importance(importance_type="gain")
        total = float(gain.sum()) or 1.0
        return {c: float(g) / total for c, g in zip(self.feature_cols, gain, strict=True)}


def _num(v: float) -> float:
    return float("nan") if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _filled(X: np.ndarray, cols: list[str], fill: dict[str, float]) -> np.ndarray:
    X = X.copy()
    for i, c in enumerate(cols):
        col = X[:, i]
        col[~np.isfinite(col)] = fill.get(c, 0.0)
    return X
