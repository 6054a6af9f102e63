"""Vectorised "strictly before t" aggregates over a history, with ties handled exactly.

Rows sharing a timestamp never see each other (a series applied in one second is not its own
history), so removing every row with a later timestamp never changes a row's values.
"""

from collections.abc import Sequence

import polars as pl

YEAR_S = 365 * 86400


def prior_sum(df: pl.DataFrame, by: Sequence[str], value: pl.Expr, out: str, ts: str = "t") -> pl.DataFrame:
    """Add ``out``: the sum of ``value`` over rows of the same ``by`` group with a smaller ``ts``."""
    keys = [*by, ts]
    agg = (df.group_by(keys).agg(value.sum().alias("_v")).sort(keys)
           .with_columns((pl.col("_v").cum_sum().over(list(by)) - pl.col("_v")).alias(out)))
    return df.join(agg.select(*keys, out), on=keys, how="left", nulls_equal=True)


def cumulative(events: pl.DataFrame, by: Sequence[str], value: pl.Expr, ts: str = "t") -> pl.DataFrame:
    """Per ``by`` group and distinct ``ts``: the inclusive running sum (for :func:`sum_before`)."""
    keys = [*by, ts]
    return (events.group_by(keys).agg(value.sum().alias("_v")).sort(keys)
            .with_columns(pl.col("_v").cum_sum().over(list(by)).alias("_cum")).drop("_v"))


def sum_before(df: pl.DataFrame, cum: pl.DataFrame, by: Sequence[str], at: pl.Expr, out: str,
               ts: str = "t") -> pl.DataFrame:
    """Add ``out``: the sum of events in ``cum``'s group with ``ts < at`` (0 when none)."""
    left = df.with_columns((at - 1).cast(pl.Int64).alias("_at")).sort("_at")
    right = cum.rename({ts: "_at"}).with_columns(pl.col("_at").cast(pl.Int64)).sort("_at")
    joined = left.join_asof(right, on="_at", by=list(by), strategy="backward", check_sortedness=False)
    return joined.with_columns(pl.col("_cum").fill_null(0).alias(out)).drop("_at", "_cum")


def window_count(df: pl.DataFrame, cum: pl.DataFrame, by: Sequence[str], seconds: int, out: str,
                 ts: str = "t") -> pl.DataFrame:
    """Add ``out``: events of the group in ``[t - seconds, t)``."""
    df = sum_before(df, cum, by, pl.col(ts), "_now", ts)
    df = sum_before(df, cum, by, pl.col(ts) - seconds, "_then", ts)
    return df.with_columns((pl.col("_now") - pl.col("_then")).alias(out)).drop("_now", "_then")


def previous_ts(df: pl.DataFrame, by: Sequence[str], out: str, ts: str = "t") -> pl.DataFrame:
    """Add ``out``: the latest distinct earlier ``ts`` of the group (null for the first)."""
    keys = [*by, ts]
    prev = (df.select(keys).unique().sort(keys)
            .with_columns(pl.col(ts).shift(1).over(list(by)).alias(out)))
    return df.join(prev, on=keys, how="left", nulls_equal=True)
