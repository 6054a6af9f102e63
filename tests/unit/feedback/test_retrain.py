"""The one retraining decision behind every feedback sensor."""

import polars as pl
from kforge.feedback.retrain import Drift, RetrainPolicy, decide, make_cursor, parse_cursor

POLICY = RetrainPolicy(min_new_rows=3, max_drift=0.05, min_drift_rows=2, error_name="Brier")


def _rows(ids: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"feedback_id": ids})


def test_no_rows_skips_and_keeps_the_cursor() -> None:
    d = decide("fam", make_cursor(7), _rows([]), None, POLICY)
    assert not d.run and d.cursor == '{"last_request_id": 7}' and "after id 7" in d.reason


def test_enough_rows_request_a_run_keyed_by_the_newest_id() -> None:
    d = decide("fam", None, _rows([1, 2, 3]), None, POLICY)
    assert d.run and d.run_key == "fam-feedback-3" and parse_cursor(d.cursor) == 3


def test_drift_requests_a_run_only_past_the_threshold_and_row_minimum() -> None:
    assert decide("fam", None, _rows([1, 2]), Drift(0.30, 0.20, 2), POLICY).run_key == "fam-drift-2"
    assert not decide("fam", None, _rows([1, 2]), Drift(0.24, 0.20, 2), POLICY).run
    assert not decide("fam", None, _rows([1]), Drift(0.90, 0.20, 1), POLICY).run
    no_drift_policy = RetrainPolicy(min_new_rows=3)
    assert not decide("fam", None, _rows([1, 2]), Drift(0.9, 0.1, 2), no_drift_policy).run


def test_cursor_is_one_json_format_and_tolerates_garbage() -> None:
    assert parse_cursor(None) == 0 and parse_cursor("not json") == 0 and parse_cursor("12") == 12
    assert parse_cursor(make_cursor(5)) == 5


def test_policy_describes_its_thresholds() -> None:
    text = POLICY.describe("acceptance")
    assert ">= 3 new labelled" in text and "0.05" in text and "Brier" in text


def test_a_fixed_reference_is_named_as_such_in_the_reason() -> None:
    ceiling = RetrainPolicy(min_new_rows=10, max_drift=0.0, min_drift_rows=2, error_name="rejection rate",
                            reference_name="the policy ceiling")
    d = decide("fam", None, _rows([1, 2]), Drift(0.9, 0.7, 2), ceiling)
    assert d.run and "exceeds the policy ceiling 0.700" in d.reason and "held-out" not in d.reason
    assert "held-out" not in ceiling.describe("fam") and "exceeds the policy ceiling by" in ceiling.describe("fam")
    assert "exceeds its held-out Brier 0.200" in decide("fam", None, _rows([1, 2]), Drift(0.3, 0.2, 2), POLICY).reason
