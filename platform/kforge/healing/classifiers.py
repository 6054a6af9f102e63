"""Text classifiers over the structured fields, calibrated, with an abstention outcome (``UNKNOWN``).

Model kinds (all scikit-learn / LightGBM pipelines over the frame from ``features.frame_of``):

* ``tfidf_lr``  - the named baseline: TF-IDF words of the *raw* text + logistic regression;
* ``linear``    - TF-IDF words + character n-grams of the structured fields + logistic regression;
* ``hashed``    - the same fields through hashed n-grams (fixed memory, no vocabulary) + LR;
* ``gbm``       - LightGBM on TF-IDF words of the structured fields;
* ``embed_lr``, ``embed_knn`` - the pretrained sentence encoder's embedding of the ``embed`` field, with logistic
  regression or a nearest-neighbour vote (:mod:`kforge.healing.embedding`, issue 20).

:func:`fit_calibrated` fits members on grouped out-of-fold predictions first: a temperature per
member (one parameter, so tiny classes cannot over-fit it), the ensemble weights, and the
abstention threshold below which the answer is ``UNKNOWN``: the lowest confidence at which the
out-of-fold answers reach the precision target (``PRECISION_TARGET``, 0.8). Then the members are refitted on all the training rows.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The abstention marker: not a plausible class name (JunoBench has a real root-cause class ``unknown``, issue 16).
UNKNOWN = "<abstain>"
WRONG_COST = 2.0
PRECISION_TARGET = 0.8   # abstain below the confidence where validation answers are right this often


def make_pipeline(kind: str, seed: int = 0) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.pipeline import make_pipeline as mk

    tok = r"(?u)\b[A-Za-z_][A-Za-z0-9_\-]+\b"
    if kind == "tfidf_lr":
        cols = ColumnTransformer([("raw", TfidfVectorizer(token_pattern=tok, max_features=50000, sublinear_tf=True), "raw")])
        return Pipeline([("x", cols), ("clf", LogisticRegression(max_iter=500))])
    if kind == "linear":
        cols = ColumnTransformer([
            ("hw", TfidfVectorizer(token_pattern=tok, ngram_range=(1, 2), sublinear_tf=True), "head"),
            ("hc", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, max_features=30000), "head"),
            ("cw", TfidfVectorizer(token_pattern=tok, sublinear_tf=True, max_features=20000), "context"),
            ("rl", TfidfVectorizer(token_pattern=r"\S+"), "rule"),
        ], transformer_weights={"hw": 1.0, "hc": 1.0, "cw": 0.5, "rl": 1.0})
        return Pipeline([("x", cols), ("clf", _sgd(seed))])
    if kind == "hashed":
        def hv(**kw: Any) -> Any:
            return mk(HashingVectorizer(n_features=2**15, alternate_sign=False, norm=None, **kw),
                      TfidfTransformer(sublinear_tf=True))
        cols = ColumnTransformer([
            ("hw", hv(token_pattern=tok, ngram_range=(1, 2)), "head"),
            ("hc", hv(analyzer="char_wb", ngram_range=(3, 5)), "head"),
            ("cw", hv(token_pattern=tok), "context"),
            ("rl", hv(token_pattern=r"\S+"), "rule"),
        ], transformer_weights={"hw": 1.0, "hc": 1.0, "cw": 0.5, "rl": 1.0})
        return Pipeline([("x", cols), ("clf", _sgd(seed))])
    if kind == "gbm":
        from lightgbm import LGBMClassifier

        cols = ColumnTransformer([
            ("hw", TfidfVectorizer(token_pattern=tok, ngram_range=(1, 2), max_features=1500, min_df=2), "head"),
            ("cw", TfidfVectorizer(token_pattern=tok, max_features=500, min_df=2), "context"),
            ("rl", TfidfVectorizer(token_pattern=r"\S+"), "rule"),
        ])
        gbm = LGBMClassifier(n_estimators=60, learning_rate=0.15, num_leaves=15, min_child_samples=3,
                             colsample_bytree=0.5, subsample=0.8, subsample_freq=1, class_weight="balanced",
                             reg_lambda=1.0, random_state=seed, verbose=-1, n_jobs=1)
        return Pipeline([("x", cols), ("clf", gbm)])
    if kind.startswith("embed_"):
        from kforge.healing.embedding import embed_pipeline

        return embed_pipeline(kind, seed)
    raise ValueError(f"unknown model kind {kind!r}")


def _sgd(seed: int) -> Any:
    """A linear logistic model by SGD: one-vs-rest, fast on many classes and features."""
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(loss="log_loss", alpha=2e-5, max_iter=60, tol=1e-4, class_weight="balanced",
                         random_state=seed, average=True)


def _proba(model: Any, X: Any, classes: list[str]) -> np.ndarray:
    """Probabilities aligned to ``classes`` (classes unseen by the model get 0)."""
    p = model.predict_proba(X)
    out = np.zeros((len(X), len(classes)))
    idx = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(model.classes_):
        out[:, idx[c]] = p[:, j]
    return out


def temper(p: np.ndarray, t: float) -> np.ndarray:
    logp = np.log(np.clip(p, 1e-9, 1.0)) / t
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(p: np.ndarray, y_idx: np.ndarray) -> float:
    best, best_t = math.inf, 1.0
    for t in np.exp(np.linspace(math.log(0.2), math.log(5.0), 41)):
        q = temper(p, float(t))
        nll = -float(np.mean(np.log(np.clip(q[np.arange(len(y_idx)), y_idx], 1e-9, 1.0))))
        if nll < best:
            best, best_t = nll, float(t)
    return best_t


def choose_threshold(conf: np.ndarray, correct: np.ndarray, precision: float = PRECISION_TARGET) -> float:
    """The lowest confidence at which the answers kept (``conf >= t``) are right at least ``precision`` of the
    time, on validation rows; above every confidence (abstain on all) when no threshold reaches it."""
    conf, correct = np.asarray(conf, dtype=float), np.asarray(correct, dtype=bool)
    for t in np.unique(conf):
        keep = conf >= t
        if keep.any() and float(np.mean(correct[keep])) >= precision:
            return float(t)
    return float(conf.max()) + 1e-6 if len(conf) else 1.0


def coverage_precision(conf: np.ndarray, correct: np.ndarray, threshold: float) -> tuple[float, float]:
    """(share of rows answered, accuracy on them) at ``threshold``; precision is NaN when nothing is answered."""
    conf, correct = np.asarray(conf, dtype=float), np.asarray(correct, dtype=bool)
    keep = conf >= threshold
    return (float(np.mean(keep)) if len(conf) else 0.0,
            float(np.mean(correct[keep])) if keep.any() else float("nan"))


@dataclass
class CalibratedEnsemble:
    """Members' tempered probabilities averaged with weights; ``UNKNOWN`` below ``threshold``."""

    classes: list[str]
    members: dict[str, Any] = field(default_factory=dict)
    temperatures: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.0

    def predict_proba(self, X: Any) -> np.ndarray:
        total = np.zeros((len(X), len(self.classes)))
        for name, model in self.members.items():
            total += self.weights[name] * temper(_proba(model, X, self.classes), self.temperatures[name])
        return total / max(sum(self.weights.values()), 1e-9)

    def predict(self, X: Any, abstain: bool = True) -> tuple[list[str], np.ndarray]:
        p = self.predict_proba(X)
        idx, conf = p.argmax(axis=1), p.max(axis=1)
        labels = [self.classes[i] if (not abstain or c >= self.threshold) else UNKNOWN for i, c in zip(idx, conf, strict=True)]
        return labels, conf


def _group_folds(groups: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold

    n = min(n, len(set(groups.tolist())))
    return list(GroupKFold(n_splits=n).split(np.zeros(len(groups)), groups=groups))


def fit_member(kind: str, X: Any, y: np.ndarray, seed: int = 0) -> Any:
    """Fit one member. Many error classes over few rows is what these tables are (a demo corpus
    has more classes than half its rows), so sklearn's "could be a regression problem" hint is
    not a warning for the user here."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
        return make_pipeline(kind, seed).fit(X, y)


def oof_proba(kind: str, X: Any, y: np.ndarray, groups: np.ndarray, classes: list[str], n_folds: int = 3,
              seed: int = 0) -> np.ndarray:
    """Grouped out-of-fold probabilities of one member on the training rows."""
    p = np.full((len(y), len(classes)), 1.0 / len(classes))
    for tr, te in _group_folds(groups, n_folds):
        if len(set(y[tr].tolist())) < 2:
            continue
        m = fit_member(kind, X.iloc[tr], y[tr], seed)
        p[te] = _proba(m, X.iloc[te], classes)
    return p


def fit_calibrated(X: Any, y: np.ndarray, groups: np.ndarray, kinds: tuple[str, ...] = ("linear", "gbm"),
                   n_folds: int = 3, seed: int = 0,
                   precision: float = PRECISION_TARGET) -> tuple[CalibratedEnsemble, dict[str, Any]]:
    """Fit a calibrated ensemble; returns it and its out-of-fold diagnostics (training rows only)."""
    classes = sorted(set(y.tolist()))
    y_idx = np.array([classes.index(v) for v in y])
    ens = CalibratedEnsemble(classes)
    oof: dict[str, np.ndarray] = {}
    for kind in kinds:
        raw = oof_proba(kind, X, y, groups, classes, n_folds, seed)
        ens.temperatures[kind] = fit_temperature(raw, y_idx)
        oof[kind] = temper(raw, ens.temperatures[kind])
    # weights: out-of-fold accuracy of each member (a simple, stable choice)
    acc = {k: float(np.mean(v.argmax(axis=1) == y_idx)) for k, v in oof.items()}
    ens.weights = {k: max(a, 1e-3) for k, a in acc.items()}
    mix = sum(ens.weights[k] * oof[k] for k in kinds) / sum(ens.weights.values())
    conf = mix.max(axis=1)
    ens.threshold = choose_threshold(conf, mix.argmax(axis=1) == y_idx, precision)
    for kind in kinds:
        ens.members[kind] = fit_member(kind, X, y, seed)
    return ens, {"oof_proba": mix, "oof_member_accuracy": acc, "classes": classes}
