"""Serving-side hook: every family's prediction entry point records its calls here, so the
monitoring report covers all of them (latency, counts; accuracy and drift come from the rest of
:mod:`kforge.monitoring`). Best effort: a monitoring write that fails never fails a prediction."""

import sys
import time

from kforge.monitoring.log import log_predictions
from kforge.storage import Warehouse


def record_call(warehouse: Warehouse, family: str, model_name: str, model_version: int | str, started: float,
                n_rows: int, batch_ref: str = "") -> None:
    """Log one prediction call that began at ``started`` (``time.perf_counter()``)."""
    latency_ms = (time.perf_counter() - started) * 1000.0
    try:
        log_predictions(warehouse, family, model_name, model_version, latency_ms, n_rows, batch_ref=batch_ref)
    except Exception as exc:  # noqa: BLE001 - monitoring must not break serving
        print(f"kforge: warning: prediction not logged for monitoring ({exc})", file=sys.stderr)
