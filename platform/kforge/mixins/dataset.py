"""The training frame: one row per observed outcome with static + point-in-time features."""

import random

import numpy as np
import polars as pl

from kforge.errors import InputError
from kforge.mixins.catalogue import Catalogue
from kforge.mixins.features import HIST_COLS, history_frame, static_frame

KEY_COLS = ("outcome_id", "combination", "mixins", "set_size", "node_type", "observed_at", "passed",
            "conflict_reason", "source")


def feature_frame(outcomes: pl.DataFrame, cat: Catalogue, weights: np.ndarray | None = None,
                  mask_fraction: float = 0.0, seed: int = 0) -> pl.DataFrame:
    """Keys, label, static features and history features for every outcome row.

    ``mask_fraction`` (training frames only): that share of rows sees no exact-pair history, and
    half of those also lose one mixin's own history, so the model learns the unseen regimes."""
    if outcomes.height == 0:
        raise InputError("no outcomes to build features from")
    static = static_frame(outcomes, cat.traits(), sorted(cat.mixins), sorted(cat.nodes))
    mask_rows, hide = masked_rows(outcomes, mask_fraction, seed)
    hist = history_frame(outcomes, None if weights is None else pl.Series(weights), mask_rows, hide)
    return (outcomes.select(*KEY_COLS)
            .join(static, on=["combination", "node_type"], how="left")
            .join(hist, on="outcome_id", how="left")
            .sort("outcome_id"))


def feature_columns(frame: pl.DataFrame) -> list[str]:
    """Model inputs: static + history features (never keys, label, or baseline-only counts)."""
    skip = set(KEY_COLS) | {"hb_pair_s", "hb_node_n", "hb_node_s"}
    return [c for c in frame.columns if c not in skip]


def masked_rows(outcomes: pl.DataFrame, fraction: float, seed: int) -> tuple[set[int], dict[int, str]]:
    """Seeded rows whose pair history is hidden, and (for half of them) one mixin to hide."""
    if fraction <= 0:
        return set(), {}
    rng = random.Random(seed)
    rows, hide = set(), {}
    for oid, mixins in outcomes.select("outcome_id", "mixins").iter_rows():
        if rng.random() < fraction:
            rows.add(oid)
            if rng.random() < 0.5:
                hide[oid] = rng.choice(list(mixins))
    return rows, hide


__all__ = ["HIST_COLS", "feature_columns", "feature_frame", "masked_rows"]
