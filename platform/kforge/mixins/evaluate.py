"""Evaluation in one run: the model, the Beta-binomial baseline and the structural rule scorer on
the same held-out rows of three splits.

* ``seen_pair``: by time. Train on observations before the cut (70% of the timeline), test on
  later observations of (combination, node type) keys already seen before the cut.
* ``unseen_pair``: by pair. 25% of mixin pairs are held out entirely (every node type, every set
  containing them is dropped from training); their history is invisible (weight 0).
* ``unseen_mixin``: by mixin, 4 folds. Test rows contain a mixin whose every observation was
  removed from training: only introspected traits describe it.
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


@dataclass
class Evaluation:
    splits: dict[str, SplitResult]
    seen_model: CompatModel | None
    seen_frame: pl.DataFrame | None
    strength: float

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


def _score(name: str, train: pl.DataFrame, test: pl.DataFrame, cols: list[str], seed: int,
           checks: dict[str, bool]) -> tuple[SplitResult, CompatModel]:
    model = CompatModel.fit(train, cols, seed=seed)
    k = fit_strength(train)
    y = test["passed"].cast(pl.Int32).to_numpy()
    preds = {"model": model.predict_proba(test), "beta_binomial": beta_binomial(test, k), "rules": rule_score(test)}
    metrics = {s: binary_metrics(y, p) for s, p in preds.items()}
    frame = test.select("outcome_id", "combination", "node_type", "passed").with_columns(
        **{s: pl.Series(p) for s, p in preds.items()})
    return SplitResult(name, metrics, train.height, test.height, frame, checks), model


Build = Callable[..., pl.DataFrame]


def seen_pair_split(outcomes: pl.DataFrame, build: Build, seed: int = 0) -> tuple[SplitResult, CompatModel, pl.DataFrame]:
    frame = build(outcomes)
    cut = frame["observed_at"].sort()[int(frame.height * 0.7)]
    before = frame.filter(pl.col("observed_at") < cut)
    after = frame.filter(pl.col("observed_at") >= cut)
    seen_keys = before.select("combination", "node_type").unique()
    test = after.join(seen_keys, on=["combination", "node_type"], how="semi")
    train = build(outcomes.filter(pl.col("observed_at") < cut), mask_fraction=MASK_FRACTION, seed=seed)
    checks = {"split_by_time": bool(train["observed_at"].max() < test["observed_at"].min()),
              "test_large_enough": test.height >= MIN_TEST_ROWS}
    res, model = _score("seen_pair", train, test, feature_columns(frame), seed, checks)
    return res, model, frame


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
    res, _ = _score("unseen_pair", train, test, feature_columns(frame), seed, checks)
    return res


def unseen_mixin_split(outcomes: pl.DataFrame, build: Build, seed: int = 0, folds: int = 4) -> SplitResult:
    mixins = sorted({m for ms in outcomes["mixins"].to_list() for m in ms})
    rng = random.Random(seed + 1)
    rng.shuffle(mixins)
    fold_of = {m: i % folds for i, m in enumerate(mixins)}
    parts: list[SplitResult] = []
    checks = {"mixins_unseen": True}
    mix_lists = outcomes["mixins"].to_list()
    ids = outcomes["outcome_id"].to_list()
    for k in range(folds):
        held = {m for m, f in fold_of.items() if f == k}
        train_ids = {oid for oid, ms in zip(ids, mix_lists, strict=True) if not (set(ms) & held)}
        test_ids = {oid for oid, ms in zip(ids, mix_lists, strict=True)
                    if len(ms) == 2 and set(ms) & held and min(fold_of[m] for m in ms) == k}
        if not test_ids or not train_ids:
            continue
        frame = _weighted(outcomes, build, train_ids)
        train = build(outcomes.filter(pl.col("outcome_id").is_in(sorted(train_ids))), mask_fraction=MASK_FRACTION, seed=seed)
        test = frame.filter(pl.col("outcome_id").is_in(sorted(test_ids)))
        seen = {m for ms in train["mixins"].to_list() for m in ms}
        checks["mixins_unseen"] &= not (seen & held)
        res, _ = _score(f"unseen_mixin_fold{k}", train, test, feature_columns(frame), seed, {})
        parts.append(res)
    preds = pl.concat([p.predictions for p in parts])
    y = preds["passed"].cast(pl.Int32).to_numpy()
    metrics = {s: binary_metrics(y, preds[s].to_numpy()) for s in ("model", "beta_binomial", "rules")}
    checks["test_large_enough"] = preds.height >= MIN_TEST_ROWS
    return SplitResult("unseen_mixin", metrics, int(np.mean([p.n_train for p in parts])), preds.height, preds, checks)


def evaluate(outcomes: pl.DataFrame, cat: Catalogue, seed: int = 0,
             build: Callable[..., pl.DataFrame] | None = None) -> Evaluation:
    """All three splits. ``build(outcomes, weights=..., mask_fraction=..., seed=...)`` makes a
    feature frame (default :func:`feature_frame` with this catalogue)."""
    b = build or (lambda o, **kw: feature_frame(o, cat, **kw))
    seen, model, frame = seen_pair_split(outcomes, b, seed)
    splits = {"seen_pair": seen, "unseen_pair": unseen_pair_split(outcomes, b, seed),
              "unseen_mixin": unseen_mixin_split(outcomes, b, seed)}
    return Evaluation(splits, model, frame, fit_strength(frame))


def summary(ev: Evaluation) -> dict[str, Any]:
    return {name: {scorer: {k: round(v, 4) for k, v in m.items()} for scorer, m in s.metrics.items()}
            for name, s in ev.splits.items()}
