"""Serving-side hook: every family's prediction entry point records its calls here, so the
monitoring report covers all of them: latency and counts, the numeric inputs' bin counts against
the version's training reference (drift), and the per-item predictions that feedback is later
joined to (followed / accuracy, :mod:`kforge.monitoring.feedback_join`). Best effort: a monitoring
write that fails never fails a prediction.

Example::

    started = time.perf_counter()
    p = model.predict_proba(X)
    record_call(wh, "acceptance", "kforge-acceptance-commit", 3, started, len(X), batch_ref="pr.parquet",
                inputs=X.select(NUMERIC), items=[Item(f"commit:{s}", "outcome", str(v >= thr).lower(), v)
                                                 for s, v in zip(shas, p)])
"""

import sys
import time
from collections.abc import Sequence

import polars as pl

from kforge.monitoring.items import Item, log_items
from kforge.monitoring.log import log_predictions, summarize_inputs
from kforge.storage import Warehouse


def record_call(warehouse: Warehouse, family: str, model_name: str, model_version: int | str, started: float,
                n_rows: int, batch_ref: str = "", inputs: pl.DataFrame | None = None,
                items: Sequence[Item] = ()) -> None:
    """Log one prediction call that began at ``started`` (``time.perf_counter()``)."""
    latency_ms = (time.perf_counter() - started) * 1000.0
    try:
        summary = summarize_inputs(warehouse, model_name, model_version, inputs) if inputs is not None else None
        log_id = log_predictions(warehouse, family, model_name, model_version, latency_ms, n_rows, summary,
                                 batch_ref=batch_ref)
        log_items(warehouse, family, model_name, model_version, items, log_id=log_id)
    except Exception as exc:  # noqa: BLE001 - monitoring must not break serving
        print(f"kforge: warning: prediction not logged for monitoring ({exc})", file=sys.stderr)


def set_training_reference(warehouse: Warehouse, family: str, model_name: str, model_version: int | str,
                           inputs: pl.DataFrame) -> None:
    """Store the drift baseline of a freshly registered version (best effort, like :func:`record_call`)."""
    from kforge.monitoring.log import set_reference

    try:
        numeric = inputs.select([c for c, t in inputs.schema.items() if t.is_numeric() or t == pl.Boolean])
        if numeric.width and numeric.height:
            set_reference(warehouse, family, model_name, model_version, numeric)
    except Exception as exc:  # noqa: BLE001
        print(f"kforge: warning: no drift reference stored for {model_name} v{model_version} ({exc})", file=sys.stderr)
