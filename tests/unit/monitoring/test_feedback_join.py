"""Followed rates, accuracy on feedback and drift for the families that learn of outcomes through
``kforge feedback`` (acceptance, healing, generation, mixins)."""

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from kforge.errors import InputError
from kforge.feedback import add_feedback
from kforge.monitoring import monitoring_report
from kforge.monitoring.calls import record_call, set_training_reference
from kforge.monitoring.descriptors import diff_descriptors, text_descriptors
from kforge.monitoring.feedback_join import joined
from kforge.monitoring.items import Item, log_items, message_key

SHA = "0123456789abcdef0123456789abcdef01234567"


def _entry(rep: dict, name: str, version: str) -> dict:
    return next(m for m in rep["models"] if m["model_name"] == name and m["model_version"] == version)


def test_message_key_matches_format_patch_and_plain_subject():
    patch = ("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: kforge <k@f>\n"
             "Date: now\nSubject: [PATCH] net/ice:  Fix Rx leak\n\nbody\n")
    assert message_key(patch) == message_key("net/ice: fix rx leak\n\nsome body")
    assert message_key(patch) != message_key("net/ice: fix tx leak")


def test_acceptance_accuracy_counts_only_feedback_after_the_prediction(warehouse):
    wh = warehouse
    add_feedback("acceptance", {"target": "email", "repo": "ltp", "item_id": "<early@x>", "outcome": True}, wh)
    time.sleep(0.01)
    items = [Item("email:<early@x>", "outcome", "true", 0.9), Item("email:<a@x>", "outcome", "true", 0.8),
             Item("email:<b@x>", "outcome", "true", 0.7), Item("email:<c@x>", "outcome", "false", 0.1)]
    log_items(wh, "acceptance", "kforge-acceptance-email", 1, items, log_id=1)
    log_items(wh, "acceptance", "kforge-acceptance-email", 2, [Item("email:<a@x>", "outcome", "false", 0.2)], log_id=2)
    time.sleep(0.01)
    for item, outcome in (("<a@x>", True), ("<b@x>", False), ("<c@x>", False), ("<never-scored@x>", True)):
        add_feedback("acceptance", {"target": "email", "repo": "ltp", "item_id": item, "outcome": outcome}, wh)
    rep = monitoring_report(wh)
    v1, v2 = _entry(rep, "kforge-acceptance-email", "1"), _entry(rep, "kforge-acceptance-email", "2")
    # v1: a right, b wrong, c right; the early row predates the prediction and is not counted
    assert v1["outcomes_n"] == 3 and v1["accuracy"] == pytest.approx(2 / 3)
    assert v2["outcomes_n"] == 1 and v2["accuracy"] == 0.0
    assert "followed_rate" not in v1  # a risk score is not a recommendation
    assert rep["totals"]["feedback_rows_joined"] == 3


def test_acceptance_short_sha_feedback_matches_full_sha(warehouse):
    wh = warehouse
    wh.replace("commits", pl.DataFrame({"repo": ["r"], "sha": [SHA]}))
    log_items(wh, "acceptance", "kforge-acceptance-commit", 4, [Item(f"commit:{SHA}", "outcome", "false", 0.1)])
    time.sleep(0.01)
    add_feedback("acceptance", {"target": "commit", "repo": "r", "item_id": SHA[:8].upper(), "outcome": True}, wh)
    j = joined(wh)
    assert j.height == 1 and j["correct"].to_list() == [False]


def test_healing_label_accuracy_and_fix_followed(warehouse):
    wh = warehouse
    items = [Item("e1", "crash_class", "kasan", 0.9), Item("e1", "error_class", "kernel-kasan-uaf", 0.9),
             Item("e2", "crash_class", "warning", 0.6), Item("e2", "error_class", "kernel-warning", 0.6)]
    log_items(wh, "healing", "kforge-healing", 3, items)
    time.sleep(0.01)
    rows = [{"kind": "label", "error_id": "e1", "log": "BUG: KASAN", "label": "crash_class", "value": "kasan"},
            {"kind": "label", "error_id": "e2", "log": "WARNING", "label": "crash_class", "value": "lockdep"},
            {"kind": "label", "log": "no id: cannot be joined", "label": "crash_class", "value": "kasan"},
            {"kind": "fix", "error_id": "e1", "error_class": "kernel-kasan-uaf", "strategy": "s", "success": True},
            {"kind": "fix", "error_id": "e2", "error_class": "py-keyerror", "strategy": "s", "success": False}]
    for r in rows:
        add_feedback("healing", r, wh)
    m = _entry(monitoring_report(wh), "kforge-healing", "3")
    assert m["accuracy"] == 0.5 and m["outcomes_n"] == 2
    assert m["followed_rate"] == 0.5 and m["followed_n"] == 2


def test_generation_verdicts_give_followed_and_accept_rate(warehouse):
    wh = warehouse
    for v, subject in ((1, "eal: fix leak"), (1, "net/ice: add rss"), (1, "doc: typo"), (2, "eal: fix leak")):
        log_items(wh, "generation", "kforge-generation-lm", v, [Item(message_key(f"Subject: [PATCH] {subject}\n"),
                                                                     "message", subject.split(":")[0], 0.5)])
    time.sleep(0.01)
    add_feedback("generation", {"verdict": "accept", "generated_message": "eal: fix leak", "model_version": 1}, wh)
    add_feedback("generation", {"verdict": "edit", "generated_message": "net/ice: add rss",
                                "final_message": "net/ice: add RSS hash"}, wh)
    add_feedback("generation", {"verdict": "reject", "generated_message": "doc: typo"}, wh)
    rep = monitoring_report(wh)
    v1 = _entry(rep, "kforge-generation-lm", "1")
    assert v1["outcomes_n"] == 3 and v1["accuracy"] == pytest.approx(1 / 3)
    assert v1["followed_rate"] == pytest.approx(2 / 3)
    assert all(m["model_version"] != "2" for m in rep["models"])  # the accept names version 1 only


def test_mixins_outcome_accuracy_and_followed(warehouse):
    wh = warehouse
    log_items(wh, "mixins", "kforge-mixins", 1, [Item("Caching,Retry|EFFECT", "outcome", "success", 0.8),
                                                  Item("Logging,Retry|EFFECT", "outcome", "failure", 0.3)])
    time.sleep(0.01)
    add_feedback("mixins", {"mixins": "Retry,Caching", "node_type": "EFFECT", "outcome": "failure",
                            "conflict_reason": "duplicate_side_effect"}, wh)
    add_feedback("mixins", {"mixins": "Logging,Retry", "node_type": "effect", "outcome": "failure"}, wh)
    m = _entry(monitoring_report(wh), "kforge-mixins", "1")
    assert m["accuracy"] == 0.5 and m["followed_rate"] == 0.5


def test_record_call_drift_alert_from_training_reference(warehouse):
    wh = warehouse
    rng = np.random.default_rng(0)
    train_diffs = ["diff --git a/f b/f\n@@ -1 +1 @@\n" + "+x\n" * int(n) for n in rng.integers(1, 20, 400)]
    set_training_reference(wh, "generation", "kforge-generation-lm", 5, diff_descriptors(train_diffs))
    live = ["diff --git a/f b/f\n@@ -1 +1 @@\n" + "+x\n" * int(n) for n in rng.integers(1, 20, 300)]
    record_call(wh, "generation", "kforge-generation-lm", 5, time.perf_counter(), 300, inputs=diff_descriptors(live))
    calm = _entry(monitoring_report(wh), "kforge-generation-lm", "5")
    huge = ["diff --git a/f b/f\n" + "@@ -1 +1 @@\n+y\n" * 300] * 300  # tree-wide: outside the training profile
    record_call(wh, "generation", "kforge-generation-lm", 5, time.perf_counter(), 300, inputs=diff_descriptors(huge))
    drifted = _entry(monitoring_report(wh), "kforge-generation-lm", "5")
    assert calm["psi"]["lines_added"] < 0.1 < 0.2 < drifted["psi"]["lines_added"]
    assert drifted["drift_alert"] and not calm["drift_alert"]
    assert drifted["prediction_calls"] == 2 and drifted["predictions"] == 600


def test_text_descriptors_see_frames_and_hex():
    d = text_descriptors(['Traceback (most recent call last):\n  File "a.py", line 3, in f\nKeyError: 0x1f', ""])
    assert d.row(0, named=True)["n_frame_lines"] == 1 and d.row(0, named=True)["n_hex"] == 1
    assert d.row(1, named=True)["n_chars"] == 0


def test_bad_items_are_rejected_and_monitoring_never_breaks_serving(warehouse, capsys):
    with pytest.raises(InputError, match="non-empty key"):
        log_items(warehouse, "healing", "kforge-healing", 1, [Item("", "crash_class", "x")])
    record_call(warehouse, "healing", "kforge-healing", 1, time.perf_counter(), 1, items=[Item("", "f", "x")])
    assert "not logged for monitoring" in capsys.readouterr().err


def test_old_prediction_table_rows_still_count(warehouse):
    """Outcomes logged directly (telemetry's closed loop) and joined feedback add up."""
    from kforge.monitoring import log_outcomes

    log_outcomes(warehouse, "acceptance", "kforge-acceptance-email", 1, 4, 4,
                 observed_at=datetime.now(UTC) - timedelta(days=1))
    log_items(warehouse, "acceptance", "kforge-acceptance-email", 1, [Item("email:<z@x>", "outcome", "false", 0.1)])
    time.sleep(0.01)
    add_feedback("acceptance", {"target": "email", "repo": "ltp", "item_id": "<z@x>", "outcome": True}, warehouse)
    m = _entry(monitoring_report(warehouse), "kforge-acceptance-email", "1")
    assert m["outcomes_n"] == 5 and m["accuracy"] == pytest.approx(4 / 5) and m["accuracy_recent"] == 0.0


def test_healing_classify_output_becomes_joinable_items():
    from kforge.cli.healing import _descriptors, _items

    out = [{"id": 7, "kind": "kernel", "pred_crash_class": "kasan", "confidence_crash_class": 0.9,
            "pred_syz_type": None, "confidence": 0.9, "rule_id": "kernel-kasan"},
           {"id": "t2", "kind": "python", "pred_label_root_cause": "typo", "confidence": 0.4, "rule_id": None}]
    items = _items(out)
    assert [(i.key, i.field, i.prediction) for i in items] == [
        ("7", "crash_class", "kasan"), ("7", "error_class", "kernel-kasan"), ("t2", "label_root_cause", "typo")]
    assert items[0].score == 0.9 and items[2].score == 0.4
    d = _descriptors([{"id": 1, "log": "BUG: KASAN\n[<ffffffff81000000>] f+0x1/0x2"}, {"id": 2, "traceback": "x"}])
    assert d["n_lines"].to_list() == [2, 1] and d["n_hex"].to_list() == [2, 0]  # 0x1, 0x2
    assert d["n_frame_lines"].to_list() == [1, 0]


def test_telemetry_feedback_rows_judge_themselves(warehouse):
    rows = [{"model": "oom_forecaster", "host": "h1", "predicted": "oom", "actual": "oom", "model_version": 2},
            {"model": "oom_forecaster", "host": "h2", "predicted": "oom", "actual": "no_oom", "model_version": 2},
            {"model": "oom_recommender", "host": "h1", "predicted": "compact", "actual": "no_oom", "followed": True,
             "model_version": 2},
            {"model": "oom_recommender", "host": "h2", "predicted": "kill_largest", "actual": "oom", "followed": False,
             "model_version": 2}]
    for r in rows:
        add_feedback("telemetry", r, warehouse)
    rep = monitoring_report(warehouse)
    fc, rec = _entry(rep, "kforge-telemetry-oom", "2"), _entry(rep, "kforge-telemetry-recommender", "2")
    assert fc["accuracy"] == 0.5 and "followed_rate" not in fc
    assert rec["followed_rate"] == 0.5 and "accuracy" not in rec
