"""The one release path, on a toy model: promotion, blocking, same rows, no duplicate versions."""

import json
from pathlib import Path

import polars as pl
import pytest
from kforge.config import Paths
from kforge.registry import Tracker
from kforge.registry.gates import Check, ModelSpec, size_check
from kforge.registry.heldout import in_test, rows_digest, stable_group_split
from kforge.registry.release import Candidate, Scored, release

SPEC = ModelSpec(name="kforge-toy", family="unit", asset_key="toy_model", metric="test_acc",
                 baselines=("majority",), split="group", split_unit="groups", min_test_rows=3, point_in_time=False)
ROWS = {"a": 1, "b": 0, "c": 1, "d": 1, "e": 0}


def _threshold_model(threshold: float):  # noqa: ANN202
    """A toy 'model': predicts 1 for keys whose ord() parity matches, scored against ROWS."""

    def save(d: Path) -> None:
        d.mkdir(parents=True)
        (d / "model.json").write_text(json.dumps({"threshold": threshold}))

    return save


def _score_dir(keys: list[str]):  # noqa: ANN202
    def score(d: Path) -> Scored:
        thr = json.loads((d / "model.json").read_text())["threshold"]
        return Scored(thr, keys)

    return score


def _cand(score: float, train: pl.DataFrame, *, keys: list[str] | None = None, champion_keys: list[str] | None = None,
          checks: list[Check] | None = None, params: dict | None = None) -> Candidate:
    keys = keys or sorted(ROWS)
    return Candidate(SPEC, train_table=train, eval_keys=keys, score=score, baselines={"majority": 0.6},
                     checks=checks if checks is not None else [Check("split_holds", True), size_check(len(keys), 3)],
                     params=params or {"threshold": score}, metrics={"test_rows": len(keys)},
                     save_model=_threshold_model(score), score_registered=_score_dir(champion_keys or keys))


@pytest.fixture()
def tracker(kforge_home: Path) -> Tracker:
    return Tracker(Paths.of(kforge_home))


def _tags(tracker: Tracker, version: int) -> dict[str, str]:
    return tracker.client().get_model_version(SPEC.name, str(version)).tags


def test_promoted_when_better_and_digests_equal(tracker: Tracker) -> None:
    train = pl.DataFrame({"x": [1, 2, 3]})
    r1 = release(tracker, _cand(0.7, train), dagster_run_id="run-1")
    assert r1.decision == "promoted" and r1.version == 1
    r2 = release(tracker, _cand(0.8, train.with_columns(pl.col("x") + 1)), dagster_run_id="run-2")
    assert r2.decision == "promoted" and r2.champion_version == 1 and r2.champion_score == pytest.approx(0.7)
    t = _tags(tracker, r2.version)
    assert t["kforge.eval_rows_digest"] == t["kforge.gate.champion_eval_rows_digest"] == rows_digest(ROWS)
    assert t["kforge.gate.decision"] == "promoted"
    assert int(tracker.champion(SPEC.name).version) == 2
    assert tracker.version_of(SPEC.name, "previous-champion") == 1
    run = tracker.client().get_run(r2.run_id)
    assert run.info.run_name.startswith("kforge-toy ") and run.info.run_name.endswith(" run-2")
    for key in ("dagster_run_id", "asset_key", "data_version", "code_version"):
        assert run.data.tags[key]
    desc = tracker.client().get_model_version(SPEC.name, "2").description
    assert "champion v1" in desc and "baseline majority" in desc and "/runs/run-2" in desc
    assert {c.name: c.passed for c in r2.checks}["beats_champion"] is True
    # a worse challenger is registered but blocked, the champion stays
    r3 = release(tracker, _cand(0.65, train.with_columns(pl.col("x") + 2)))
    assert r3.decision == "blocked" and "champion v2" in r3.reason
    assert int(tracker.champion(SPEC.name).version) == 2


def test_blocked_when_champion_cannot_be_scored(tracker: Tracker) -> None:
    train = pl.DataFrame({"x": [1, 2, 3]})
    assert release(tracker, _cand(0.7, train)).promoted
    bad = _cand(0.9, train.with_columns(pl.col("x") * 5))

    def broken(d: Path) -> Scored:
        raise ValueError("feature set changed")

    bad.score_registered = broken
    r = release(tracker, bad)
    assert r.decision == "blocked" and "could not be scored" in r.reason and "feature set changed" in r.reason
    assert _tags(tracker, r.version)["kforge.gate.decision"] == "blocked"
    assert "feature set changed" in _tags(tracker, r.version)["kforge.gate.reason"]
    assert int(tracker.champion(SPEC.name).version) == 1


def test_blocked_when_champion_scored_on_other_rows(tracker: Tracker) -> None:
    train = pl.DataFrame({"x": [1, 2, 3]})
    assert release(tracker, _cand(0.7, train)).promoted
    r = release(tracker, _cand(0.9, train.with_columns(pl.col("x") * 3), champion_keys=["a", "b", "c"]))
    assert r.decision == "blocked" and "other rows" in r.reason
    assert int(tracker.champion(SPEC.name).version) == 1


def test_unchanged_data_registers_nothing(tracker: Tracker) -> None:
    train = pl.DataFrame({"x": [1, 2, 3]})
    r1 = release(tracker, _cand(0.7, train))
    r2 = release(tracker, _cand(0.7, train.reverse()), dagster_run_id="nightly")
    assert r2.decision == "unchanged" and r2.version == r1.version
    assert len(tracker.client().search_model_versions(f"name='{SPEC.name}'")) == 1
    assert "nightly" in _tags(tracker, r1.version)["kforge.last_unchanged_run"]
    assert {c.name: c.passed for c in r2.checks}["beats_champion"] is None
    # other params: a new version
    r3 = release(tracker, _cand(0.7, train, params={"threshold": 0.7, "depth": 3}))
    assert r3.decision != "unchanged" and r3.version == 2


def test_failed_or_missing_gate_blocks_promotion(tracker: Tracker) -> None:
    train = pl.DataFrame({"x": [1, 2, 3]})
    # the model loses to its baseline: blocked even with no champion
    r = release(tracker, _cand(0.5, train))
    assert r.decision == "blocked" and "beats_majority" in r.reason and tracker.champion(SPEC.name) is None
    # a blocking gate that did not run blocks too, and is reported as not run
    r2 = release(tracker, _cand(0.9, train.with_columns(pl.col("x") + 1), checks=[Check("split_holds", True)]))
    assert r2.decision == "blocked" and "test_size (not run)" in r2.reason
    assert r2.check("test_size").passed is None
    assert tracker.champion(SPEC.name) is None


def test_check_results_report_not_run_as_warn(tracker: Tracker) -> None:
    import dagster as dg
    from kforge.dagster_io.release import release_check_results, release_checks

    specs = release_checks(SPEC)
    assert [s.name for s in specs] == ["split_holds", "test_size", "beats_majority", "saved_model_reproduces",
                                       "beats_champion"]
    assert all("test_acc" in s.description for s in specs if s.name.startswith("beats_"))
    r = release(tracker, _cand(0.9, pl.DataFrame({"x": [1]}), checks=[Check("split_holds", True)]))
    by = {c.check_name: c for c in release_check_results(r)}
    assert set(by) == {s.name for s in specs}
    assert by["test_size"].passed is False and by["test_size"].severity == dg.AssetCheckSeverity.WARN
    assert by["test_size"].metadata["status"].value == "not run"
    assert by["beats_majority"].passed is True


def test_stable_group_split_never_moves_a_training_group_into_test() -> None:
    groups = [f"g{i}" for i in range(200)]
    tr, te = stable_group_split(groups, 0.25)
    test_groups = {groups[i] for i in te}
    assert 20 < len(test_groups) < 80
    more = groups + [f"new{i}" for i in range(100)]
    _, te2 = stable_group_split(more, 0.25)
    assert {more[i] for i in te2} & set(groups) == test_groups
    assert all(in_test(g, 0.25) == (g in test_groups) for g in groups)
    assert rows_digest(["b", "a"]) == rows_digest(["a", "b"]) != rows_digest(["a"])


def test_generalizes_gate_names_the_worst_group() -> None:
    from kforge.registry.gates import generalizes_check

    spec = ModelSpec(name="kforge-g", family="unit", asset_key="g", metric="auc", baselines=("lines_added",),
                     generalizes_over="repository")
    assert "generalizes" in [g.name for g in spec.gate_specs()]
    ok = generalizes_check(spec, {"a": (0.7, 0.6), "b": (0.65, 0.6)})
    assert ok.passed and ok.numbers["worst_delta"] == 0.05
    bad = generalizes_check(spec, {"a": (0.7, 0.6), "b": (0.55, 0.6), "c": (0.6, 0.6)})
    assert bad.passed is False and "loses on b, c" in bad.detail and "worst repository b" in bad.detail
    assert generalizes_check(spec, {"a": (0.7, 0.6)}).passed is None


def test_generalizes_not_run_warns_but_a_loss_blocks(tracker: Tracker) -> None:
    from kforge.registry.gates import generalizes_check

    spec = ModelSpec(name="kforge-gen", family="unit", asset_key="gen", metric="test_acc", baselines=("majority",),
                     min_test_rows=3, point_in_time=False, generalizes_over="repository",
                     generalizes_baseline="majority")
    base = _cand(0.9, pl.DataFrame({"x": [1]}))
    one_repo = Candidate(**{**base.__dict__, "spec": spec,
                            "checks": [*base.checks, generalizes_check(spec, {"only": (0.9, 0.5)})]})
    r = release(tracker, one_repo)
    assert r.check("generalizes").passed is None and r.decision == "promoted"
    losing = Candidate(**{**base.__dict__, "spec": spec, "train_table": pl.DataFrame({"x": [2]}),
                          "checks": [*base.checks, generalizes_check(spec, {"a": (0.9, 0.5), "b": (0.4, 0.5)})]})
    r2 = release(tracker, losing)
    assert r2.decision == "blocked" and "generalizes (failed)" in r2.reason


def test_reviewer_sees_experiment_kind_description_logged_model_and_links(tracker: Tracker,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17: the experiment opens on runs and says what its models are judged on; the model is one of
    the run's logged models; metadata links into the MLflow UI, numbers are floats, no -1 champion."""
    import dagster as dg

    monkeypatch.setenv("KFORGE_MLFLOW_URL", "http://mlflow.example:5000/")
    r1 = release(tracker, _cand(0.7, pl.DataFrame({"x": [1, 2, 3]})), dagster_run_id="run-1")
    client = tracker.client()
    exp = client.get_experiment(client.get_run(r1.run_id).info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "- **kforge-toy**: test_acc (higher is better)" in exp.tags["mlflow.note.content"]
    assert "baselines: majority" in exp.tags["mlflow.note.content"]
    import mlflow

    logged = mlflow.search_logged_models(experiment_ids=[exp.experiment_id], output_format="list")
    assert [m.source_run_id for m in logged] == [r1.run_id]
    md = r1.metadata()
    assert md["gate_champion_version"] == "" and md["gate_champion_score"] == ""  # no champion: empty, not -1
    assert md["gate_challenger_score"] == dg.MetadataValue.float(0.7)
    assert md["baseline_majority"] == dg.MetadataValue.float(0.6)
    ml = "?workflowType=machine_learning"  # the UI's "Model training" view, not its GenAI default
    assert md["mlflow_run"].url == f"http://mlflow.example:5000/#/experiments/{exp.experiment_id}/runs/{r1.run_id}{ml}"
    assert md["model_version_url"].url == f"http://mlflow.example:5000/#/models/kforge-toy/versions/1{ml}"
    assert md["mlflow_experiment"].url == f"http://mlflow.example:5000/#/experiments/{exp.experiment_id}/runs{ml}"
    assert md["released_at"][:2] == "20" and md["released_at"].endswith("Z")
    r2 = release(tracker, _cand(0.8, pl.DataFrame({"x": [4, 5, 6]})), dagster_run_id="run-2")
    assert r2.metadata()["gate_champion_version"] == 1
    note = client.get_experiment(exp.experiment_id).tags["mlflow.note.content"]
    assert note.count("- **kforge-toy**:") == 1  # one line per model, not one per release


def test_a_challenger_without_a_score_is_never_promoted(tracker: Tracker) -> None:
    """A NaN primary metric means the model was not measured: with no baseline gate to catch it and no
    champion yet, it must still not become champion (a champion with no score would then block every
    later challenger, whose comparison with it cannot be made)."""
    spec = ModelSpec(name="kforge-nobase", family="unit", asset_key="nobase", metric="test_acc",
                     min_test_rows=3, point_in_time=False)
    base = _cand(float("nan"), pl.DataFrame({"x": [1]}))
    r = release(tracker, Candidate(**{**base.__dict__, "spec": spec, "baselines": {}}))
    assert r.decision == "blocked" and "no test_acc" in r.reason
    assert r.check("beats_champion").passed is False
    assert tracker.champion(spec.name) is None
    scored = _cand(0.8, pl.DataFrame({"x": [2]}))
    r2 = release(tracker, Candidate(**{**scored.__dict__, "spec": spec, "baselines": {}}))
    assert r2.decision == "promoted" and int(tracker.champion(spec.name).version) == r2.version


def test_a_promotion_cut_short_by_a_kill_is_completed_by_the_rerun(tracker: Tracker,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the gate recorded "promoted" and before the champion alias moved: the rerun on the
    same data registers nothing and completes the promotion (instead of reporting "unchanged" forever);
    a version a human rolled back from is not promoted again."""
    from kforge.registry import aliases

    train = pl.DataFrame({"x": [1, 2, 3]})
    assert release(tracker, _cand(0.7, train)).promoted
    better = train.with_columns(pl.col("x") + 1)

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # what a kill between the decision tags and the alias move leaves

    with monkeypatch.context() as m:
        m.setattr(aliases, "promote", killed)
        with pytest.raises(KeyboardInterrupt):
            release(tracker, _cand(0.8, better))
    assert _tags(tracker, 2)["kforge.gate.decision"] == "promoted" and int(tracker.champion(SPEC.name).version) == 1
    r = release(tracker, _cand(0.8, better))
    assert r.version == 2 and r.decision == "promoted" and "promotion completed" in r.reason
    assert int(tracker.champion(SPEC.name).version) == 2 and tracker.version_of(SPEC.name, "previous-champion") == 1
    assert len(tracker.client().search_model_versions(f"name='{SPEC.name}'")) == 2
    assert release(tracker, _cand(0.8, better)).decision == "unchanged"
    assert tracker.rollback(SPEC.name) == 1
    assert release(tracker, _cand(0.8, better)).decision == "unchanged"
    assert int(tracker.champion(SPEC.name).version) == 1


def test_two_releases_of_the_same_data_at_once_register_it_once(tracker: Tracker) -> None:
    """The nightly job and a family's feedback run may release one model at the same moment: the second
    waits for the first and finds its version (unchanged), instead of registering the same data twice and
    both promoting "with no champion yet"."""
    import threading
    import time

    train = pl.DataFrame({"x": [1, 2, 3]})
    results: list = []

    def one() -> None:
        cand = _cand(0.7, train)
        save = cand.save_model

        def slow_save(d: Path) -> None:  # keeps the window between "is it new?" and "registered" open
            time.sleep(0.5)
            save(d)

        cand.save_model = slow_save
        results.append(release(tracker, cand))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(r.decision for r in results) == ["promoted", "unchanged"]
    assert len(tracker.client().search_model_versions(f"name='{SPEC.name}'")) == 1


def test_the_saved_model_must_score_what_the_run_measured(tracker: Tracker) -> None:
    """The run's score comes from the model in memory; the champion scorer reads the saved one. A saved model that
    scores otherwise is reported (WARN, ``saved_model_reproduces``), with both numbers in MLflow."""
    from dataclasses import replace

    from kforge.dagster_io.release import release_check_results

    train = pl.DataFrame({"x": [1, 2, 3]})
    ok = release(tracker, _cand(0.9, train))
    good = ok.check("saved_model_reproduces")
    assert good.passed is True and good.numbers["saved"] == pytest.approx(0.9) and good.numbers["difference"] == 0
    run = tracker.client().get_run(ok.run_id)
    assert run.data.metrics["saved_model_test_acc"] == pytest.approx(0.9)

    drifted = replace(_cand(0.95, train.with_columns(pl.col("x") * 2)), save_model=_threshold_model(0.7))
    r = release(tracker, drifted)
    bad = r.check("saved_model_reproduces")
    assert bad.passed is False and "does not score what the run measured" in bad.detail
    assert bad.numbers["run"] == pytest.approx(0.95) and bad.numbers["saved"] == pytest.approx(0.7)
    assert "saved_model_reproduces" not in r.reason          # WARN: it tells, it does not decide
    res = {c.check_name: c for c in release_check_results(r)}["saved_model_reproduces"]
    assert res.passed is False and res.severity.name == "WARN"

    def broken(d: Path) -> Scored:
        raise RuntimeError("cannot read model.json")

    r3 = release(tracker, replace(_cand(0.97, train.with_columns(pl.col("x") * 3)), score_registered=broken))
    assert r3.check("saved_model_reproduces").passed is False
    assert "could not be scored: RuntimeError" in r3.check("saved_model_reproduces").detail
