"""The encoder as a scikit-learn pipeline step (kept apart from :mod:`kforge.text.encoder` so that importing
the encoder, e.g. by every CLI command, does not import scikit-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from kforge.text.encoder import current_encoder


class EncodedText(TransformerMixin, BaseEstimator):
    """A scikit-learn transformer: one text column of a frame (or a list of texts, ``column=None``) -> its
    embeddings, through :func:`current_encoder`. Stateless, so a pickled pipeline holds no model or vectors."""

    def __init__(self, column: str | None = "embed") -> None:
        self.column = column

    def fit(self, X: Any, y: Any = None) -> EncodedText:
        return self

    def transform(self, X: Any) -> np.ndarray:
        texts = X if self.column is None else X[self.column]
        return current_encoder().embed([str(t) for t in texts])
