"""Helpers that turn library results into Dagster metadata (markdown tables, plots, run links)."""

from pathlib import Path
from typing import Any

import polars as pl
from dagster import MetadataValue


def table_md(df: pl.DataFrame, max_rows: int = 20) -> MetadataValue:
    """A markdown preview of a polars frame."""
    if df.height == 0:
        return MetadataValue.md("_(no rows)_")
    head = df.head(max_rows)
    cols = head.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return MetadataValue.md("\n".join(lines))


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    s = str(v)
    return (s[:80] + "...") if len(s) > 80 else s.replace("|", "\\|").replace("\n", " ")


def metrics_md(metrics: dict[str, float]) -> MetadataValue:
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())]
    return MetadataValue.md("\n".join(lines))


def plot_md(png: Path) -> MetadataValue:
    """Embed a PNG (as base64) so it shows in the Dagster UI."""
    import base64

    data = base64.b64encode(Path(png).read_bytes()).decode()
    return MetadataValue.md(f"![{Path(png).stem}](data:image/png;base64,{data})")
