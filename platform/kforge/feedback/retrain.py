"""When to retrain a family on its feedback: enough new labelled rows, or the champion's live error
on them drifting past its held-out error. Pure logic behind every feedback sensor
(:func:`kforge.dagster_io.sensors.feedback_sensor`); test the decision, not the tick.

The cursor is one JSON format for every family: ``{"last_request_id": <feedback_id>}``, the
newest feedback row a retraining run was already requested for.
"""

import json
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class RetrainPolicy:
    """Thresholds of one family's feedback sensor (they appear in the sensor's description)."""

    min_new_rows: int = 50
    max_drift: float | None = None   # live error minus held-out error above this triggers a run
    min_drift_rows: int = 20         # rows needed before the live error is trusted
    error_name: str = "error"        # what the live error is (e.g. "Brier", "rejection rate")
    reference_name: str = ""         # what it is compared with; default "its held-out <error_name>"

    def reference(self) -> str:
        return self.reference_name or f"its held-out {self.error_name}"

    def describe(self, family: str) -> str:
        out = f"Retrain {family} after >= {self.min_new_rows} new labelled feedback rows"
        if self.max_drift is not None:
            out += (f", or when the champion's {self.error_name} on >= {self.min_drift_rows} new rows exceeds "
                    f"{self.reference()} by more than {self.max_drift:g}")
        return out + ". The retraining run reads the feedback that triggered it."


@dataclass(frozen=True)
class Drift:
    """The champion's error on the new feedback (``live``, over ``n`` rows) vs ``reference`` (its
    held-out error, or the fixed ceiling the policy's ``reference_name`` names)."""

    live: float
    reference: float
    n: int


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str
    cursor: str
    run_key: str | None
    n_new: int


def parse_cursor(cursor: str | None) -> int:
    """The last feedback id a run was requested for (0 for no or an unreadable cursor)."""
    if not cursor:
        return 0
    try:
        value = json.loads(cursor)
        return int(value.get("last_request_id", 0)) if isinstance(value, dict) else int(value)
    except (ValueError, TypeError, AttributeError):
        return 0


def make_cursor(last_id: int) -> str:
    return json.dumps({"last_request_id": int(last_id)})


def decide(family: str, cursor: str | None, new_rows: pl.DataFrame, drift: Drift | None,
           policy: RetrainPolicy) -> Decision:
    """``new_rows``: feedback rows with ``feedback_id`` > the cursor."""
    last = parse_cursor(cursor)
    keep = make_cursor(last)
    n = new_rows.height
    if n == 0:
        return Decision(False, f"no new {family} feedback after id {last}", keep, None, 0)
    top = int(new_rows["feedback_id"].max())  # type: ignore[arg-type]
    moved = make_cursor(top)
    if n >= policy.min_new_rows:
        return Decision(True, f"{n} new labelled rows >= {policy.min_new_rows}", moved, f"{family}-feedback-{top}", n)
    if policy.max_drift is not None and drift is not None and drift.n >= policy.min_drift_rows \
            and drift.live - drift.reference > policy.max_drift:
        return Decision(True, f"champion {policy.error_name} {drift.live:.3f} on {drift.n} new rows exceeds "
                              f"{policy.reference()} {drift.reference:.3f} by more than {policy.max_drift:g}", moved,
                        f"{family}-drift-{top}", n)
    why = f"{n} new row(s) < {policy.min_new_rows}"
    if policy.max_drift is not None:
        why += ("; no live error for them" if drift is None else
                f"; {policy.error_name} {drift.live:.3f} on {drift.n} rows vs {policy.reference()} "
                f"{drift.reference:.3f}")
    return Decision(False, why, keep, None, n)
