"""The pretrained-encoder member (issue 20): off by default; when on, the ensemble stacks a model
on the embeddings of each row's own text, and a row's score does not depend on the other rows it is
scored with (an embedding is a function of the row's text alone)."""

from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest
from kforge.acceptance.model import AcceptanceEnsemble
from kforge.acceptance.train import TrainConfig
from kforge.text import use_encoder


class WordEmbedder:
    """A stand-in for the sentence encoder: a unit vector from the words of one text."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            for word in t.split():
                out[i, sum(map(ord, word)) % 8] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture
def fake() -> Iterator[WordEmbedder]:
    with use_encoder(WordEmbedder()) as enc:
        yield enc


def _frame(n: int = 400, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 1, n) < 0.3
    words = np.where(y, "race fix lock", "docs typo cleanup")
    noisy = np.where(rng.uniform(0, 1, n) < 0.2, "docs typo cleanup", words)  # the text is a noisy label
    df = pl.DataFrame({"t": np.arange(n), "la": rng.integers(1, 300, n).astype(float), "text": noisy})
    return df, y.astype(np.int64)


def test_off_by_default() -> None:
    assert TrainConfig().text_encoder is False
    assert "encoder" not in AcceptanceEnsemble(["la"], [], "text").base_names


def test_encoder_member_is_stacked_and_scores_rows_independently(fake: WordEmbedder) -> None:
    df, y = _frame()
    m = AcceptanceEnsemble(["la"], [], None, n_folds=2, n_estimators=10, text_encoder="text").fit(df, y)
    assert m.base_names[-1] == "encoder" and m.oof_auc["encoder"] > 0.8
    test, _ = _frame(60, seed=1)
    fake.seen.clear()
    batch = m.predict_proba(test)
    assert fake.seen == test["text"].to_list()  # the scored rows' own texts, nothing else
    alone = np.array([m.predict_proba(test[i:i + 1])[0] for i in range(0, 60, 7)])
    np.testing.assert_allclose(batch[::7], alone, rtol=1e-9)
