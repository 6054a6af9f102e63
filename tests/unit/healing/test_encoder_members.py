"""The pretrained-encoder members of the healing classifier (issue 20): a switch adds them to notebook models, they
embed through the process's encoder (never pickled with the model), and the nearest-neighbour vote follows the
closest training rows."""

import pickle
import re
import zlib

import numpy as np
import pytest
from kforge.healing.config import HealingConfig
from kforge.healing.embedding import SimilarityVote
from kforge.healing.features import frame_of, record
from kforge.healing.model import train_bundle
from kforge.healing.train import classifier_candidate
from kforge.text import current_encoder, use_encoder
from kforge.text.members import EncodedText

from tests.unit.healing.test_generalize import _rows

LABEL = "label_root_cause"


class WordsEncoder:
    """A stand-in for ``TextEncoder``: hashed bag of words, unit norm (texts sharing words are close)."""

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"[A-Za-z]+", t):
                out[i, zlib.crc32(w.encode()) % 384] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def _unsourced(n: int) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "nb_source"} for r in _rows("x", n)]


def test_similarity_vote_follows_the_nearest_rows() -> None:
    V = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    vote = SimilarityVote(k=2).fit(V, ["a", "a", "b", "b"])
    p = vote.predict_proba(np.array([[1.0, 0.05], [0.05, 1.0]], dtype=np.float32))
    assert list(vote.classes_) == ["a", "b"] and np.allclose(p.sum(axis=1), 1.0)
    assert list(vote.predict(np.array([[1.0, 0.05], [0.05, 1.0]], dtype=np.float32))) == ["a", "b"]
    assert p[0, 0] > 0.9 and p[0, 1] > 0.0   # the floor keeps the other class possible


def test_the_switch_adds_encoder_members_that_embed_through_the_process_encoder() -> None:
    rows, fake = _unsourced(36), WordsEncoder()
    with use_encoder(fake):
        off = train_bundle({"python": (rows[:24], (LABEL,), "group")}, kinds=("linear",))
        on = train_bundle({"python": (rows[:24], (LABEL,), "group")}, kinds=("linear",), text_encoder=True)
        assert current_encoder() is fake
    assert current_encoder() is not fake   # the block restores the previous encoder
    assert set(off.models["python"][LABEL].ensemble.members) == {"linear", "tfidf_lr"}
    assert set(on.models["python"][LABEL].ensemble.members) == {"linear", "tfidf_lr", "embed_lr", "embed_knn"}
    assert fake.calls > 0

    blob = pickle.dumps(on)
    assert b"WordsEncoder" not in blob   # the members hold no encoder: a pickled model carries no model weights
    again, later = pickle.loads(blob), WordsEncoder()
    with use_encoder(later):
        out = again.classify([{"id": r["id"], "traceback": r["traceback"]} for r in rows[24:]])
    assert later.calls > 0
    assert np.mean([o[f"pred_{LABEL}"] == r[LABEL] for o, r in zip(out, rows[24:], strict=True)]) >= 0.9


def test_embed_field_is_the_exception_and_its_message() -> None:
    tb = ('Traceback (most recent call last):\n  File "a.py", line 3, in <module>\n    df["price"]\n'
          "KeyError: 'price'\n")
    X = frame_of([record({"id": "a", "traceback": tb})])
    assert X.loc[0, "embed"] == "KeyError: 'price'"
    assert EncodedText().fit(X).get_params() == {"column": "embed"}


def test_the_candidate_records_the_switch() -> None:
    with use_encoder(WordsEncoder()):
        cand, model, _, _ = classifier_candidate({"python": (_unsourced(48), (LABEL,), "group")},
                                                 HealingConfig(members=("linear",), text_encoder=True))
    assert cand.params["text_encoder"] is True
    assert "embed_knn" in model.models["python"][LABEL].ensemble.members


@pytest.mark.parametrize("on", [False, True])
def test_config_default_matches_the_cli_and_asset(on: bool) -> None:
    from assets.healing import HealingTrainConfig

    assert HealingTrainConfig(text_encoder=on).healing_config(("classifier",)).text_encoder is on
    assert HealingTrainConfig().text_encoder is HealingConfig().text_encoder
