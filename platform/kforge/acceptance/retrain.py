"""When to retrain: enough new labelled feedback, or the champion's error drifting on it.

Pure logic for the ``acceptance_feedback_sensor``; its cursor is a JSON object
``{"last_request_id": <feedback_id>}`` (the newest feedback row a run was already requested for).
"""

import json
from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class RetrainPolicy:
    min_new_rows: int = 50          # request a run when at least this many new labelled rows arrived
    max_brier_increase: float = 0.05  # ... or when the champion's Brier on them exceeds its test Brier by this
    min_drift_rows: int = 20        # rows needed before the drift is trusted


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str
    cursor: str
    run_key: str | None
    n_new: int
    recent_brier: float | None


def parse_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(json.loads(cursor).get("last_request_id", 0))
    except (ValueError, AttributeError):
        return 0


def decide(cursor: str | None, new_rows: pl.DataFrame, predictions: pl.DataFrame | None,
           champion_brier: float | None, policy: RetrainPolicy) -> Decision:
    """``new_rows``: feedback rows with id > cursor; ``predictions``: the champion's stored
    predictions (target, item_id, p) used when a row has no ``p_predicted``."""
    last = parse_cursor(cursor)
    n = new_rows.height
    if n == 0:
        return Decision(False, "no new acceptance feedback", cursor or json.dumps({"last_request_id": last}), None, 0, None)
    top = int(new_rows["feedback_id"].max())  # type: ignore[arg-type]
    brier = _recent_brier(new_rows, predictions)
    moved = json.dumps({"last_request_id": top})
    if n >= policy.min_new_rows:
        return Decision(True, f"{n} new labelled rows >= {policy.min_new_rows}", moved, f"acceptance-feedback-{top}",
                        n, brier)
    if brier is not None and champion_brier is not None and brier[1] >= policy.min_drift_rows \
            and brier[0] - champion_brier > policy.max_brier_increase:
        return Decision(True, f"champion Brier on {brier[1]} recent rows {brier[0]:.3f} exceeds its test Brier "
                              f"{champion_brier:.3f} by more than {policy.max_brier_increase}", moved,
                        f"acceptance-drift-{top}", n, brier[0])
    why = (f"{n} new rows < {policy.min_new_rows}; " +
           ("no champion predictions for them" if brier is None else
            f"Brier {brier[0]:.3f} on {brier[1]} rows vs champion {champion_brier if champion_brier is not None else 'n/a'}"))
    return Decision(False, why, cursor or json.dumps({"last_request_id": last}), None, n,
                    None if brier is None else brier[0])


def _recent_brier(rows: pl.DataFrame, predictions: pl.DataFrame | None) -> tuple[float, int] | None:
    df = rows.select("target", "item_id", pl.col("outcome").cast(pl.Float64).alias("y"), "p_predicted")
    if predictions is not None and predictions.height:
        df = df.join(predictions.select("target", "item_id", pl.col("p").alias("p_model")).unique(["target", "item_id"]),
                     on=["target", "item_id"], how="left").with_columns(pl.coalesce("p_predicted", "p_model").alias("p"))
    else:
        df = df.with_columns(pl.col("p_predicted").alias("p"))
    df = df.drop_nulls("p")
    if df.height == 0:
        return None
    y, p = df["y"].to_numpy(), df["p"].to_numpy()
    return float(np.mean((p - y) ** 2)), df.height
