"""Fixtures for the generation tests (the synthetic corpus lives in gen_synthetic.py)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_synthetic import make_rows  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def raw_rows():
    return make_rows()


@pytest.fixture(scope="session")
def corpus(raw_rows):
    from kforge.generation.corpus import build_corpus

    c, _ = build_corpus(raw_rows, val_frac=0.15, test_frac=0.15)
    return c
