"""Input drift: reference profiles (quantile bins of the training inputs) and the population
stability index (PSI) of live inputs against them.

PSI = sum over bins of (p_live - p_ref) * ln(p_live / p_ref); by the usual rule of thumb
< 0.1 is stable, 0.1-0.2 a moderate shift, > 0.2 a significant shift.

Example::

    prof = profile(train_df)                       # {feature: {"edges": [...], "ref": [...]}}
    counts = bin_counts(live_df, prof)             # {feature: [n per bin]}
    psi(prof["x"]["ref"], counts["x"])             # -> 0.0.. (float)
"""

from typing import Any

import numpy as np
import polars as pl

EPS = 1e-4
N_BINS = 10


def _numeric(df: pl.DataFrame) -> list[str]:
    return [c for c, t in df.schema.items() if t.is_numeric() or t == pl.Boolean]


def profile(df: pl.DataFrame, n_bins: int = N_BINS) -> dict[str, dict[str, list[float]]]:
    """Quantile bin edges and reference proportions per numeric column."""
    out: dict[str, dict[str, list[float]]] = {}
    for c in _numeric(df):
        x = df[c].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
        if len(x) == 0:
            continue
        edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
        out[c] = {"edges": edges.tolist(), "ref": (counts / counts.sum()).tolist()}
    return out


def bin_counts(df: pl.DataFrame, prof: dict[str, dict[str, list[float]]]) -> dict[str, list[int]]:
    """Counts of ``df``'s values in each reference bin (columns missing from ``df`` are skipped)."""
    out = {}
    for c, p in prof.items():
        if c not in df.columns:
            continue
        x = df[c].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
        edges = np.asarray(p["edges"])
        out[c] = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1).tolist()
    return out


def psi(ref_props: list[float] | np.ndarray, live_counts: list[int] | np.ndarray) -> float:
    ref = np.clip(np.asarray(ref_props, dtype=float), EPS, None)
    live = np.asarray(live_counts, dtype=float)
    if live.sum() == 0:
        return float("nan")
    if len(live) != len(ref):
        raise ValueError(f"bin count mismatch: reference has {len(ref)} bins, live data {len(live)}")
    live = np.clip(live / live.sum(), EPS, None)
    return float(((live - ref) * np.log(live / ref)).sum())


def psi_by_feature(prof: dict[str, Any], counts: dict[str, list[int]]) -> dict[str, float]:
    return {c: psi(prof[c]["ref"], n) for c, n in counts.items() if c in prof}
