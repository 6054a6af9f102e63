"""Monitoring hooks of the generation family: the drift baseline of a new LM version is the
descriptor profile (files, hunks, lines added/removed, size) of the diffs it was trained on."""

import polars as pl

from kforge.monitoring.calls import set_training_reference
from kforge.monitoring.descriptors import diff_descriptors
from kforge.storage import Warehouse

LM_MODEL = "kforge-generation-lm"


def set_diff_reference(wh: Warehouse, version: int, corpus: pl.DataFrame, max_rows: int = 5000) -> None:
    train = corpus.filter(pl.col("split") == "train") if "split" in corpus.columns else corpus
    if train.height > max_rows:
        train = train.sample(max_rows, seed=0)
    set_training_reference(wh, "generation", LM_MODEL, version, diff_descriptors(train["diff"].to_list()))
