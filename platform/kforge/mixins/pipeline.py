"""The steps the ``mixins`` assets and CLI share: observe, ingest feedback, aggregate."""

import polars as pl

from kforge.feedback import feedback_since
from kforge.mixins.catalogue import Catalogue
from kforge.mixins.harness import exercise
from kforge.mixins.outcomes import (
    MATRIX,
    OUTCOMES,
    aggregate_matrix,
    append_outcomes,
    feedback_to_outcomes,
    read_outcomes,
)
from kforge.storage import Warehouse

CATALOGUE_TABLE = "mixin_catalogue"


def last_ingested_feedback(wh: Warehouse) -> int:
    if not wh.has_table(OUTCOMES):
        return 0
    df = wh.read(f"select max(cast(substr(source, 10) as bigint)) as f from {OUTCOMES} where source like 'feedback:%'")
    return int(df["f"][0] or 0)


def ingest_feedback(wh: Warehouse) -> int:
    """Append feedback rows not yet in the outcomes table (idempotent: keyed by feedback_id)."""
    new = feedback_since("mixins", wh, last_ingested_feedback(wh))
    if new.height == 0:
        return 0
    return append_outcomes(wh, feedback_to_outcomes(new))[1]


def run_harness(wh: Warehouse, cat: Catalogue, *, trials_per_pair: int, n_sets: int, trials_per_set: int,
                seed: int | None = None) -> int:
    """One exercise batch; the default seed is the number of stored outcomes (a new batch draws new
    scenarios, re-running an unchanged state reproduces the same batch)."""
    seed = wh.count(OUTCOMES) if seed is None else seed
    df = exercise(cat, trials_per_pair=trials_per_pair, n_sets=n_sets, trials_per_set=trials_per_set, seed=seed)
    return append_outcomes(wh, df)[1]


def refresh_matrix(wh: Warehouse) -> pl.DataFrame:
    matrix = aggregate_matrix(read_outcomes(wh))
    wh.replace(MATRIX, matrix)
    return matrix


def refresh_catalogue(wh: Warehouse, cat: Catalogue) -> pl.DataFrame:
    frame = cat.traits_frame()
    wh.replace(CATALOGUE_TABLE, frame)
    return frame
