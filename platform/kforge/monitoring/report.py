"""The model-monitoring report ("AI metrics dashboard") across every model family: prediction
counts, latency p50/p99, how often predictions were followed, accuracy on feedback (overall and
recent), input drift (PSI against the version's reference profile).

Example::

    rep = monitoring_report(wh)              # dict, JSON-serialisable
    write_json(rep, exports / "monitoring.json"); plot_report(rep, exports / "monitoring.png")
"""

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kforge.monitoring.drift import psi_by_feature
from kforge.monitoring.feedback_join import feedback_followed, feedback_outcomes, joined
from kforge.monitoring.log import FOLLOWED, OUTCOMES, PREDICTION_LOG, get_reference
from kforge.storage import Warehouse

FAMILIES = ("acceptance", "generation", "healing", "mixins", "telemetry")
PSI_ALERT = 0.2


def _table(wh: Warehouse, t: str) -> pl.DataFrame:
    return wh.read_table(t) if wh.has_table(t) else pl.DataFrame()


def _psi(wh: Warehouse, model: str, version: str, summaries: list[str]) -> dict[str, float]:
    prof = get_reference(wh, model, version)
    if not prof:
        return {}
    total: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(0))
    for s in summaries:
        for feat, counts in json.loads(s or "{}").get("bin_counts", {}).items():
            c = np.asarray(counts, dtype=float)
            total[feat] = c if total[feat].size == 0 else total[feat] + c
    return {k: round(v, 5) for k, v in psi_by_feature(prof, {k: v.tolist() for k, v in total.items()}).items()
            if np.isfinite(v)}


def _with(logged: pl.DataFrame, from_feedback: pl.DataFrame) -> pl.DataFrame:
    if logged.height == 0:
        return from_feedback
    if from_feedback.height == 0:
        return logged
    return pl.concat([logged, from_feedback.select(logged.columns)], how="vertical_relaxed")


def monitoring_report(wh: Warehouse, recent_fraction: float = 0.25) -> dict[str, Any]:
    """One entry per (family, model, version) that logged anything, plus the families without any.
    Followed rates and accuracy combine what serving logged directly (telemetry's closed loop) with
    the family feedback tables joined to logged prediction items (:mod:`kforge.monitoring.feedback_join`)."""
    j = joined(wh)
    log = _table(wh, PREDICTION_LOG)
    fol = _with(_table(wh, FOLLOWED), feedback_followed(wh, j))
    out = _with(_table(wh, OUTCOMES), feedback_outcomes(wh, j))
    keys: set[tuple[str, str, str]] = set()
    for df in (log, fol, out):
        if df.height:
            keys |= set(df.select("family", "model_name", "model_version").unique().iter_rows())
    models = []
    for fam, name, ver in sorted(keys):
        def sel(df: pl.DataFrame, fam: str = fam, name: str = name, ver: str = ver) -> pl.DataFrame:
            if df.height == 0:
                return df
            return df.filter((pl.col("family") == fam) & (pl.col("model_name") == name) & (pl.col("model_version") == ver))

        lg, fl, oc = sel(log), sel(fol), sel(out)
        entry: dict[str, Any] = {"family": fam, "model_name": name, "model_version": ver,
                                 "prediction_calls": lg.height, "predictions": int(lg["n_rows"].sum()) if lg.height else 0}
        if lg.height:
            lat, per_row = lg["latency_ms"].to_numpy(), lg["latency_ms_per_row"].to_numpy()
            entry.update({
                "latency_ms_p50": float(np.percentile(lat, 50)), "latency_ms_p99": float(np.percentile(lat, 99)),
                "latency_ms_per_row_p50": float(np.percentile(per_row, 50)),
                "latency_ms_per_row_p99": float(np.percentile(per_row, 99)),
                "first_logged": str(lg["logged_at"].min()), "last_logged": str(lg["logged_at"].max()),
            })
            psi = _psi(wh, name, ver, lg["inputs_summary"].to_list())
            entry["psi"] = psi
            entry["psi_max"] = max(psi.values()) if psi else None
            entry["drift_alert"] = bool(psi) and max(psi.values()) > PSI_ALERT
        if fl.height:
            entry["followed_rate"] = float(fl["n_followed"].sum() / max(int(fl["n_total"].sum()), 1))
            entry["followed_n"] = int(fl["n_total"].sum())
        if oc.height:
            oc = oc.sort("observed_at", "outcome_id")
            entry["accuracy"] = float(oc["n_correct"].sum() / max(int(oc["n"].sum()), 1))
            k = max(1, int(round(oc.height * recent_fraction)))
            recent = oc.tail(k)
            entry["accuracy_recent"] = float(recent["n_correct"].sum() / max(int(recent["n"].sum()), 1))
            entry["outcomes_n"] = int(oc["n"].sum())
        models.append(entry)
    seen = {m["family"] for m in models}
    return {
        "generated_at": datetime.now(UTC).isoformat(), "psi_alert_threshold": PSI_ALERT,
        "models": models,
        "families_without_predictions": sorted(set(FAMILIES) - seen),
        "totals": {"prediction_calls": log.height, "predictions": int(log["n_rows"].sum()) if log.height else 0,
                   "drift_alerts": sum(1 for m in models if m.get("drift_alert")),
                   "feedback_rows_joined": j.select("family", "feedback_id").n_unique() if j.height else 0},
    }


def report_frame(rep: dict[str, Any]) -> pl.DataFrame:
    """The report as one row per model version (for previews)."""
    cols = ["family", "model_name", "model_version", "predictions", "latency_ms_per_row_p50", "latency_ms_per_row_p99",
            "followed_rate", "accuracy", "accuracy_recent", "psi_max", "drift_alert"]
    rows = [{c: m.get(c) for c in cols} for m in rep["models"]]
    schema = {c: pl.String for c in cols[:3]} | {"predictions": pl.Int64, "drift_alert": pl.Boolean} | {
        c: pl.Float64 for c in cols if c not in ("family", "model_name", "model_version", "predictions", "drift_alert")}
    return pl.DataFrame(rows, schema=schema)


def write_json(rep: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rep, indent=2, sort_keys=True, default=str))
    return path


def plot_report(rep: dict[str, Any], path: Path) -> Path:
    """Four panels: predictions, per-row latency p50/p99, followed rate and accuracy, max PSI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = rep["models"]
    labels = [f"{m['model_name']}@{m['model_version']}" for m in models] or ["(none)"]
    x = np.arange(len(labels))

    def col(key: str) -> np.ndarray:
        return np.array([m.get(key) if m.get(key) is not None else np.nan for m in models] or [np.nan], dtype=float)

    fig, ax = plt.subplots(2, 2, figsize=(12, 7))
    ax[0, 0].bar(x, col("predictions"))
    ax[0, 0].set_title("predictions logged")
    ax[0, 1].bar(x - 0.2, col("latency_ms_per_row_p50"), 0.4, label="p50")
    ax[0, 1].bar(x + 0.2, col("latency_ms_per_row_p99"), 0.4, label="p99")
    ax[0, 1].set_yscale("log")
    ax[0, 1].set_title("latency per prediction (ms)")
    ax[0, 1].legend()
    ax[1, 0].bar(x - 0.2, col("followed_rate"), 0.4, label="followed")
    ax[1, 0].bar(x + 0.2, col("accuracy"), 0.4, label="accuracy on feedback")
    ax[1, 0].set_ylim(0, 1.05)
    ax[1, 0].set_title("followed rate / accuracy")
    ax[1, 0].legend()
    ax[1, 1].bar(x, col("psi_max"))
    ax[1, 1].axhline(rep.get("psi_alert_threshold", PSI_ALERT), color="red", ls="--")
    ax[1, 1].set_title("input drift (max PSI)")
    for a in ax.flat:
        a.set_xticks(x)
        a.set_xticklabels(labels, rotation=20, ha="right", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
