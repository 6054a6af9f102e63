"""Per-group balanced weights (issue 16): with rows from two or more repositories or projects,
each class within a group weighs half (and each group its share of the rows, or the same with
``power`` 0), so a feature whose level only tells the groups apart (and with it their base rates)
cannot stand in for what holds within every group."""

from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from kforge.acceptance.generalize import leave_one_group_out
from kforge.acceptance.jit_cross import JIT_CROSS
from kforge.acceptance.model import AcceptanceEnsemble, group_balanced_weights
from kforge.acceptance.train import balance_group

SPEC = replace(JIT_CROSS, numeric=("la", "exp"))


def test_each_class_within_a_group_weighs_half_and_groups_weigh_by_power() -> None:
    groups = np.array(["a"] * 100 + ["b"] * 10 + ["c"] * 4)
    y = np.array([1] * 10 + [0] * 90 + [1] * 5 + [0] * 5 + [0] * 4)
    a = groups == "a"
    for power in (0.0, 1.0):
        w = group_balanced_weights(groups, y, power)
        assert w.mean() == pytest.approx(1.0)
        assert w[a & (y == 1)].sum() == pytest.approx(w[a & (y == 0)].sum())  # 10 positives weigh as 90 negatives
        assert np.all(w > 0)  # a one-class group keeps its weight on that class
        total = {g: w[groups == g].sum() for g in "abc"}
        if power == 0.0:  # every group the same
            assert total["a"] == pytest.approx(total["b"]) and total["b"] == pytest.approx(total["c"])
        else:  # each group its share of the rows (the default)
            assert total["a"] / total["b"] == pytest.approx(10.0) and total["b"] / total["c"] == pytest.approx(2.5)
    np.testing.assert_allclose(group_balanced_weights(groups, y), group_balanced_weights(groups, y, 1.0))


def test_balanced_only_with_two_or_more_groups() -> None:
    two = pl.DataFrame({"repo": ["a", "b"]})
    assert balance_group(two) == "repo"
    assert balance_group(two, on=False) is None
    assert balance_group(pl.DataFrame({"repo": ["a", "a"]})) is None  # one repository: unchanged
    assert balance_group(pl.DataFrame({"x": [1]})) is None


def _group(name: str, n: int, level: float, base: float, seed: int, t0: int) -> pl.DataFrame:
    """Within the group, more experience means fewer bugs; across groups, the more experienced
    ones have the higher base rate (Simpson's paradox). Lines added carries a weak signal."""
    rng = np.random.default_rng(seed)
    exp = level + rng.normal(0, 1.0, n)
    la = rng.integers(1, 200, n).astype(float)
    logit = base - 2.5 * (exp - level) + 0.004 * (la - 100)
    y = rng.uniform(0, 1, n) < 1 / (1 + np.exp(-logit))
    return pl.DataFrame({"repo": name, "t": t0 + np.arange(n), "y": y, "la": la, "exp": exp})


def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    groups = [("low", 0.0, -2.5), ("mid", 1.5, 0.0), ("high", 3.0, 2.5), ("new", 1.5, -1.0)]
    parts = [_group(g, 900, lv, b, i, 10_000 * i) for i, (g, lv, b) in enumerate(groups)]
    train = pl.concat([p[:600] for p in parts[:3]]).sort("t")
    test = pl.concat([p[600:] for p in parts])
    return train, test


def _auc_on_new(group_balanced: bool) -> tuple[float, float]:
    train, test = _frames()
    g = leave_one_group_out(train, test, SPEC, ["la", "exp"], n_estimators=30, use_text=False, min_class=5,
                            prior_k=0.0, group_balanced=group_balanced, cold_start_weight=None)
    row = g.table.filter(pl.col("repo") == "new").row(0, named=True)
    assert row["status"] == "judged" and row["n_train"] == train.height
    return row["model_auc"], row["lines_added_auc"]


def test_balanced_weights_learn_what_holds_within_each_group() -> None:
    balanced, la = _auc_on_new(True)
    pooled, _ = _auc_on_new(False)
    assert balanced > la  # the within-group lesson transfers to a group never seen
    assert balanced > pooled + 0.05  # the pooled fit learned "experienced groups have more bugs"


def test_single_group_fit_keeps_its_class_weights() -> None:
    train, _ = _frames()
    one = train.filter(pl.col("repo") == "mid")
    y = one["y"].cast(pl.Int64).to_numpy()
    m = AcceptanceEnsemble(["la", "exp"], [], None, n_folds=2, n_estimators=10,
                           group=balance_group(one)).fit(one, y)
    assert m.group is None
    assert m.base["lightgbm"].get_params()["scale_pos_weight"] == pytest.approx((len(y) - y.sum()) / y.sum())
