"""Point-in-time history: never the row's own label, never a same-instant or later row."""

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from kforge.mixins.dataset import feature_columns, feature_frame
from kforge.mixins.features import history_frame
from kforge.mixins.leakage import leakage_report, separability_check
from kforge.mixins.outcomes import trials_frame
from kforge.mixins.snapshot import HistorySnapshot

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(spec: list[tuple[list[str], str, bool, int]]) -> pl.DataFrame:
    df = trials_frame([{"mixins": m, "node_type": n, "passed": p, "observed_at": T0 + timedelta(seconds=s)}
                       for m, n, p, s in spec], source="test")
    return df.with_columns(outcome_id=pl.int_range(1, df.height + 1, dtype=pl.Int64))


def test_history_counts_only_strictly_earlier_rows():
    df = _rows([(["Caching", "Retry"], "EFFECT", True, 0), (["Caching", "Retry"], "EFFECT", False, 1),
                (["Caching", "Retry"], "EFFECT", False, 1), (["Caching", "Retry"], "EFFECT", True, 2)])
    h = history_frame(df).sort("outcome_id")
    assert h["h_pair_n"].to_list() == [0, 1, 1, 3]              # the two rows at t=1 do not see each other
    assert h["h_pair_rate"][0] is None                           # unobserved: no rate, not a prior posing as one
    assert h["h_pair_rate"][3] == (1 + 1) / (3 + 2)
    assert h["h_mixin_unseen"].to_list() == [2, 0, 0, 0]


def test_flipping_a_label_never_changes_that_rows_features(outcomes, catalogue):
    sample = outcomes.head(400)
    base = feature_frame(sample, catalogue).sort("outcome_id")
    cols = feature_columns(base)
    k = 250
    flipped = sample.with_columns(passed=pl.when(pl.col("outcome_id") == k).then(~pl.col("passed")).otherwise(pl.col("passed")))
    other = feature_frame(flipped, catalogue).sort("outcome_id")
    row_a, row_b = base.filter(pl.col("outcome_id") == k), other.filter(pl.col("outcome_id") == k)
    assert row_a.select(cols).fill_null(-1).equals(row_b.select(cols).fill_null(-1))
    later = base.filter(pl.col("outcome_id") > k).select(cols).fill_null(-1)
    assert not later.equals(other.filter(pl.col("outcome_id") > k).select(cols).fill_null(-1))  # later rows do see it


def test_snapshot_matches_point_in_time_features_for_a_later_query(outcomes):
    sample = outcomes.head(600)
    probe = sample.row(599, named=True)
    later = trials_frame([{"mixins": probe["mixins"], "node_type": probe["node_type"], "passed": True,
                           "observed_at": sample["observed_at"].max() + timedelta(days=1)}], source="probe")
    both = pl.concat([sample, later.with_columns(outcome_id=pl.lit(10**6, pl.Int64))])
    h = history_frame(both).filter(pl.col("outcome_id") == 10**6).row(0, named=True)
    snap = HistorySnapshot.of(sample).features(probe["mixins"], probe["node_type"])
    for col, v in snap.items():
        if col.startswith("hb_") or col == "h_subpair_min_rate" and len(probe["mixins"]) > 2:
            continue
        assert (v is None and h[col] is None) or np.isclose(v, h[col]), col


def test_masking_hides_pair_history(outcomes, catalogue):
    f = feature_frame(outcomes.head(500), catalogue, mask_fraction=0.5, seed=3)
    assert (f["h_pair_n"] == 0).mean() > 0.4


def test_leakage_checks_pass_on_real_features_and_catch_label_functions(outcomes, catalogue):
    sample = outcomes.head(600)

    def build(o: pl.DataFrame) -> pl.DataFrame:
        return feature_frame(o, catalogue)

    frame = build(sample)
    cols = feature_columns(frame)
    clean = leakage_report(sample, build, cols, frame.tail(200), cuts=2)
    assert clean.passed, clean.describe()

    def leaky(o: pl.DataFrame) -> pl.DataFrame:   # the original system's bug: the row's own outcome as input
        f = build(o)
        return f.with_columns(own_rate=pl.col("passed").cast(pl.Float64))

    bad = leakage_report(sample, leaky, [*cols, "own_rate"], leaky(sample).tail(200), cuts=2)
    assert not bad.passed and "own_rate" in bad.perturbed and "own_rate" in bad.separable

    def inclusive(o: pl.DataFrame) -> pl.DataFrame:  # a "historical" rate that includes the row itself
        f = build(o)
        return f.with_columns(rate_incl=pl.col("passed").cast(pl.Float64).cum_sum().over("combination")
                              / pl.int_range(1, pl.len() + 1).over("combination"))

    bad2 = leakage_report(sample, inclusive, [*cols, "rate_incl"], inclusive(sample).tail(200), cuts=2)
    assert "rate_incl" in bad2.perturbed
    assert separability_check(frame, cols) == {}
