"""Leave one repository out (the commit model's ``generalizes`` gate) on small synthetic frames:
each repository is scored by a model that never saw it, a repository too small to judge is listed
but not judged, a loss blocks promotion, and a single repository reports the gate as not run
without blocking."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from kforge.acceptance.dataset import time_split
from kforge.acceptance.generalize import Generalization, leave_one_repository_out
from kforge.acceptance.release import candidate
from kforge.acceptance.spec import COMMIT, METRIC
from kforge.acceptance.train import TrainConfig, train_and_evaluate
from kforge.config import Paths
from kforge.registry import Tracker, release
from kforge.registry.gates import GENERALIZES, generalizes_check

DAY = 86400
SPEC = replace(COMMIT, numeric=("la", "x1"), categorical=("subsystem",))
CFG = TrainConfig(min_observation_days=30, test_fraction=0.3, n_estimators=20, n_folds=2, use_text=False,
                  min_test_rows=20, min_test_class=3, generalizes_n_estimators=20, generalizes_min_class=5)


def _repo(name: str, n: int, seed: int, noise: float = 0.1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    la, x1 = rng.integers(1, 400, n).astype(float), rng.uniform(0, 1, n)
    bad = (la / 400 + x1 > 1.1) | (rng.uniform(0, 1, n) < noise)  # size and x1 together: x1 adds to size
    t = np.sort(rng.integers(0, 700, n)) * DAY
    return pl.DataFrame({
        "repo": [name] * n, "sha": [f"{name}{i:04d}" for i in range(n)], "t": t,
        "event_ts": [int(ti + 5 * DAY) if b else None for ti, b in zip(t, bad, strict=True)],
        "la": la, "x1": x1, "subsystem": rng.choice(["net", "mm"], n), "text": ["x"] * n,
    }, schema_overrides={"event_ts": pl.Int64})


def _frame() -> pl.DataFrame:
    tiny = _repo("tiny", 60, 3, noise=0.0).with_columns(pl.lit(None, pl.Int64).alias("event_ts"))
    return pl.concat([_repo("a", 500, 1), _repo("b", 500, 2), tiny]).sort("t")


def test_each_repository_is_scored_by_a_model_that_never_saw_it() -> None:
    split = time_split(_frame(), min_observation_days=30, test_fraction=0.3)
    g = leave_one_repository_out(split, SPEC, ["la", "x1"], n_estimators=20, min_class=5)
    t = {r["repo"]: r for r in g.table.iter_rows(named=True)}
    assert set(t) == set(split.test["repo"].unique().to_list())
    for repo in ("a", "b"):
        assert t[repo]["status"] == "judged"
        # trained on every other repository's training rows, none of its own
        assert t[repo]["n_train"] == split.train.filter(pl.col("repo") != repo).height
        assert t[repo]["n_test"] == split.test.filter(pl.col("repo") == repo).height
        assert t[repo]["delta"] == pytest.approx(t[repo]["model_auc"] - t[repo]["lines_added_auc"])
        assert g.check.numbers[f"delta[{repo}]"] == pytest.approx(t[repo]["delta"], abs=1e-4)
    # no positives in its window: listed, not judged, named in the detail
    assert t["tiny"]["status"].startswith("too few") and "tiny" in g.check.detail
    assert g.check.numbers["groups"] == 2
    assert g.check.passed is all(t[r]["delta"] > 0 for r in ("a", "b"))
    m = g.metrics(METRIC)
    assert m[f"generalizes_{METRIC}_a"] == t["a"]["model_auc"]
    assert m["generalizes_worst_delta"] == min(t["a"]["delta"], t["b"]["delta"])
    # x1 carries signal lines-added does not have: the model should win where it never trained
    assert t["a"]["model_auc"] > t["a"]["lines_added_auc"] and t["b"]["model_auc"] > t["b"]["lines_added_auc"]


@pytest.fixture()
def tracker(kforge_home: Path) -> Tracker:
    return Tracker(Paths.of(kforge_home))


def test_a_losing_repository_blocks_promotion(tracker: Tracker, tmp_path: Path) -> None:
    res = train_and_evaluate(_frame().filter(pl.col("repo") != "tiny"), SPEC, CFG)
    losing = generalizes_check(SPEC.model, {"a": (0.70, 0.65), "b": (0.60, 0.62)})
    cand, _ = candidate(res, tmp_path, Generalization(pl.DataFrame(), losing))
    assert GENERALIZES in cand.spec.blocking_gates()
    r = release(tracker, cand)
    assert r.decision == "blocked" and "generalizes (failed)" in r.reason
    assert r.check(GENERALIZES).numbers["worst_delta"] == pytest.approx(-0.02)


def test_one_repository_reports_not_run_and_does_not_block(tracker: Tracker, tmp_path: Path) -> None:
    frame = _repo("only", 700, 5)
    res = train_and_evaluate(frame, SPEC, CFG)
    g = leave_one_repository_out(res.split, SPEC, ["la", "x1"], n_estimators=20)
    assert g.check.passed is None and "nothing to leave out" in g.check.detail
    cand, _ = candidate(res, tmp_path, g)
    # still declared and reported (WARN), but it cannot block a single-repository run
    assert GENERALIZES in [s.name for s in cand.spec.gate_specs()]
    assert not cand.spec.blocks(g.check)  # a generalizes gate that could not run only warns
    r = release(tracker, cand)
    assert r.check(GENERALIZES).passed is None and "generalizes" not in r.reason


def test_cold_start_blend_weighs_the_model_by_its_evidence() -> None:
    from kforge.acceptance.model import AcceptanceEnsemble
    from scipy.stats import spearmanr

    df = _repo("a", 500, 1).sort("t")
    y = df["event_ts"].is_not_null().cast(pl.Int64).to_numpy()

    def fit(k: float) -> AcceptanceEnsemble:
        return AcceptanceEnsemble(["la", "x1"], [], None, n_folds=2, n_estimators=20, prior="la", prior_k=k).fit(df, y)

    some = fit(500.0)
    assert some.prior_weight == pytest.approx(y.sum() / (y.sum() + 500.0))
    comps = some.predict_components(df)
    assert set(comps) >= {"stack", "ensemble"} and ((comps["ensemble"] > 0) & (comps["ensemble"] < 1)).all()
    # no evidence: the score ranks as lines added does; overwhelming evidence: as the stack does
    assert spearmanr(fit(1e9).predict_proba(df), df["la"].to_numpy())[0] > 0.999
    sure = fit(1e-9).predict_components(df)
    assert spearmanr(sure["ensemble"], sure["stack"])[0] > 0.999


def test_the_blend_is_for_models_trained_on_several_repositories() -> None:
    from kforge.acceptance.train import size_prior

    both = _frame()
    assert size_prior(both, SPEC, 500.0) == "la"
    assert size_prior(both, SPEC, 0.0) is None
    one = both.filter(pl.col("repo") == "a")
    assert size_prior(one, SPEC, 500.0) is None  # scored where it was trained: no blend
    res = train_and_evaluate(one, SPEC, CFG)
    # its own repository's rows are scored by the stack alone (the cold-start mode is for other repositories)
    assert res.params["prior_weight"] == 1.0 and res.model.calibrator is None
    assert not res.model.unseen(res.split.test).any() and "stack" not in res.model.predict_components(res.split.test)
    assert train_and_evaluate(one, SPEC, replace(CFG, cold_start_weight=None)).model.prior is None


def test_no_future_features_is_never_passed_without_the_point_in_time_check(tmp_path: Path,
                                                                           warehouse) -> None:  # noqa: ANN001
    """Issue 15.7: the gate used to pass while its detail said 'point-in-time check: not run'."""
    from kforge.features.pit import PitReport, point_in_time_status, record_point_in_time
    from kforge.registry.gates import NO_FUTURE_FEATURES

    frame = _repo("only", 700, 5)
    gate = {c.name: c for c in train_and_evaluate(frame, SPEC, CFG).gates}[NO_FUTURE_FEATURES]
    assert gate.passed is None and "not run" in gate.detail
    assert {c.name: c for c in train_and_evaluate(frame, SPEC, CFG, pit_passed=True).gates}[NO_FUTURE_FEATURES].passed
    assert {c.name: c for c in train_and_evaluate(frame, SPEC, CFG, pit_passed=False).gates}[
        NO_FUTURE_FEATURES].passed is False
    # the stored outcome belongs to one exact features table
    feats = pl.DataFrame({"sha": ["a", "b"], "la": [1, 2]})
    assert point_in_time_status(warehouse, feats) is None
    record_point_in_time(warehouse, feats, PitReport(checked=4, mismatches=[]))
    assert point_in_time_status(warehouse, feats) is True
    assert point_in_time_status(warehouse, feats.with_columns(pl.col("la") + 1)) is None


def test_per_repository_numbers_and_the_worst_one_reach_mlflow(tracker: Tracker, tmp_path: Path) -> None:
    import mlflow

    frame = _frame().filter(pl.col("repo") != "tiny")
    res = train_and_evaluate(frame, SPEC, CFG)
    table = pl.DataFrame({"repo": ["a", "b"], "n_train": [1, 1], "n_test": [50, 50], "positives": [9, 9],
                          "model_auc": [0.70, 0.64], "lines_added_auc": [0.65, 0.62], "delta": [0.05, 0.02],
                          "status": ["judged", "judged"]})
    g = Generalization(table, generalizes_check(SPEC.model, {"a": (0.70, 0.65), "b": (0.64, 0.62)}))
    assert g.worst() == "b"
    cand, _ = candidate(res, tmp_path, g)
    r = release(tracker, cand)
    run = mlflow.MlflowClient(tracker.tracking_uri).get_run(r.run_id)
    assert run.data.tags["generalizes_worst_group"] == "b"
    assert run.data.tags["trained_repositories"] == "a,b"   # any other repository is scored in the cold-start mode
    assert run.data.metrics[f"generalizes_{METRIC}_a"] == pytest.approx(0.70)
    assert run.data.metrics["generalizes_worst_delta"] == pytest.approx(0.02)
