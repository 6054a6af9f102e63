"""Evaluation in one run: the model, the Beta-binomial baseline and the structural rule scorer on
the same held-out rows of three splits.

* ``seen_pair``: by time. Train on observations before the cut (70% of the timeline), test on
  later observations of (combination, node type) keys already seen before the cut.
* ``unseen_pair``: by pair. 25% of mixin pairs are held out entirely (every node type, every set
  containing them is dropped from training); their history is invisible (weight 0).
* ``unseen_mixin``: by mixin, 4 folds. Test rows contain a mixin whose every observation was
  removed from training: only introspected traits describe it. ``model`` is what serving answers
  for such a row (:func:`served_proba`: the :class:`~kforge.mixins.transfer.TransferScorer`, or
  the rule score when its validation chose the fallback); ``learner`` is the history learner
  alone. The pooled metrics count each pair once (in the fold of its first held-out mixin);
  :attr:`SplitResult.groups` has one row per held-out mixin: every pair containing it, scored
  by the fold that never saw it (the ``generalizes`` gate's groups).
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from kforge.mixins.baselines import beta_binomial, fit_strength, rule_score
from kforge.mixins.catalogue import Catalogue
from kforge.mixins.dataset import feature_columns, feature_frame
from kforge.mixins.metrics import binary_metrics
from kforge.mixins.model import CompatModel
from kforge.mixins.transfer import MIN_MIXIN_HISTORY, TransferScorer

MIN_TEST_ROWS = 200
MASK_FRACTION = 0.3


@dataclass
class SplitResult:
    name: str
    metrics: dict[str, dict[str, float]]           # scorer -> metrics
    n_train: int
    n_test: int
    predictions: pl.DataFrame                       # outcome_id, passed, model, beta, rules
    checks: dict[str, bool] = field(default_factory=dict)
    groups: pl.DataFrame | None = None              # unseen_mixin: per held-out mixin (see module doc)


@dataclass
class Evaluation:
    splits: dict[str, SplitResult]
    seen_model: CompatModel | None
    seen_frame: pl.DataFrame | None
    strength: float
    seen_transfer: TransferScorer | None = None

    def flat_metrics(self) -> dict[str, float]:
        out = {}
        for s in self.splits.values():
            for scorer, m in s.metrics.items():
                for k, v in m.items():
                    out[f"{s.name}_{scorer}_{k}"] = v
        return out

    def table(self) -> pl.DataFrame:
        rows = [{"split": s.name, "scorer": scorer, **{k: m[k] for k in ("n", "accuracy", "roc_auc", "brier", "log_loss")}}
                for s in self.splits.values() for scorer, m in s.metrics.items()]
        return pl.DataFrame(rows)


def needs_transfer(frame: pl.DataFrame) -> np.ndarray:
    """Rows with a mixin observed fewer than ``MIN_MIXIN_HISTORY`` times before the prediction point."""
    return (frame["h_mixin_min_n"].fill_null(0) < MIN_MIXIN_HISTORY).to_numpy()


def served_proba(model: CompatModel, transfer: TransferScorer | None, frame: pl.DataFrame) -> np.ndarray:
    """What serving answers: the history learner, except for rows with a little-known mixin, which
    get the transfer scorer (when there is one)."""
    p = np.asarray(model.predict_proba(frame), dtype=float)
    if transfer is None or frame.height == 0:
        return p
    cold = needs_transfer(frame)
    if cold.any():
        p = p.copy()
        p[cold] = transfer.predict_proba(frame.filter(pl.Series(cold)))
    return p


def _score(name: str, train: pl.DataFrame, test: pl.DataFrame, cols: list[str], seed: int,
           checks: dict[str, bool]) -> tuple[SplitResult, CompatModel, TransferScorer]:
    model = CompatModel.fit(train, cols, seed=seed)
    transfer = TransferScorer.fit(train, cols, seed=seed)
    k = fit_strength(train)
    y = test["passed"].cast(pl.Int32).to_numpy()
    preds = {"model": served_proba(model, transfer, test), "learner": model.predict_proba(test),
             "beta_binomial": beta_binomial(test, k), "rules": rule_score(test)}
    metrics = {s: binary_metrics(y, p) for s, p in preds.items()}
    frame = test.select("outcome_id", "combination", "mixins", "node_type", "passed").with_columns(
        **{s: pl.Series(p) for s, p in preds.items()})
    frame = frame.with_columns(cold=pl.Series(needs_transfer(test)), served_by=pl.lit(transfer.served_by),
                               shrink=pl.lit(transfer.shrink))
    return SplitResult(name, metrics, train.height, test.height, frame, checks), model, transfer


Build = Callable[..., pl.DataFrame]


def seen_pair_split(outcomes: pl.DataFrame, build: Build,
                    seed: int = 0) -> tuple[SplitResult, CompatModel, pl.DataFrame, TransferScorer]:
    frame = build(outcomes)
    cut = frame["observed_at"].sort()[int(frame.height * 0.7)]
    before = frame.filter(pl.col("observed_at") < cut)
    after = frame.filter(pl.col("observed_at") >= cut)
    seen_keys = before.select("combination", "node_type").unique()
    test = after.join(seen_keys, on=["combination", "node_type"], how="semi")
    train = build(outcomes.filter(pl.col("observed_at") < cut), mask_fraction=MASK_FRACTION, seed=seed)
    checks = {"split_by_time": bool(train["observed_at"].max() < test["observed_at"].min()),
              "test_large_enough": test.height >= MIN_TEST_ROWS}
    res, model, transfer = _score("seen_pair", train, test, feature_columns(frame), seed, checks)
    return res, model, frame, transfer


def _weighted(outcomes: pl.DataFrame, build: Build, train_ids: set[int]) -> pl.DataFrame:
    w = outcomes["outcome_id"].is_in(sorted(train_ids)).cast(pl.Float64).to_numpy()
    return build(outcomes, weights=w)


def unseen_pair_split(outcomes: pl.DataFrame, build: Build, seed: int = 0) -> SplitResult:
    pairs = sorted(outcomes.filter(pl.col("set_size") == 2)["combination"].unique().to_list())
    rng = random.Random(seed)
    rng.shuffle(pairs)
    held = set(pairs[: max(1, len(pairs) // 4)])
    held_sets = [set(p.split("+")) for p in held]
    contains_held = [any(h <= set(m) for h in held_sets) for m in outcomes["mixins"].to_list()]
    train_ids = {oid for oid, bad in zip(outcomes["outcome_id"].to_list(), contains_held, strict=True) if not bad}
    frame = _weighted(outcomes, build, train_ids)
    train = build(outcomes.filter(pl.col("outcome_id").is_in(sorted(train_ids))), mask_fraction=MASK_FRACTION, seed=seed)
    test = frame.filter(pl.col("combination").is_in(sorted(held)))
    checks = {"pairs_disjoint": not (set(train["combination"].unique().to_list()) & held),
              "test_history_hidden": bool((test["h_pair_n"].fill_null(0) == 0).all()),
              "test_large_enough": test.height >= MIN_TEST_ROWS}
    res, _, _ = _score("unseen_pair", train, test, feature_columns(frame), seed, checks)
    return res


def unseen_mixin_split(outcomes: pl.DataFrame, build: Build, seed: int = 0, folds: int = 4) -> SplitResult:
    mixins = sorted({m for ms in outcomes["mixins"].to_list() for m in ms})
    rng = random.Random(seed + 1)
    rng.shuffle(mixins)
    fold_of = {m: i % folds for i, m in enumerate(mixins)}
    parts: list[pl.DataFrame] = []
    n_train: list[int] = []
    checks = {"mixins_unseen": True}
    mix_lists = outcomes["mixins"].to_list()
    ids = outcomes["outcome_id"].to_list()
    for k in range(folds):
        held = {m for m, f in fold_of.items() if f == k}
        train_ids = {oid for oid, ms in zip(ids, mix_lists, strict=True) if not (set(ms) & held)}
        test_ids = {oid for oid, ms in zip(ids, mix_lists, strict=True) if len(ms) == 2 and set(ms) & held}
        if not test_ids or not train_ids:
            continue
        frame = _weighted(outcomes, build, train_ids)
        train = build(outcomes.filter(pl.col("outcome_id").is_in(sorted(train_ids))), mask_fraction=MASK_FRACTION, seed=seed)
        test = frame.filter(pl.col("outcome_id").is_in(sorted(test_ids)))
        seen = {m for ms in train["mixins"].to_list() for m in ms}
        checks["mixins_unseen"] &= not (seen & held)
        res, _, _ = _score(f"unseen_mixin_fold{k}", train, test, feature_columns(frame), seed, {})
        parts.append(res.predictions.with_columns(fold=pl.lit(k)))
        n_train.append(res.n_train)
    every = pl.concat(parts)
    first_fold = every["mixins"].map_elements(lambda ms: min(fold_of[m] for m in ms), return_dtype=pl.Int32)
    preds = every.filter(pl.col("fold") == first_fold)
    y = preds["passed"].cast(pl.Int32).to_numpy()
    metrics = {s: binary_metrics(y, preds[s].to_numpy()) for s in ("model", "learner", "beta_binomial", "rules")}
    checks["served_by_transfer_scorer"] = bool(preds["cold"].all())   # every unseen-mixin row routed to it
    checks["test_large_enough"] = preds.height >= MIN_TEST_ROWS
    return SplitResult("unseen_mixin", metrics, int(np.mean(n_train)), preds.height, preds, checks,
                       groups=per_mixin(every, fold_of))


def per_mixin(every: pl.DataFrame, fold_of: dict[str, int]) -> pl.DataFrame:
    """One row per held-out mixin: every test pair containing it, from the fold that held it out."""
    rows = []
    for m in sorted(fold_of):
        sub = every.filter((pl.col("fold") == fold_of[m]) & pl.col("mixins").list.contains(m))
        if sub.height == 0:
            continue
        y = sub["passed"].cast(pl.Int32).to_numpy()
        ms = {s: binary_metrics(y, sub[s].to_numpy()) for s in ("model", "learner", "rules")}
        rows.append({"mixin": m, "fold": fold_of[m], "n": sub.height, "positive_rate": round(float(y.mean()), 4),
                     "served_by": sub["served_by"][0], "shrink": float(sub["shrink"][0]),
                     **{f"{s}_roc_auc": ms[s]["roc_auc"] for s in ms}, **{f"{s}_brier": ms[s]["brier"] for s in ms}})
    return pl.DataFrame(rows).with_columns(delta_roc_auc=pl.col("model_roc_auc") - pl.col("rules_roc_auc"))


def evaluate(outcomes: pl.DataFrame, cat: Catalogue, seed: int = 0,
             build: Callable[..., pl.DataFrame] | None = None) -> Evaluation:
    """All three splits. ``build(outcomes, weights=..., mask_fraction=..., seed=...)`` makes a
    feature frame (default :func:`feature_frame` with this catalogue)."""
    b = build or (lambda o, **kw: feature_frame(o, cat, **kw))
    seen, model, frame, transfer = seen_pair_split(outcomes, b, seed)
    splits = {"seen_pair": seen, "unseen_pair": unseen_pair_split(outcomes, b, seed),
              "unseen_mixin": unseen_mixin_split(outcomes, b, seed)}
    return Evaluation(splits, model, frame, fit_strength(frame), transfer)


def summary(ev: Evaluation) -> dict[str, Any]:
    return {name: {scorer: {k: round(v, 4) for k, v in m.items()} for scorer, m in s.metrics.items()}
            for name, s in ev.splits.items()}
