"""``kforge-mixins`` through the release path: the champion is loaded from the registry (never the
serving cache) and scored on the same held-out outcomes; identical outcomes register nothing."""

from pathlib import Path

import polars as pl
import pytest
from kforge.config import Paths
from kforge.mixins.release import MODEL_NAME, SPEC, TrainConfig, candidate, load_bundle
from kforge.mixins.training import score_on
from kforge.registry import Tracker
from kforge.registry.release import release


@pytest.fixture()
def tracker(kforge_home: Path) -> Tracker:
    return Tracker(Paths.of(kforge_home))


def _tags(tracker: Tracker, version: int) -> dict[str, str]:
    return tracker.client().get_model_version(MODEL_NAME, str(version)).tags


def test_spec_names_metric_and_baselines() -> None:
    from kforge.dagster_io.release import release_checks

    names = [s.name for s in release_checks(SPEC)]
    assert names == ["split_holds", "no_future_features", "test_size", "beats_beta_binomial", "beats_rules",
                     "generalizes", "saved_model_reproduces", "beats_champion"]
    assert "every held-out mixin" in next(s for s in release_checks(SPEC) if s.name == "generalizes").description
    assert all("Brier" in s.description for s in release_checks(SPEC) if s.name.startswith("beats_"))
    assert "labels are flipped" in next(s for s in release_checks(SPEC) if s.name == "no_future_features").description


def test_identical_outcomes_register_nothing_and_champion_is_scored_on_the_same_rows(
        tracker: Tracker, trained, outcomes, catalogue, tmp_path: Path) -> None:  # noqa: ANN001
    r1 = release(tracker, candidate(trained, outcomes, catalogue, TrainConfig(), tmp_path), dagster_run_id="run-1")
    assert r1.version == 1 and r1.decision in ("promoted", "blocked")
    assert r1.eval_rows == trained.heldout.height and r1.baselines.keys() == {"beta_binomial", "rules"}
    run = tracker.client().get_run(r1.run_id)
    groups = trained.per_mixin()
    for r in groups.iter_rows(named=True):     # per-mixin numbers and the worst one reach MLflow
        assert run.data.metrics[f"generalizes_roc_auc_{r['mixin']}"] == pytest.approx(r["model_roc_auc"])
    assert run.data.metrics["generalizes_roc_auc_worst_delta"] == pytest.approx(groups["delta_roc_auc"].min())
    assert r1.check("generalizes").passed == trained.check("generalizes").passed
    if not trained.check("generalizes").passed:
        assert r1.decision == "blocked" and "generalizes" in r1.reason
    # the old hole: re-running on identical outcomes registered a duplicate version
    again = release(tracker, candidate(trained, outcomes.reverse(), catalogue, TrainConfig(), tmp_path),
                    dagster_run_id="run-2")
    assert again.decision == "unchanged" and again.version == 1
    assert len(tracker.client().search_model_versions(f"name='{MODEL_NAME}'")) == 1

    if tracker.version_of(MODEL_NAME) is None:   # small data may fail test_size: promote by hand
        tracker.promote(MODEL_NAME, 1, "test")
    # a poisoned serving cache in the home: the champion must be scored from the registered directory
    cached = Paths.of(tracker.paths.home).models_cache / "mixins" / "v1" / "bundle.joblib"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"not a bundle")
    # the old hole: the champion scored on other rows; now the digests must be equal
    r2 = release(tracker, candidate(trained, outcomes, catalogue, TrainConfig(seed=5), tmp_path))
    assert r2.version == 2 and r2.champion_version == 1
    assert r2.champion_score == pytest.approx(r1.challenger_score), r2.reason
    t = _tags(tracker, 2)
    assert t["kforge.eval_rows_digest"] == t["kforge.gate.champion_eval_rows_digest"] == r1.eval_rows_digest
    assert r2.check("beats_champion").passed is False      # same model, same rows: not better
    assert t["kforge.gate.decision"] == "blocked" and tracker.version_of(MODEL_NAME) == 1


def test_champion_trained_on_the_held_out_rows_blocks_with_the_reason(
        tracker: Tracker, trained, outcomes, catalogue, tmp_path: Path) -> None:  # noqa: ANN001
    r1 = release(tracker, candidate(trained, outcomes, catalogue, TrainConfig(), tmp_path))
    if not r1.promoted:
        tracker.promote(MODEL_NAME, r1.version, "test")
    shifted = trained.heldout.with_columns(observed_at=pl.col("observed_at") - pl.duration(days=3650))
    cand = candidate(trained, outcomes, catalogue, TrainConfig(seed=3), tmp_path)
    cand.score_registered = lambda d: score_on(load_bundle(d), shifted)
    r = release(tracker, cand)
    champ = r.check("beats_champion")
    assert r.decision == "blocked" and champ.passed is False
    assert "could not be scored" in champ.detail and "trained on outcomes" in champ.detail
    # with every blocking gate passed the champion's failure is the reason; else the failed gates are
    why = _tags(tracker, r.version)["kforge.gate.reason"]
    assert ("trained on outcomes" in why) if not r.failed() or r.failed() == ["beats_champion"] \
        else why.startswith("blocked by gates: ")
    assert tracker.version_of(MODEL_NAME) == r1.version
