"""Shared, session-scoped observations and a trained predictor (small, to keep the suite fast)."""

from datetime import UTC, datetime

import polars as pl
import pytest


@pytest.fixture(scope="session")
def catalogue():  # noqa: ANN201
    from kforge.mixins.catalogue import load_catalogue

    return load_catalogue()


@pytest.fixture(scope="session")
def outcomes(catalogue) -> pl.DataFrame:  # noqa: ANN001
    from kforge.mixins.harness import exercise

    df = exercise(catalogue, trials_per_pair=3, n_sets=20, trials_per_set=3, seed=11,
                  started_at=datetime(2026, 1, 1, tzinfo=UTC))
    return df.with_columns(outcome_id=pl.int_range(1, df.height + 1, dtype=pl.Int64))


@pytest.fixture(scope="session")
def trained(outcomes, catalogue):  # noqa: ANN001, ANN201
    from kforge.mixins.training import train

    return train(outcomes, catalogue, seed=0)
