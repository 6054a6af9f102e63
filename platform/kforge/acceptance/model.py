"""The acceptance ensemble: LightGBM + XGBoost on the features, a logistic regression on the
log-scaled features, a linear text model on hashed n-grams, and a logistic stack on out-of-fold predictions (time-ordered folds).

* class imbalance: ``scale_pos_weight`` (GBMs) and ``class_weight="balanced"`` (text). With
  ``group`` (a column naming the repository or project; set when the rows come from two or more),
  the members named in ``balanced_members`` are fit with per-group balanced sample weights
  instead (:func:`group_balanced_weights`): within each group each class weighs half, so
  between-group differences in base rate carry no signal; each group keeps its share of the rows
  (``group_power`` 1; 0 would weigh every group the same, which lost on libbpf held out);
* ``monotone``: features the boosted members may only rise with (known direction, e.g. ``la``);
* calibration: the stacker is a logistic regression fit on out-of-fold base predictions, i.e.
  Platt scaling of the ensemble on rows the base models never saw;
* explanations: XGBoost ``pred_contribs`` (SHAP values of the tree part);
* cold start (``prior``, ``prior_k``): the stacked score is blended with the lines-added prior,
  both as percentiles of their training distributions (the stack's out-of-fold scores; the
  training rows' lines added), with the model's weight = training positives / (positives +
  ``prior_k``), then recalibrated on the out-of-fold rows. With little evidence (a small or new
  set of repositories) the model leans on size, which transfers; with a large history the blend
  is nearly the stack alone;
* cold-start mode (``cold_weight``): rows of a repository the model never trained on (its ``repo`` is not
  among the training rows') are blended with the stack's weight ``min(prior_weight, cold_weight)`` and mapped
  by their own calibrator (fit on the same out-of-fold rows at that weight). A repository's own history
  does not say how far another repository's habits carry; lines added does carry. The default
  (:data:`COLD_START_WEIGHT`) is the cap with the best worst, then second-worst, held-out group over both
  cross-group suites (``bench/acceptance_cold_start.py``). Rows of the training repositories, or without a ``repo``, are scored
  as before, so in-repository figures do not move.

Example::

    m = AcceptanceEnsemble(numeric=[...], categorical=["subsystem"], text="text").fit(train_df, y)
    p = m.predict_proba(test_df)
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

SEED = 7
COLD_START_WEIGHT = 0.55  # the stack's weight cap on an unseen repository (bench/acceptance_cold_start.py: leximin)
REPO = "repo"             # the column naming a row's repository


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass
class Encoder:
    """Numeric matrix + categorical codes (vocabulary from training, unseen -> 0)."""

    numeric: list[str]
    categorical: list[str]
    vocab: dict[str, dict[str, int]] = field(default_factory=dict)

    def fit(self, df: pl.DataFrame, top: int = 100) -> "Encoder":
        for c in self.categorical:
            counts = df[c].cast(pl.String).fill_null("none").value_counts(sort=True).head(top)
            self.vocab[c] = {v: i + 1 for i, v in enumerate(counts[c].to_list())}
        return self

    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def transform(self, df: pl.DataFrame) -> np.ndarray:
        num = df.select([pl.col(c).cast(pl.Float64).fill_null(0.0) for c in self.numeric]).to_numpy()
        cats = [df[c].cast(pl.String).fill_null("none").replace_strict(self.vocab[c], default=0, return_dtype=pl.Int64)
                .to_numpy().astype(np.float64)[:, None] for c in self.categorical]
        return np.hstack([num, *cats]) if cats else num


def text_pipeline() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        HashingVectorizer(ngram_range=(1, 2), n_features=2**18, alternate_sign=False, lowercase=True,
                          token_pattern=r"(?u)\b[\w/.-]{2,}\b"),
        TfidfTransformer(sublinear_tf=True),
        LogisticRegression(C=0.5, class_weight="balanced", max_iter=400, solver="liblinear"),
    )


def _weighted(pipeline: Any, w: np.ndarray | None) -> Any:
    """A pipeline ending in a logistic regression: sample weights replace its balanced class weights."""
    return pipeline if w is None else pipeline.set_params(logisticregression__class_weight=None)


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def linear() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5, class_weight="balanced"))


def lgbm(pos_weight: float, n_estimators: int = 400, monotone: list[int] | None = None) -> Any:
    import lightgbm as lgb

    extra = {"monotone_constraints": monotone} if monotone and any(monotone) else {}
    return lgb.LGBMClassifier(n_estimators=n_estimators, learning_rate=0.03, num_leaves=31, min_child_samples=40,
                              subsample=0.8, subsample_freq=1, colsample_bytree=0.7, reg_lambda=1.0,
                              scale_pos_weight=pos_weight, random_state=SEED, n_jobs=1, verbose=-1, **extra)


def xgb(pos_weight: float, n_estimators: int = 400, monotone: list[int] | None = None) -> Any:
    import xgboost

    extra = {"monotone_constraints": tuple(monotone)} if monotone and any(monotone) else {}
    return xgboost.XGBClassifier(n_estimators=n_estimators, learning_rate=0.04, max_depth=5, min_child_weight=5,
                                 subsample=0.8, colsample_bytree=0.7, reg_lambda=1.0, tree_method="hist",
                                 scale_pos_weight=pos_weight, random_state=SEED, n_jobs=1, eval_metric="logloss",
                                 **extra)


def group_balanced_weights(groups: np.ndarray, y: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Sample weights under which each group (repository, project) weighs ``n_rows ** power`` (0:
    every group the same; 1: its share of the rows) and, within a group, each class half; a group
    with one class only puts its whole weight on that class. Normalised to mean 1."""
    y = np.asarray(y, dtype=np.int64)
    _, idx = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    n = np.bincount(idx).astype(np.float64)
    pos = np.bincount(idx, weights=y.astype(np.float64))
    n_cls = np.where(y == 1, pos[idx], n[idx] - pos[idx])
    classes = np.where((pos > 0) & (pos < n), 2.0, 1.0)[idx]
    w = n[idx] ** power / (classes * n_cls)
    return w / w.mean()


@dataclass
class AcceptanceEnsemble:
    numeric: list[str]
    categorical: list[str]
    text: str | None = "text"
    n_folds: int = 3
    n_estimators: int = 400
    encoder: Encoder | None = None
    base: dict[str, Any] = field(default_factory=dict)
    stacker: Any = None
    threshold: float = 0.5
    oof_auc: dict[str, float] = field(default_factory=dict)
    prior: str | None = None          # column of the size prior (lines added); None: no blend
    prior_k: float = 500.0
    prior_weight: float = 1.0         # the stack's weight in the blend, set by fit
    score_ref: np.ndarray | None = None
    prior_ref: np.ndarray | None = None
    calibrator: Any = None
    group: str | None = None          # column naming the repository/project: per-group balanced weights
    balanced_members: tuple[str, ...] = ("lightgbm", "xgboost", "linear", "text", "encoder")
    group_power: float = 1.0          # a group weighs n_rows ** group_power (1: its share of rows; 0: each the same)
    monotone: tuple[str, ...] = ()    # numeric features the boosted members may only rise with
    text_encoder: str | None = None   # column to embed with the pretrained encoder (a member); None: off
    cold_weight: float | None = None  # the stack's weight cap on rows of unseen repositories (needs ``prior``); None: off
    cold_calibrator: Any = None
    seen_groups: tuple[str, ...] = () # the repositories of the training rows (set by fit)

    def __post_init__(self) -> None:
        if self.n_folds < 1 or self.n_estimators < 1:
            from kforge.errors import InputError

            raise InputError(f"n_folds and n_estimators must be at least 1, got {self.n_folds} and {self.n_estimators}")

    @property
    def base_names(self) -> list[str]:
        return (["lightgbm", "xgboost", "linear"] + (["text"] if self.text else [])
                + (["encoder"] if self.text_encoder else []))

    def _embed(self, df: pl.DataFrame) -> np.ndarray:
        from kforge.text import current_encoder

        assert self.text_encoder is not None
        return current_encoder().embed(df[self.text_encoder].fill_null("").to_list())

    def _fit_bases(self, df: pl.DataFrame, y: np.ndarray) -> dict[str, Any]:
        assert self.encoder is not None
        x = self.encoder.transform(df)
        w = group_balanced_weights(df[self.group].to_numpy(), y, self.group_power) if self.group else None

        def weights(member: str) -> np.ndarray | None:
            return w if member in self.balanced_members else None

        def pw(member: str) -> float:  # the class weighting the per-group weights replace
            return 1.0 if weights(member) is not None else float((len(y) - y.sum()) / max(y.sum(), 1))

        mono = [1 if c in self.monotone else 0 for c in self.encoder.columns()]
        models: dict[str, Any] = {"lightgbm": lgbm(pw("lightgbm"), self.n_estimators, mono),
                                  "xgboost": xgb(pw("xgboost"), self.n_estimators, mono)}
        models["lightgbm"].fit(x, y, sample_weight=weights("lightgbm"))
        models["xgboost"].fit(x, y, sample_weight=weights("xgboost"))
        models["linear"] = _weighted(linear(), weights("linear")).fit(
            _signed_log(x[:, : len(self.numeric)]), y, logisticregression__sample_weight=weights("linear"))
        if self.text:
            models["text"] = _weighted(text_pipeline(), weights("text")).fit(
                df[self.text].fill_null("").to_list(), y, logisticregression__sample_weight=weights("text"))
        if self.text_encoder:
            from kforge.acceptance.text_encoder import encoder_member

            models["encoder"] = _weighted(encoder_member(), weights("encoder")).fit(
                self._embed(df), y, logisticregression__sample_weight=weights("encoder"))
        return models

    def _base_logits(self, models: dict[str, Any], df: pl.DataFrame) -> np.ndarray:
        assert self.encoder is not None
        x = self.encoder.transform(df)
        cols = [_logit(models["lightgbm"].predict_proba(x)[:, 1]), _logit(models["xgboost"].predict_proba(x)[:, 1]),
                _logit(models["linear"].predict_proba(_signed_log(x[:, : len(self.numeric)]))[:, 1])]
        if self.text:
            cols.append(_logit(models["text"].predict_proba(df[self.text].fill_null("").to_list())[:, 1]))
        if self.text_encoder:
            cols.append(_logit(models["encoder"].predict_proba(self._embed(df))[:, 1]))
        return np.column_stack(cols)

    def fit(self, df: pl.DataFrame, y: np.ndarray) -> "AcceptanceEnsemble":
        """``df`` must be sorted by time: folds are contiguous blocks, each predicted by models
        trained only on the blocks before it."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import f1_score, roc_auc_score

        y = np.asarray(y, dtype=np.int64)
        if len(np.unique(y)) < 2:
            from kforge.errors import InputError

            raise InputError(f"training labels have one class only ({int(y.sum())} positives of {len(y)})")
        self.encoder = Encoder(self.numeric, self.categorical).fit(df)
        edges = np.linspace(0, len(y), self.n_folds + 2).astype(int)
        oof_x, oof_y = [], []
        for k in range(1, self.n_folds + 1):
            tr, va = slice(0, edges[k]), slice(edges[k], edges[k + 1])
            if len(np.unique(y[tr])) < 2 or va.stop - va.start == 0:
                continue
            oof_x.append(self._base_logits(self._fit_bases(df[tr], y[tr]), df[va]))
            oof_y.append(y[va])
        if not oof_x:
            from kforge.errors import InputError

            raise InputError(f"no out-of-fold predictions: the first {edges[self.n_folds]} of {len(y)} training rows "
                             "(time order) have one class only; use more data or other split dates")
        ox, oy = np.vstack(oof_x), np.concatenate(oof_y)
        self.oof_auc = {n: float(roc_auc_score(oy, ox[:, i])) for i, n in enumerate(self.base_names)
                        if len(np.unique(oy)) > 1}
        self.stacker = LogisticRegression(C=1.0, max_iter=1000).fit(ox, oy)
        p = self.stacker.predict_proba(ox)[:, 1]
        if self.prior:
            oof_rows = np.concatenate([np.arange(edges[k], edges[k + 1]) for k in range(1, self.n_folds + 1)
                                       if len(np.unique(y[: edges[k]])) > 1 and edges[k + 1] > edges[k]])
            pos = float(y.sum())
            self.prior_weight = pos / (pos + self.prior_k) if self.prior_k > 0 else 1.0
            self.score_ref = np.sort(p)
            self.prior_ref = np.sort(self._prior_values(df))
            prior_oof = self._prior_values(df)[oof_rows]
            self.seen_groups = tuple(sorted(str(g) for g in df[REPO].drop_nulls().unique().to_list())
                                     ) if REPO in df.columns else ()
            if self.cold_weight is not None:
                cb = self.blend_at(p, prior_oof, self.cold_start_weight)
                self.cold_calibrator = LogisticRegression(max_iter=1000).fit(cb[:, None], oy)
            if self.prior_k > 0:
                b = self._blend(p, prior_oof)
                self.calibrator = LogisticRegression(max_iter=1000).fit(b[:, None], oy)
                p = self.calibrator.predict_proba(b[:, None])[:, 1]
        grid = np.quantile(p, np.linspace(0.05, 0.95, 91))
        self.threshold = float(max(grid, key=lambda t: f1_score(oy, p >= t, zero_division=0)))
        self.base = self._fit_bases(df, y)
        return self

    def _prior_values(self, df: pl.DataFrame) -> np.ndarray:
        assert self.prior is not None
        return df[self.prior].cast(pl.Float64).fill_null(0.0).to_numpy()

    def _blend(self, p: np.ndarray, prior: np.ndarray) -> np.ndarray:
        return self.blend_at(p, prior, self.prior_weight)

    def blend_at(self, p: np.ndarray, prior: np.ndarray, w: float) -> np.ndarray:
        """Weighted mean (the stack's weight ``w``) of the stack's and the prior's mid-rank percentiles in their
        training distributions."""
        assert self.score_ref is not None and self.prior_ref is not None

        def pct(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
            return (np.searchsorted(ref, x, "left") + np.searchsorted(ref, x, "right")) / (2 * len(ref))

        return w * pct(self.score_ref, p) + (1 - w) * pct(self.prior_ref, prior)

    def predict_components(self, df: pl.DataFrame) -> dict[str, np.ndarray]:
        z = self._base_logits(self.base, df)
        out = {n: 1 / (1 + np.exp(-z[:, i])) for i, n in enumerate(self.base_names)}
        out["ensemble"] = self.stacker.predict_proba(z)[:, 1]
        stack = out["ensemble"]
        if self.prior and self.calibrator is not None:
            out["stack"] = stack
            b = self._blend(stack, self._prior_values(df))
            out["ensemble"] = self.calibrator.predict_proba(b[:, None])[:, 1]
        cold = self.unseen(df)
        if cold.any():
            out["stack"] = stack
            cb = self.blend_at(stack[cold], self._prior_values(df)[cold], self.cold_start_weight)
            out["ensemble"] = out["ensemble"].copy()
            out["ensemble"][cold] = self.cold_calibrator.predict_proba(cb[:, None])[:, 1]
        return out

    @property
    def cold_start_weight(self) -> float:
        """The stack's weight on rows of a repository the model never trained on."""
        return min(self.prior_weight, self.cold_weight if self.cold_weight is not None else 1.0)

    def unseen(self, df: pl.DataFrame) -> np.ndarray:
        """Which rows the cold-start mode scores: their ``repo`` names a repository none of the training
        rows came from (rows without a ``repo``, or a model without the mode: none)."""
        if self.cold_calibrator is None or not self.seen_groups or REPO not in df.columns:
            return np.zeros(df.height, dtype=bool)
        return (df[REPO].is_not_null() & ~df[REPO].cast(pl.String).is_in(list(self.seen_groups))).to_numpy()

    def predict_proba(self, df: pl.DataFrame) -> np.ndarray:
        return self.predict_components(df)["ensemble"]

    def contributions(self, df: pl.DataFrame) -> tuple[list[str], np.ndarray]:
        """XGBoost ``pred_contribs`` (per-row SHAP values, last column = bias)."""
        import xgboost

        assert self.encoder is not None
        booster = self.base["xgboost"].get_booster()
        contrib = booster.predict(xgboost.DMatrix(self.encoder.transform(df)), pred_contribs=True)
        return self.encoder.columns(), contrib[:, :-1]

    def top_features(self, df: pl.DataFrame, k: int = 3) -> list[str]:
        names, contrib = self.contributions(df)
        order = np.argsort(-np.abs(contrib), axis=1)[:, :k]
        return ["; ".join(f"{names[j]}={contrib[i, j]:+.3f}" for j in row) for i, row in enumerate(order)]
