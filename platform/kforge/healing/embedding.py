"""Pretrained-encoder members of the healing classifier (issue 20): sentence embeddings of an error as features.

The text embedded is the ``embed`` field of :func:`kforge.healing.features.record`: for a traceback the exception
type and its message; for a kernel log the crash line and the lines after it. Two member kinds
read it (see :func:`kforge.healing.classifiers.make_pipeline`):

* ``embed_lr``:  logistic regression on the 384-d embedding;
* ``embed_knn``: nearest-neighbour evidence, a similarity-weighted label vote of the ``k`` closest training rows.

The members hold no encoder. They embed through the process's encoder (:func:`kforge.text.current_encoder`,
the one mechanism every family uses): by default one over the home's extracted model with an in-memory cache;
:func:`kforge.text.use_encoder` installs another (the assets' resource, whose cache is the warehouse). Pickled
models therefore stay small and load without the encoder until they classify.

Example::

    with use_encoder(TextEncoder(paths, warehouse)):
        model = train_bundle(tasks, kinds=("linear", "gbm", "embed_knn"))
"""

from typing import Any

import numpy as np
from kforge.text.members import EncodedText
from sklearn.base import BaseEstimator, ClassifierMixin


class SimilarityVote(ClassifierMixin, BaseEstimator):
    """Nearest-neighbour evidence: each of the ``k`` most similar training rows votes for its label with weight
    ``exp(cosine / temperature)``; a small floor keeps every seen class possible."""

    def __init__(self, k: int = 10, temperature: float = 0.05, floor: float = 1e-3) -> None:
        self.k = k
        self.temperature = temperature
        self.floor = floor

    def fit(self, V: np.ndarray, y: Any) -> "SimilarityVote":
        self.classes_ = np.array(sorted(set(np.asarray(y).tolist())), dtype=object)
        index = {c: i for i, c in enumerate(self.classes_)}
        self.V_ = np.asarray(V, dtype=np.float32)
        self.y_ = np.array([index[v] for v in np.asarray(y).tolist()])
        return self

    def predict_proba(self, V: np.ndarray) -> np.ndarray:
        S = np.asarray(V, dtype=np.float32) @ self.V_.T
        k = min(self.k, S.shape[1])
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        out = np.full((len(S), len(self.classes_)), self.floor)
        for i, cols in enumerate(top):
            w = np.exp((S[i, cols] - S[i, cols].max()) / self.temperature)
            np.add.at(out[i], self.y_[cols], w / w.sum())
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, V: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(V).argmax(axis=1)]


def embed_pipeline(kind: str, seed: int = 0) -> Any:
    """The ``embed_lr`` / ``embed_knn`` member pipelines."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    if kind == "embed_lr":
        return Pipeline([("x", EncodedText()), ("clf", LogisticRegression(C=2.0, max_iter=1000, random_state=seed))])
    if kind == "embed_knn":
        return Pipeline([("x", EncodedText()), ("clf", SimilarityVote())])
    raise ValueError(f"unknown model kind {kind!r}")


EMBED_KINDS = ("embed_lr", "embed_knn")
