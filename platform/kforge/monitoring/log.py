"""The monitoring API every model family calls when it serves predictions.

Append-only tables (created on first use):

* ``prediction_log``: one row per prediction call: family, model name/version, rows scored,
  latency, a JSON summary of the inputs (bin counts against the reference profile, for drift);
* ``prediction_followed``: whether a prediction/recommendation was acted upon;
* ``prediction_outcomes``: ground truth as it arrives (n scored, n correct);
* ``monitoring_reference``: the training-input profile of a model version (drift baseline).

Example::

    set_reference(wh, "acceptance", "kforge-acceptance", 3, train_features)
    t0 = time.perf_counter(); scores = model.predict(X); ms = 1000 * (time.perf_counter() - t0)
    log_predictions(wh, "acceptance", "kforge-acceptance", 3, ms, len(X),
                    summarize_inputs(wh, "kforge-acceptance", 3, X), batch_ref="pr-1234")
    log_outcomes(wh, "acceptance", "kforge-acceptance", 3, n=1, n_correct=1, batch_ref="pr-1234")
"""

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl

from kforge.errors import InputError
from kforge.monitoring.drift import bin_counts, profile
from kforge.storage import Warehouse

PREDICTION_LOG = "prediction_log"
FOLLOWED = "prediction_followed"
OUTCOMES = "prediction_outcomes"
REFERENCE = "monitoring_reference"


def _check(family: str, model_name: str) -> None:
    if not family or not family.replace("_", "").isalnum():
        raise InputError(f"family must be a non-empty identifier, got {family!r}")
    if not model_name:
        raise InputError("model_name must not be empty")


def _append_with_id(warehouse: Warehouse, table: str, id_col: str, rows: list[dict[str, Any]],
                    schema: dict[str, Any]) -> int:
    return warehouse.append_with_ids(table, id_col, rows, schema)[1]


LOG_SCHEMA = {
    "log_id": pl.Int64, "logged_at": pl.Datetime("us", "UTC"), "family": pl.String, "model_name": pl.String,
    "model_version": pl.String, "n_rows": pl.Int64, "latency_ms": pl.Float64, "latency_ms_per_row": pl.Float64,
    "inputs_summary": pl.String, "batch_ref": pl.String,
}


def log_predictions(warehouse: Warehouse, family: str, model_name: str, model_version: int | str,
                    latency_ms: float, n_rows: int, inputs_summary: dict[str, Any] | None = None,
                    batch_ref: str = "", logged_at: datetime | None = None) -> int:
    """Record one prediction call; returns its ``log_id``."""
    _check(family, model_name)
    if n_rows < 0 or latency_ms < 0:
        raise InputError(f"n_rows and latency_ms must be >= 0, got {n_rows}, {latency_ms}")
    row = {
        "logged_at": logged_at or datetime.now(UTC), "family": family, "model_name": model_name,
        "model_version": str(model_version), "n_rows": int(n_rows), "latency_ms": float(latency_ms),
        "latency_ms_per_row": float(latency_ms) / max(int(n_rows), 1),
        "inputs_summary": json.dumps(inputs_summary or {}), "batch_ref": batch_ref,
    }
    return _append_with_id(warehouse, PREDICTION_LOG, "log_id", [row], LOG_SCHEMA)


def log_followed(warehouse: Warehouse, family: str, model_name: str, model_version: int | str,
                 n_followed: int, n_total: int = 1, batch_ref: str = "") -> int:
    """Record how many of ``n_total`` predictions/recommendations were acted upon."""
    _check(family, model_name)
    if not 0 <= n_followed <= n_total:
        raise InputError(f"need 0 <= n_followed <= n_total, got {n_followed}, {n_total}")
    schema = {"followed_id": pl.Int64, "logged_at": pl.Datetime("us", "UTC"), "family": pl.String,
              "model_name": pl.String, "model_version": pl.String, "n_followed": pl.Int64,
              "n_total": pl.Int64, "batch_ref": pl.String}
    return _append_with_id(warehouse, FOLLOWED, "followed_id", [{
        "logged_at": datetime.now(UTC), "family": family, "model_name": model_name,
        "model_version": str(model_version), "n_followed": n_followed, "n_total": n_total, "batch_ref": batch_ref,
    }], schema)


def log_outcomes(warehouse: Warehouse, family: str, model_name: str, model_version: int | str,
                 n: int, n_correct: int, batch_ref: str = "", observed_at: datetime | None = None) -> int:
    """Record ground truth as it arrives: of ``n`` predictions now labelled, ``n_correct`` were right."""
    _check(family, model_name)
    if not 0 <= n_correct <= n:
        raise InputError(f"need 0 <= n_correct <= n, got {n_correct}, {n}")
    schema = {"outcome_id": pl.Int64, "observed_at": pl.Datetime("us", "UTC"), "family": pl.String,
              "model_name": pl.String, "model_version": pl.String, "n": pl.Int64, "n_correct": pl.Int64,
              "batch_ref": pl.String}
    return _append_with_id(warehouse, OUTCOMES, "outcome_id", [{
        "observed_at": observed_at or datetime.now(UTC), "family": family, "model_name": model_name,
        "model_version": str(model_version), "n": n, "n_correct": n_correct, "batch_ref": batch_ref,
    }], schema)


def set_reference(warehouse: Warehouse, family: str, model_name: str, model_version: int | str,
                  inputs: pl.DataFrame) -> int:
    """Store the training-input profile of a model version (the drift baseline)."""
    _check(family, model_name)
    prof = profile(inputs)
    if not prof:
        raise InputError("reference inputs have no numeric column to profile")
    now = datetime.now(UTC)
    rows = [{"family": family, "model_name": model_name, "model_version": str(model_version), "feature": f,
             "edges": json.dumps(p["edges"]), "ref": json.dumps(p["ref"]), "created_at": now}
            for f, p in prof.items()]
    schema = {"family": pl.String, "model_name": pl.String, "model_version": pl.String, "feature": pl.String,
              "edges": pl.String, "ref": pl.String, "created_at": pl.Datetime("us", "UTC")}
    return warehouse.append_new(REFERENCE, pl.DataFrame(rows, schema=schema),
                                keys=["model_name", "model_version", "feature"])


def get_reference(warehouse: Warehouse, model_name: str, model_version: int | str) -> dict[str, Any]:
    if not warehouse.has_table(REFERENCE):
        return {}
    df = warehouse.read(f"select feature, edges, ref from {REFERENCE} where model_name = ? and model_version = ?",
                        [model_name, str(model_version)])
    return {f: {"edges": json.loads(e), "ref": json.loads(r)} for f, e, r in df.iter_rows()}


def summarize_inputs(warehouse: Warehouse, model_name: str, model_version: int | str,
                     inputs: pl.DataFrame) -> dict[str, Any]:
    """The ``inputs_summary`` for :func:`log_predictions`: per-feature means and counts in the
    reference bins of this model version (empty bins when no reference was set)."""
    prof = get_reference(warehouse, model_name, model_version)
    means = {c: float(v) for c, v in inputs.select(
        [pl.col(c).cast(pl.Float64).mean() for c, t in inputs.schema.items() if t.is_numeric()]
    ).row(0, named=True).items() if v is not None} if inputs.height else {}
    return {"mean": means, "bin_counts": bin_counts(inputs, prof) if prof else {}}
