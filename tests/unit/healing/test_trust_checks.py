"""Audit (session 9): options no model can be measured with end as one ``kforge: error:`` line before anything is
registered; feedback on one error never straddles the split; the baseline and the AUC are measured, never made up."""

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from kforge.cli.main import main
from kforge.config import Paths
from kforge.errors import InputError
from kforge.healing.config import HealingConfig
from kforge.healing.effectiveness import metrics
from kforge.healing.model import train_bundle
from kforge.healing.report import run_evaluation
from kforge.healing.scoring import baseline_accuracy
from kforge.healing.train import split_tasks, train_and_release
from kforge.healing.training import build_tasks
from kforge.registry import Tracker
from kforge.storage import Warehouse

from tests.unit.healing.test_release import _corpus_rows, store_outcomes


@pytest.fixture()
def stored(kforge_home: Path) -> tuple[Tracker, Warehouse]:
    return store_outcomes(kforge_home, 40)


@pytest.mark.parametrize("change, message", [
    ({"test_share": 1.5}, "test share"), ({"test_share": -0.1}, "test share"),
    ({"test_share": 0.0}, "test share"), ({"test_share": 1.0}, "test share"),
    ({"replay_steps": 0}, "replay steps"), ({"seed": -1}, "seed"), ({"prior_weight": -1.0}, "prior weight"),
    ({"models": ()}, "no healing model"),
])
def test_options_no_model_can_be_measured_with_are_input_errors(stored: tuple[Tracker, Warehouse], change: dict,
                                                                 message: str) -> None:
    """Before: a share outside [0, 1] or 0 replay steps ended in a traceback (ValueError, ZeroDivisionError),
    a share of 0 registered a blocked version scored NaN, no model at all trained nothing and said nothing."""
    tracker, wh = stored
    config = HealingConfig(**{"models": ("bandit", "effectiveness"), "replay_steps": 50, **change})
    with pytest.raises(InputError, match=message):
        train_and_release(tracker, wh, config)
    assert tracker.client().search_registered_models() == []   # nothing registered


def test_cli_bad_test_share_is_one_error_line(stored: tuple[Tracker, Warehouse], kforge_home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(kforge_home), "healing", "train", "--models", "bandit", "--test-share", "1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["kforge: error: test share must be between 0 and 1 (both excluded), got 1.5"]


def test_evaluate_needs_two_folds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: ``--folds 1`` reached scikit-learn's GroupKFold and ended in a ValueError traceback."""
    with pytest.raises(InputError, match="folds must be at least 2"):
        next(run_evaluation(tmp_path, "python", folds=1))
    (tmp_path / "healing").mkdir()
    assert main(["--home", str(tmp_path / "h"), "--data", str(tmp_path), "healing", "evaluate", "--folds", "0"]) == 2
    assert capsys.readouterr().err.startswith("kforge: error: folds must be at least 2")


def test_feedback_on_one_error_stays_on_one_side_of_the_split() -> None:
    """Before: every label feedback row was its own group (``fb-<feedback id>``), so two labels of one error, or a
    label of a corpus error, could put the same text in training and in the held-out rows."""
    rows = _corpus_rows(60)
    tb = "Traceback\nNameError: name 'x' is not defined\n"
    fb = pl.DataFrame([
        *({"feedback_id": i, "kind": "label", "traceback": tb, "label": "label_root_cause", "value": "typo",
           "error_id": "err-1", "log": None} for i in range(1, 21)),
        {"feedback_id": 21, "kind": "label", "traceback": rows[3]["traceback"], "label": "label_root_cause",
         "value": "typo", "error_id": "corpus-p3", "log": None},
        {"feedback_id": 22, "kind": "label", "traceback": tb, "label": "label_root_cause", "value": "typo",
         "error_id": None, "log": None},
    ])
    tasks = build_tasks(None, rows, fb)
    groups = {r["id"]: r["group"] for r in tasks["python"][0][60:]}
    assert groups == {"err-1": "err-1", "corpus-p3": "p3", "fb-22": "fb-22"}
    train, test, check = split_tasks(tasks, 0.3, "kforge")
    assert check.passed and check.numbers["overlapping_groups"] == 0

    def ids(side: dict) -> set[str]:
        return {r["id"] for r in side["python"][0]}

    assert not (ids(train) & ids(test))   # neither err-1 nor corpus-p3 is on both sides


def test_one_class_baseline_answers_that_class() -> None:
    """Before: 0.0 whenever training had one class, a number any model beat."""
    train = [{"id": f"a{i}", "traceback": f"Traceback\nKeyError: 'k{i}'\n", "y": "typo"} for i in range(5)]
    test = [{"id": f"b{i}", "traceback": f"Traceback\nKeyError: 'q{i}'\n", "y": y}
            for i, y in enumerate(["typo", "typo", "typo", "other"])]
    assert baseline_accuracy(train, test, "y") == 0.75
    assert math.isnan(baseline_accuracy([], test, "y"))


def test_auc_of_one_outcome_is_not_a_number() -> None:
    """Before: 0.5 when every outcome was a success (or every one a failure): an AUC that was never measured."""
    assert math.isnan(metrics(np.ones(6), np.linspace(0.2, 0.9, 6))["auc"])
    assert metrics(np.array([0.0, 1.0, 0.0, 1.0]), np.full(4, 0.7))["auc"] == 0.5
    assert metrics(np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.1, 0.9, 0.2, 0.8]))["auc"] == 1.0


def test_one_group_trains_no_label_model() -> None:
    """Before: rows of a single group reached GroupKFold(n_splits=1) and raised; now the label has no model (the
    rules answer), as with too few rows."""
    rows = [{**r, "group": "one"} for r in _corpus_rows(12)]
    for i, r in enumerate(rows):
        r["label_root_cause"] = ["typo", "other"][i % 2]
    model = train_bundle({"python": (rows, ("label_root_cause",), "group")}, kinds=("linear",))
    assert model.models["python"] == {}
    assert model.classify([{"id": "x", "traceback": rows[0]["traceback"]}])[0]["rule_id"] == "py-keyerror"


def test_a_guilty_file_row_without_its_fields_is_one_error(tmp_path: Path) -> None:
    """Before: a row without ``report`` ended ``kforge healing evaluate`` in a KeyError traceback."""
    from kforge.healing.report import guilty_file_scores

    (tmp_path / "healing").mkdir()
    (tmp_path / "healing" / "syzkaller_guilty_file.jsonl").write_text('{"guilty_file": "a.c"}\n')
    with pytest.raises(InputError, match=r"syzkaller_guilty_file.jsonl:1: needs 'report'"):
        guilty_file_scores(tmp_path)


def test_groups_with_rows_read_while_writing_rules_never_count_as_held_out() -> None:
    """A row a hand-written rule was written after reading is not held out for the rules, so its whole group
    trains; the registered held-out figure is scored without it. Before: such rows were scored as held out."""
    from kforge.healing.evaluate import read_rows

    read = sorted(read_rows())[:40]   # the real provenance list (kernel rows of the shared syzkaller file)
    rows = [{"id": rid, "log": f"BUG: x{i}", "crash_class": "warning", "title": f"t{i % 20}"} for i, rid in
            enumerate(read)] + [{"id": f"fresh-{i}", "log": f"BUG: y{i}", "crash_class": "warning",
                                 "title": f"u{i}"} for i in range(40)]
    tasks = {"kernel": (rows, ("crash_class",), "title")}
    _, plain_test, _ = split_tasks(tasks, 0.3, "kforge", not_held_out=set())
    assert any(r["id"] in read for r in plain_test["kernel"][0])   # the hash alone puts some in test
    train, test, check = split_tasks(tasks, 0.3, "kforge")
    test_ids, train_ids = {r["id"] for r in test["kernel"][0]}, {r["id"] for r in train["kernel"][0]}
    assert not test_ids & set(read) and set(read) <= train_ids
    assert {r["title"] for r in test["kernel"][0]}.isdisjoint({r["title"] for r in train["kernel"][0]})
    assert check.passed and check.numbers["groups_not_held_out"] > 0 and test_ids
    assert "kept in training" in check.detail


def test_explain_does_not_hide_an_unreadable_champion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Before: any error loading the champion (a digest mismatch, say) printed "rules only" and exited 0."""
    import kforge.healing.pyfunc as pyfunc

    home, tb = tmp_path / "home", tmp_path / "tb.txt"
    tb.write_text("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nKeyError: 'k'\n")
    assert Tracker(Paths.of(home)).champion("kforge-healing") is None   # a registry exists, with no champion
    assert main(["--home", str(home), "healing", "explain", str(tb)]) == 0   # no champion: the rules answer
    capsys.readouterr()

    def broken(tracker: object, name: str = "kforge-healing") -> None:
        raise InputError("champion kforge-healing v3: artifact digest mismatch")

    monkeypatch.setattr(pyfunc, "load_champion", broken)
    assert main(["--home", str(home), "healing", "explain", str(tb)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["kforge: error: champion kforge-healing v3: artifact digest mismatch"]
