"""Evaluation splits, the model against its baselines, and the prediction service with its cache."""

from pathlib import Path

import polars as pl
import pytest
from kforge.config import Paths
from kforge.errors import InputError
from kforge.mixins.service import PredictionService
from kforge.mixins.training import score_on, train


def test_splits_are_honest(trained, outcomes):
    s = trained.evaluation.splits
    assert trained.check("split_holds").passed and trained.check("no_future_features").passed, trained.checks
    seen = s["seen_pair"]
    assert seen.checks["split_by_time"]
    held = set(s["unseen_pair"].predictions["combination"].unique().to_list())
    assert held and all(len(c.split("+")) == 2 for c in held)
    assert s["unseen_pair"].checks["test_history_hidden"] and s["unseen_mixin"].checks["mixins_unseen"]
    for split in s.values():
        assert split.n_test > 0 and {"model", "beta_binomial", "rules"} <= set(split.metrics)
        assert 0 <= split.metrics["model"]["brier"] <= 1


def test_model_learns_what_the_baseline_cannot_for_unseen_pairs(trained):
    m = trained.evaluation.splits["unseen_pair"].metrics
    # the Beta-binomial only knows the node type's rate for an unseen pair; structure must add ranking power
    assert m["model"]["roc_auc"] > m["beta_binomial"]["roc_auc"] + 0.1
    assert m["model"]["roc_auc"] > 0.7


def test_gate_scores_only_models_that_did_not_train_on_the_rows(trained):
    scored = score_on(trained.predictor, trained.heldout)
    assert sorted(scored.keys) == sorted(trained.eval_keys()) and len(scored.keys) == trained.heldout.height
    assert scored.score == pytest.approx(trained.evaluation.splits["seen_pair"].metrics["model"]["brier"])
    early = trained.heldout.with_columns(observed_at=pl.col("observed_at") - pl.duration(days=3650))
    with pytest.raises(ValueError, match="trained on outcomes up to"):
        score_on(trained.predictor, early)


def test_gates_use_the_release_vocabulary(trained):
    names = [c.name for c in trained.checks]
    assert names == ["split_holds", "no_future_features", "test_size", "beats_beta_binomial", "generalizes"]
    assert set(trained.baselines()) == {"beta_binomial", "rules"}
    size = trained.check("test_size")
    assert size.numbers["minimum"] == 200 and size.numbers["seen_pair_rows"] == trained.heldout.height


def test_leaky_feature_blocks_promotion(outcomes, catalogue):
    result = train(outcomes, catalogue, seed=1, extra_features={"label_copy": lambda f: f["passed"].cast(pl.Float64)})
    assert not result.check("no_future_features").passed and "no_future_features" in result.blocked_by()
    assert "label_copy" in result.leakage.describe()


def test_too_few_outcomes_is_a_clear_error(outcomes, catalogue):
    with pytest.raises(InputError, match="at least"):
        train(outcomes.head(50), catalogue)


@pytest.fixture()
def service(trained, kforge_home: Path, catalogue) -> PredictionService:
    return PredictionService(Paths.of(kforge_home), predictor=trained.predictor, version=7, catalogue=catalogue)


def test_check_explains_and_caches_by_version(service, trained, kforge_home, catalogue):
    p = service.check(["caching", "Retry"], "reducer")
    assert 0 < p["probability"] < 1 and p["regime"] == "seen_pair" and not p["cached"]
    assert p["top_features"] and all({"feature", "value", "contribution"} <= set(f) for f in p["top_features"])
    assert service.check(["Retry", "Caching"], "REDUCER")["cached"]
    assert service.cache.size(7) == 1
    newer = PredictionService(Paths.of(kforge_home), predictor=trained.predictor, version=8, catalogue=catalogue)
    assert not newer.check(["Retry", "Caching"], "REDUCER")["cached"]   # a new version never reads old entries
    assert newer.cache.invalidate(keep_version=8) == 1 and newer.cache.size() == 1


def test_validate_finds_an_order_that_composes(service):
    v = service.validate(["Connection", "Repository", "Retry"], "EFFECT")
    assert not v["composition"]["composes"]
    order = v["composition"]["working_order"]
    assert order.index("Repository") < order.index("Connection")
    assert len(v["pairs"]) == 3 and 0 <= v["set_probability"] <= 1
    assert any("cannot compose" in w for w in v["warnings"])


def test_recommend_ranks_candidates(service):
    r = service.recommend("EFFECT", ["resilience"], ["Caching"], top=3)
    recs = r["recommendations"]
    assert len(recs) == 3 and recs[0]["probability"] >= recs[-1]["probability"]
    assert all(rec["add"][0] in {"Retry", "CircuitBreaker", "Timeout", "RateLimiter"} for rec in recs)
    assert all(rec["confidence"] in {"high", "medium", "low"} and rec["reasons"] for rec in recs)


@pytest.mark.parametrize("call,error", [
    (lambda s: s.check(["Caching"], "EFFECT"), "at least 2"),
    (lambda s: s.check(["Caching", "Retry", "Audit"], "EFFECT"), "exactly two"),
    (lambda s: s.check(["Caching", "caching"], "EFFECT"), "listed twice"),
    (lambda s: s.check(["Caching", "Retry"], "SINK"), "unknown node type"),
    (lambda s: s.recommend("EFFECT", ["teleportation"]), "nothing in the catalogue provides"),
    (lambda s: s.recommend("EFFECT", []), "at least one capability"),
    (lambda s: s.recommend("EFFECT", ["resilience"], top=0), "--top"),     # used to answer an empty ranking
    (lambda s: s.recommend("EFFECT", ["resilience"], top=-1), "--top"),    # used to drop the last candidate
    (lambda s: s.recommend("EFFECT", ["resilience"]), "two or more"),        # a lone mixin: was a LightGBM ValueError
])
def test_user_errors(service, call, error):
    with pytest.raises(InputError, match=error):
        call(service)


def test_fast_forest_path_equals_sklearn(trained):
    import numpy as np
    from kforge.mixins.model import _filled, _matrix

    m = trained.predictor.model
    X = _filled(_matrix(trained.heldout.head(50), m.feature_cols), m.feature_cols, m.fill)
    assert np.allclose(m.rf_proba(X), m.rf.predict_proba(X)[:, 1])


def test_generalizes_scores_each_mixin_with_a_fold_that_never_saw_it(trained, outcomes):
    split = trained.evaluation.splits["unseen_mixin"]
    groups = trained.per_mixin()
    every_mixin = {m for ms in outcomes["mixins"].to_list() for m in ms}
    assert set(groups["mixin"].to_list()) == every_mixin and split.checks["mixins_unseen"]
    assert split.checks["served_by_transfer_scorer"]      # every unseen-mixin row goes to the transfer scorer
    # a group's rows are every pair containing the mixin; the pooled figure counts each pair once
    pairs = outcomes.filter(pl.col("set_size") == 2)
    for r in groups.iter_rows(named=True):
        assert r["n"] == pairs.filter(pl.col("mixins").list.contains(r["mixin"])).height
    assert split.n_test == pairs.height
    gen = trained.check("generalizes")
    assert gen.numbers["groups"] == groups.height
    worst = groups.sort("delta_roc_auc").row(0, named=True)
    assert gen.numbers["worst_delta"] == pytest.approx(worst["delta_roc_auc"], abs=1e-4)
    assert gen.passed == bool((groups["delta_roc_auc"] >= 0).all())  # loses on any mixin: blocks; a tie passes
    assert gen.passed is False or "loses on" not in gen.detail
    # "say so": the mixins served by the rule score itself are named, and each is an exact tie
    fallback = trained.fallback_mixins()
    assert fallback == sorted(groups.filter(pl.col("served_by") == "rules")["mixin"].to_list())
    assert gen.numbers["fallback_groups"] == len(fallback)
    assert ("served by the rule scorer (fallback, a tie): " + ", ".join(fallback)) in gen.detail if fallback \
        else "no mixin served by the fallback" in gen.detail
    for r in groups.filter(pl.col("served_by") == "rules").iter_rows(named=True):
        assert r["model_roc_auc"] == r["rules_roc_auc"] and r["delta_roc_auc"] == 0.0


def test_served_probability_routes_little_known_mixins_to_the_transfer_scorer(trained, catalogue):
    from kforge.mixins.evaluate import served_proba

    split = trained.evaluation.splits["unseen_mixin"]
    assert split.metrics["model"]["roc_auc"] != split.metrics["learner"]["roc_auc"]
    p = trained.predictor
    frame = p.frame([(["Caching", "Retry"], "EFFECT")], catalogue.traits())
    cold = frame.with_columns(h_mixin_min_n=pl.lit(0.0))
    assert served_proba(p.model, p.transfer, frame)[0] == pytest.approx(p.model.predict_proba(frame)[0])
    assert served_proba(p.model, p.transfer, cold)[0] == pytest.approx(p.transfer.predict_proba(cold)[0])
    out = p.predict([(["Caching", "Retry"], "EFFECT")], catalogue.traits(), explain=False)[0]
    assert out["scorer"] == "learner" and out["regime"] == "seen_pair"



def test_explanations_decompose_the_scorer_that_answered(trained, catalogue):
    """Before: ``top_features`` always explained the history learner, also when the probability came from the
    transfer scorer or the rule score. Now they decompose the answering scorer's log-odds."""
    import math

    import numpy as np

    p = trained.predictor
    q = [(["Caching", "Retry"], "EFFECT")]
    warm = p.predict(q, catalogue.traits())[0]
    assert warm["top_features_of"] == "learner" and warm["top_features"]
    cold = p.frame(q, catalogue.traits()).with_columns(h_mixin_min_n=pl.lit(0.0))
    out = p.predict(q, catalogue.traits(), frame=cold)[0]
    assert out["scorer"] in ("transfer", "rules") and out["top_features_of"] == out["scorer"]
    feats = out["top_features"]
    assert feats[0]["feature"] == "rule_score" and feats[0]["value"] == pytest.approx(cold["rule_score"][0])
    logit = sum(f["contribution"] for f in feats)
    if out["scorer"] == "rules":
        assert len(feats) == 1 and out["probability"] == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-3)
    else:  # rule log-odds + the shrunk correction's feature contributions (+ its centred bias) = served log-odds
        from kforge.mixins.model import _matrix

        t = p.transfer
        full = t.explain(cold, k=len(t.cols))[0]
        bias = t.shrink * (t.booster.predict(_matrix(cold, t.cols), pred_contrib=True)[0, -1] - t.offset)
        z = sum(c for _, _, c in full) + bias
        assert {f["feature"] for f in feats[1:]} <= set(t.cols) and len(feats) > 1
        assert out["probability"] == pytest.approx(1 / (1 + np.exp(-z)), abs=1e-6)
