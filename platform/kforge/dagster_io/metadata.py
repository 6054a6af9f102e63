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
    epochs = [c for c, t in head.schema.items() if (c.endswith("_ts") or c == "ts") and t.is_integer()]
    if epochs:  # Unix seconds read as ISO times
        head = head.with_columns(pl.from_epoch(pl.col(c), time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%SZ") for c in epochs)
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


def metric_entries(metrics: dict[str, float], table_key: str = "metrics") -> dict[str, MetadataValue]:
    """The metrics as one markdown table plus one numeric entry per held-out metric (rounded), so the
    asset's Plots tab trends them across materializations. Training-set figures (``train_*``) stay in
    the table only."""
    out: dict[str, MetadataValue] = {table_key: metrics_md(metrics)}
    for k, v in sorted(metrics.items()):
        if k.startswith("train_") or isinstance(v, bool) or not isinstance(v, int | float) or v != v:
            continue
        out[k if table_key == "metrics" else f"{table_key}_{k}"] = MetadataValue.float(round(float(v), 4))
    return out


def plot_md(png: Path, run_id: str | None = None, artifact_dir: str = "plots") -> MetadataValue:
    """A plot for the Dagster UI. With the MLflow run that logged it (``<artifact_dir>/<name>``), a short
    markdown image served by the MLflow UI (``$KFORGE_MLFLOW_URL``), which the asset page renders inline;
    without one, the PNG embedded as base64 (shown behind "[Show Markdown]": too long to inline)."""
    import base64
    from urllib.parse import quote

    png = Path(png)
    if run_id:
        from kforge.registry.release import ui_urls

        _, mlflow_ui = ui_urls()
        url = f"{mlflow_ui}/get-artifact?path={quote(f'{artifact_dir}/{png.name}')}&run_uuid={run_id}"
        return MetadataValue.md(f"![{png.stem}]({url})")
    data = base64.b64encode(png.read_bytes()).decode()
    return MetadataValue.md(f"![{png.stem}](data:image/png;base64,{data})")
