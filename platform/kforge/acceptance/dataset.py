"""Labels with right-censoring and time-ordered splits for both acceptance targets.

Both targets have an *event time* per row (commits: the first later ``Fixes:``/revert that points
at the commit; e-mails: when the patch was merged), so a label is always "as of" a moment:
``y = event_ts < as_of``. Right-censoring is handled by **exclusion plus as-of labels**:

* training rows are labelled as of the split time (nothing observed after it is used) and rows
  younger than ``min_observation_days`` at the split time are excluded (their label is not known
  yet, they would be counted as negatives);
* test rows are labelled as of the data snapshot (the newest event in the data) and rows younger
  than ``min_observation_days`` at the snapshot are excluded for the same reason.

Example::

    split = time_split(frame, cutoff_ts=1640995200, test_end_ts=1672531200, min_observation_days=180)
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from kforge.errors import InputError
from kforge.features.build import commit_event_times

DAY = 86400


def commit_survival_frame(features: pl.DataFrame, chains: pl.DataFrame,
                          feedback: pl.DataFrame | None = None) -> pl.DataFrame:
    """Features + ``event_ts``; feedback rows saying a commit was later fixed add an event at
    their ``observed_ts`` when the chains did not have one."""
    ev = commit_event_times(chains)
    out = features.join(ev, on=["repo", "sha"], how="left")
    if feedback is not None and feedback.height:
        fb = (feedback.filter((pl.col("target") == "commit") & pl.col("outcome"))
              .select("repo", pl.col("item_id").alias("sha"), pl.col("observed_ts").alias("fb_ts"))
              .group_by("repo", "sha").agg(pl.col("fb_ts").min()))
        out = (out.join(fb, on=["repo", "sha"], how="left")
               .with_columns(pl.coalesce("event_ts", "fb_ts").alias("event_ts")).drop("fb_ts"))
    return out.with_columns(pl.col("reverted").fill_null(False))


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame
    test: pl.DataFrame
    cutoff_ts: int
    test_end_ts: int
    snapshot_ts: int
    min_observation_days: int
    excluded_censored_train: int
    excluded_censored_test: int
    train_labels: str = "as_of_cutoff"

    def describe(self) -> dict[str, object]:
        iso = lambda ts: datetime.fromtimestamp(ts, UTC).date().isoformat()  # noqa: E731
        return {
            "split_cutoff": iso(self.cutoff_ts), "split_test_end": iso(self.test_end_ts),
            "label_snapshot": iso(self.snapshot_ts), "min_observation_days": self.min_observation_days,
            "n_train": self.train.height, "n_test": self.test.height,
            "train_positive_rate": float(self.train["y"].mean() or 0.0) if self.train.height else 0.0,
            "test_positive_rate": float(self.test["y"].mean() or 0.0) if self.test.height else 0.0,
            "excluded_censored_train": self.excluded_censored_train,
            "excluded_censored_test": self.excluded_censored_test, "train_labels": self.train_labels,
        }


def parse_date(value: str) -> int:
    try:
        return int(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp())
    except ValueError:
        raise InputError(f"not an ISO date: {value!r} (expected YYYY-MM-DD)") from None


def time_split(frame: pl.DataFrame, cutoff_ts: int | None = None, test_end_ts: int | None = None,
               min_observation_days: int = 180, snapshot_ts: int | None = None,
               test_fraction: float = 0.2, train_labels: str = "as_of_cutoff") -> Split:
    """Train on rows before ``cutoff_ts`` (labels as of the cutoff), test on
    ``[cutoff_ts, test_end_ts)`` (labels as of the snapshot). ``cutoff_ts=None`` picks the time
    that leaves ``test_fraction`` of the observable rows for testing.

    ``train_labels="snapshot"`` labels training rows with everything observed up to the snapshot
    (the usual offline protocol, which uses fixes that landed after the cutoff); the default
    ``"as_of_cutoff"`` is what a model trained at the cutoff could really have known."""
    if train_labels not in ("as_of_cutoff", "snapshot"):
        raise InputError(f"train_labels must be as_of_cutoff or snapshot, got {train_labels!r}")
    if frame.height == 0:
        raise InputError("no rows to split")
    if "t" not in frame.columns or "event_ts" not in frame.columns:
        raise InputError("the frame needs 't' and 'event_ts' columns")
    snap = int(snapshot_ts if snapshot_ts is not None else
               max(int(frame["t"].max()), int(frame["event_ts"].max() or 0)))  # type: ignore[arg-type]
    min_obs = min_observation_days * DAY
    observable = frame.filter(pl.col("t") <= snap - min_obs)
    if cutoff_ts is None:
        if observable.height < 10:
            raise InputError(f"only {observable.height} rows are older than {min_observation_days} days: "
                             "too few to split; lower min_observation_days")
        cutoff_ts = int(observable["t"].sort()[int(observable.height * (1 - test_fraction))])
    end = int(test_end_ts) if test_end_ts is not None else snap + 1
    if end <= cutoff_ts:
        raise InputError("the test window ends before it starts: check the split dates")
    before = frame.filter(pl.col("t") < cutoff_ts)
    label_at = cutoff_ts if train_labels == "as_of_cutoff" else snap + 1
    train = before.filter(pl.col("t") <= min(cutoff_ts, snap) - min_obs).with_columns(
        (pl.col("event_ts").is_not_null() & (pl.col("event_ts") < label_at)).alias("y"))
    window = frame.filter((pl.col("t") >= cutoff_ts) & (pl.col("t") < end))
    test = window.filter(pl.col("t") <= snap - min_obs).with_columns(
        (pl.col("event_ts").is_not_null() & (pl.col("event_ts") <= snap)).alias("y"))
    return Split(train.sort("t"), test.sort("t"), int(cutoff_ts), end, snap, min_observation_days,
                 before.height - train.height, window.height - test.height, train_labels)
