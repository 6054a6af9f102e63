"""Point-in-time windowed features over telemetry samples, and OOM-horizon labels.

Every feature at sample ``t`` uses only samples ``<= t`` of the same run (shifts and trailing
rolling windows inside ``run_id``); labels look forward and are never features.
"""

import numpy as np
import polars as pl

FEATURES = [
    "free_frac", "avail_frac", "frag_index", "largest_free_log2",
    "d_free_5", "d_free_15", "d_free_30", "d_avail_5", "d_avail_15", "d_avail_30",
    "avail_min_30", "d_frag_10", "frag_max_30", "fail_1", "fail_5", "fail_30",
    "stall_1", "stall_5", "stall_30", "compactions_30", "tte_30", "d_anon_30",
    "usable_frac", "d_usable_10", "d_usable_30", "tte_usable", "accel_avail", "tte_5",
    "d_anon_5", "accel_anon",
]


def _lag(col: str, k: int) -> pl.Expr:
    return pl.col(col).shift(k).over("run_id").fill_null(pl.col(col).first().over("run_id"))


def _rsum(col: str, k: int) -> pl.Expr:
    return pl.col(col).rolling_sum(k, min_samples=1).over("run_id")


def window_features(samples: pl.DataFrame) -> pl.DataFrame:
    """Add :data:`FEATURES` to telemetry samples (sorted by run and time)."""
    df = samples.sort("run_id", "t_s").with_columns(
        (pl.col("free_pages") / pl.col("total_pages")).alias("free_frac"),
        ((pl.col("free_pages") + pl.col("cache_pages")) / pl.col("total_pages")).alias("avail_frac"),
        (pl.col("anon_pages") / pl.col("total_pages")).alias("anon_frac"),
        (pl.col("largest_free_block").cast(pl.Float64) + 1).log(2).alias("largest_free_log2"),
        (pl.col("free_pages") * (1 - pl.col("frag_index")) / pl.col("total_pages")).alias("usable_frac"),
    )
    df = df.with_columns(
        *[(pl.col("free_frac") - _lag("free_frac", k)).alias(f"d_free_{k}") for k in (5, 15, 30)],
        *[(pl.col("avail_frac") - _lag("avail_frac", k)).alias(f"d_avail_{k}") for k in (5, 15, 30)],
        pl.col("avail_frac").rolling_min(30, min_samples=1).over("run_id").alias("avail_min_30"),
        (pl.col("frag_index") - _lag("frag_index", 10)).alias("d_frag_10"),
        pl.col("frag_index").rolling_max(30, min_samples=1).over("run_id").alias("frag_max_30"),
        pl.col("alloc_failures").cast(pl.Float64).alias("fail_1"),
        _rsum("alloc_failures", 5).cast(pl.Float64).alias("fail_5"),
        _rsum("alloc_failures", 30).cast(pl.Float64).alias("fail_30"),
        pl.col("stall_ms").alias("stall_1"),
        _rsum("stall_ms", 5).alias("stall_5"),
        _rsum("stall_ms", 30).alias("stall_30"),
        _rsum("compactions", 30).cast(pl.Float64).alias("compactions_30"),
        (pl.col("anon_frac") - _lag("anon_frac", 30)).alias("d_anon_30"),
        (pl.col("anon_frac") - _lag("anon_frac", 5)).alias("d_anon_5"),
        (pl.col("usable_frac") - _lag("usable_frac", 10)).alias("d_usable_10"),
        (pl.col("usable_frac") - _lag("usable_frac", 30)).alias("d_usable_30"),
    )
    df = df.with_columns((pl.col("d_avail_5") - _lag("d_avail_5", 5)).alias("accel_avail"),
                         (pl.col("d_anon_5") - _lag("d_anon_5", 5)).alias("accel_anon"))

    def tte(level: str, delta: str, k: int) -> pl.Expr:
        return (pl.col(level) / (-pl.col(delta) / k).clip(lower_bound=1e-5)).clip(0, 3600)

    return df.with_columns(tte("avail_frac", "d_avail_30", 30).alias("tte_30"),
                           tte("avail_frac", "d_avail_5", 5).alias("tte_5"),
                           tte("usable_frac", "d_usable_30", 30).alias("tte_usable"))


def future_leak(samples: pl.DataFrame, cuts: tuple[float, ...] = (0.25, 0.5, 0.75)) -> float:
    """The largest absolute difference, over :data:`FEATURES` at a few cut points of the first run,
    between features computed from the whole run and from the run's samples up to the cut only
    (0.0: no feature looks ahead)."""
    if samples.height == 0:
        return 0.0
    run = samples.sort("run_id", "t_s")["run_id"][0]
    s = samples.filter(pl.col("run_id") == run).sort("t_s")
    full = window_features(s)
    worst = 0.0
    for q in cuts:
        t = s["t_s"][int(q * (s.height - 1))]
        pre = window_features(s.filter(pl.col("t_s") <= t)).tail(1).select(FEATURES).to_numpy()
        at = full.filter(pl.col("t_s") == t).head(1).select(FEATURES).to_numpy()
        same_nan = np.isnan(pre) & np.isnan(at)
        diff = np.nan_to_num(np.where(same_nan, 0.0, np.abs(pre - at)), nan=np.inf)
        worst = max(worst, float(diff.max()) if diff.size else 0.0)
    return worst


def horizon_labels(samples: pl.DataFrame, events: pl.DataFrame, horizon_s: float) -> pl.DataFrame:
    """Add ``next_oom_s`` (seconds to the next OOM kill in the run, null if none) and
    ``y`` (1 when an OOM happens within ``(t, t + horizon_s]``)."""
    ooms = (events.filter(pl.col("kind") == "oom_kill").select("run_id", pl.col("t_s").alias("oom_t"))
            .sort("run_id", "oom_t"))
    base = samples.sort("run_id", "t_s")
    # both sides are sorted by (run_id, time) just above, so polars need not (and cannot) check it
    joined = base.join_asof(ooms, left_on="t_s", right_on="oom_t", by="run_id", strategy="forward",
                            allow_exact_matches=False, check_sortedness=False)
    return joined.with_columns((pl.col("oom_t") - pl.col("t_s")).alias("next_oom_s")).with_columns(
        ((pl.col("next_oom_s") > 0) & (pl.col("next_oom_s") <= horizon_s)).fill_null(False).cast(pl.Int8).alias("y")
    ).drop("oom_t")


def with_heuristic(feats: pl.DataFrame) -> pl.DataFrame:
    """The original system's crash predictor, as a baseline: weighted free-page decline (recent
    seconds weigh more), fragmentation above 0.7, failures in the last second, fragmentation slope.
    Adds column ``heuristic`` in [0, 1]; the original alarmed at 0.5."""
    w = [5, 4, 3, 2, 1]
    diffs = [(_lag("free_frac", i + 1) - _lag("free_frac", i)) for i in range(5)]   # >0 = decline
    decline = sum(wi * d for wi, d in zip(w, diffs, strict=True)) / sum(w)
    expr = (
        0.4 * (decline / 0.005).clip(0, 1)
        + 0.3 * (pl.col("frag_index") > 0.7).cast(pl.Float64)
        + 0.2 * (pl.col("fail_1") > 0).cast(pl.Float64)
        + 0.1 * (pl.col("d_frag_10") * 10).clip(0, 1)
    )
    return feats.sort("run_id", "t_s").with_columns(expr.alias("heuristic"))
