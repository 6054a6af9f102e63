"""One feedback-sensor shape for every family, over the pure :func:`kforge.feedback.retrain.decide`.

A sensor reads the family's feedback rows newer than its cursor, asks the family's drift function
(optional) for the champion's live error on them, and requests the family's retraining job with a
``run_key`` from the cursor. Its description states the policy's thresholds.
"""

from collections.abc import Callable
from typing import Any

import dagster as dg
import polars as pl

from kforge.dagster_io.resources import MlflowResource, WarehouseResource
from kforge.feedback.retrain import Drift, RetrainPolicy, decide, parse_cursor
from kforge.storage import Warehouse

DriftFn = Callable[[Warehouse, MlflowResource, pl.DataFrame], Drift | None]


def feedback_sensor(family: str, job: Any, policy: RetrainPolicy,
                    drift: DriftFn | None = None, name: str = "",
                    minimum_interval_seconds: int = 300) -> dg.SensorDefinition:
    """The sensor ``<family>_feedback_sensor`` requesting ``job`` under ``policy``."""

    @dg.sensor(name=name or f"{family}_feedback_sensor", job=job, minimum_interval_seconds=minimum_interval_seconds,
               description=policy.describe(family))
    def _sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource, mlflow: MlflowResource):
        from kforge.feedback import feedback_since

        wh = warehouse.get()
        rows = feedback_since(family, wh, parse_cursor(context.cursor))
        live = drift(wh, mlflow, rows) if (drift is not None and rows.height) else None
        d = decide(family, context.cursor, rows, live, policy)
        if not d.run:
            return dg.SkipReason(d.reason)
        context.update_cursor(d.cursor)
        return dg.RunRequest(run_key=d.run_key, tags={"kforge/trigger": d.reason[:200],
                                                      "kforge/feedback_rows": str(d.n_new)})

    return _sensor
