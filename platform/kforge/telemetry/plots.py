"""Plots for the telemetry models (PNG files for MLflow artifacts and Dagster metadata)."""

from pathlib import Path

import numpy as np
import polars as pl


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def lead_time_plot(lead_times: dict[str, list[float]], horizon_s: float, lead_s: float, path: Path) -> Path:
    """Histogram of OOM-incident lead times (model vs heuristic); 0 = not flagged."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.arange(0, horizon_s + 2.5, 2.5)
    for name, vals in lead_times.items():
        ax.hist(vals, bins=bins, alpha=0.55, label=f"{name} (n={len(vals)})")
    ax.axvline(lead_s, color="red", ls="--", label=f"{lead_s:g} s target")
    ax.set_xlabel("lead time before OOM incident (s); 0 = missed")
    ax.set_ylabel("incidents")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def scheduler_plot(rows: pl.DataFrame, path: Path) -> Path:
    """Mean turnaround, p99 latency and context switches per policy (held-out workloads)."""
    plt = _plt()
    agg = rows.group_by("policy").agg(pl.col("mean_turnaround_ms", "p99_latency_ms", "context_switches").mean()).sort("policy")
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.5))
    for a, col in zip(ax, ("mean_turnaround_ms", "p99_latency_ms", "context_switches"), strict=True):
        a.bar(agg["policy"].to_list(), agg[col].to_list())
        a.set_title(col)
        a.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)
