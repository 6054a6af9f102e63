"""The acceptance champions' live error on new feedback: Brier of their stored predictions (or the
``p_predicted`` a feedback row carries) against the observed outcomes, vs their held-out Brier."""

import numpy as np
import polars as pl

from kforge.feedback.retrain import Drift
from kforge.registry import Tracker
from kforge.storage import Warehouse

MODELS = (("kforge-acceptance-commit", "commit"), ("kforge-acceptance-email", "email"))


def champion_drift(wh: Warehouse, tracker: Tracker, rows: pl.DataFrame) -> Drift | None:
    """The champions' Brier on ``rows`` (feedback with target, item_id, outcome, p_predicted) vs
    the mean of their held-out ``test_brier``; None when no row has a prediction."""
    from kforge.acceptance.pipeline import PREDICTIONS

    parts, briers = [], []
    for name, target in MODELS:
        champ = tracker.champion(name)
        if champ is None:
            continue
        metrics = tracker.client().get_run(champ.run_id).data.metrics
        if "test_brier" in metrics:
            briers.append(metrics["test_brier"])
        if wh.has_table(PREDICTIONS):
            parts.append(wh.read(f"select target, item_id, p from {PREDICTIONS} where target = ? and model_version = ?",
                                 [target, int(champ.version)]))
    live = recent_brier(rows, pl.concat(parts) if parts else None)
    if live is None or not briers:
        return None
    return Drift(live=live[0], reference=float(np.mean(briers)), n=live[1])


def recent_brier(rows: pl.DataFrame, predictions: pl.DataFrame | None) -> tuple[float, int] | None:
    """(Brier, rows scored) of the predictions behind feedback ``rows``."""
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
