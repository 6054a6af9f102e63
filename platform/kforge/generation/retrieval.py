"""NNGen-style retrieval (Liu et al., ASE'18): the message of the nearest training diff.

Diffs become bag-of-words vectors (code tokens of changed lines and paths); the ``k`` most
cosine-similar training diffs are re-ranked by BLEU-4 between the diffs, and the best one's
message is the output.

``mode`` picks how the ``k`` candidates are found (the BLEU re-ranking after it is the same):

* ``"bow"`` (default): TF-IDF cosine, as above.
* ``"embedding"``: cosine of pretrained sentence embeddings (:class:`kforge.text.TextEncoder`) of
  :func:`embedding_doc`: the changed paths, then the distinct words of the changed lines, in order
  (the encoder reads 128 tokens, so repeated tokens and punctuation are dropped first).
* ``"hybrid"``: the mean of both cosines.

The embedding modes embed through the process's encoder (:func:`kforge.text.current_encoder`, the
one mechanism every family uses); it is never pickled with the index. Example::

    with use_encoder(TextEncoder(paths, warehouse)):
        index = RetrievalIndex(mode="hybrid").fit(train)
 Subsystem-aware: with a predicted subsystem, candidates carrying that
prefix get ``subsystem_bonus`` added to their re-ranking score. Issue texts are matched against
training messages' issue text the same way (for patch drafting context).
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from kforge.errors import InputError
from kforge.generation import labels, metrics

_CHANGED_CHARS = 4000
MODES = ("bow", "embedding", "hybrid")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]+")
_EMBED_WORDS = 160   # ~ the encoder's 128-token window once identifiers are split into word pieces


def _diff_doc(diff: str) -> str:
    lines = diff[:_CHANGED_CHARS].splitlines()
    paths = " ".join(labels.diff_paths(diff))
    return paths + "\n" + "\n".join(ln[1:] for ln in lines if ln[:1] in "+-" and not ln.startswith(("+++", "---")))


def embedding_doc(diff: str) -> str:
    """What the encoder reads of a diff: its paths, then the distinct words of its changed lines
    (first occurrence order, at most ``_EMBED_WORDS``)."""
    paths = labels.diff_paths(diff)
    words = dict.fromkeys(_WORD.findall(_diff_doc(diff).split("\n", 1)[-1]))
    return " ".join(paths) + "\n" + " ".join(list(words)[:_EMBED_WORDS])


@dataclass
class Neighbour:
    index: int
    sha: str
    subject: str
    body: str
    diff: str
    prefix: str
    similarity: float


@dataclass
class RetrievalIndex:
    k: int = 5
    subsystem_bonus: float = 0.1
    mode: str = "bow"
    rows: pl.DataFrame = field(default_factory=pl.DataFrame)
    _vec: Any = None
    _mat: Any = None
    _ivec: Any = None
    _imat: Any = None
    _emat: Any = None   # (rows, dim) unit-norm embeddings of the training diffs (embedding modes)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"retrieval mode must be one of {', '.join(MODES)}, got {self.mode!r}")

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.pop("embed", None)
        self.__dict__.update({"mode": "bow", "_emat": None, **state})   # older pickles: bow

    def _embed(self, diffs: list[str]) -> np.ndarray:
        """Embeddings through the process's encoder (:func:`kforge.text.current_encoder`; never pickled
        with the index: the CLI and the assets install the home's, whose cache is the warehouse)."""
        from kforge.text import current_encoder

        vecs = np.asarray(current_encoder().embed([embedding_doc(d) for d in diffs]), dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(diffs):
            raise InputError(f"the encoder returned shape {vecs.shape} for {len(diffs)} texts")
        return vecs

    def fit(self, train: pl.DataFrame) -> "RetrievalIndex":
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.rows = train.select("sha", "subject", "body", "diff", "prefix", "issue")
        self._vec = TfidfVectorizer(token_pattern=r"[A-Za-z_][A-Za-z0-9_]+", max_features=50000, sublinear_tf=True,
                                    dtype=np.float32)
        self._mat = self._vec.fit_transform([_diff_doc(d) for d in self.rows["diff"]]).tocsr()
        self._ivec = TfidfVectorizer(token_pattern=r"[A-Za-z_][A-Za-z0-9_]+", max_features=30000, sublinear_tf=True,
                                     dtype=np.float32)
        self._imat = self._ivec.fit_transform([f"{s} {i}" for s, i in zip(self.rows["subject"], self.rows["issue"], strict=True)]).tocsr()
        self._emat = self._embed(self.rows["diff"].to_list()) if self.mode != "bow" else None
        return self

    def _diff_sims(self, diffs: list[str]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start, dense similarity rows of diffs[start:start + 256] against the training diffs)."""
        q = self._vec.transform([_diff_doc(d) for d in diffs]).tocsr() if self.mode != "embedding" else None
        if self.mode != "bow" and self._emat is None:
            raise InputError(f"this index was fitted without embeddings: refit it in mode {self.mode!r}")
        for start in range(0, len(diffs), 256):  # one product per chunk of queries
            bow = np.asarray((q[start:start + 256] @ self._mat.T).todense()) if q is not None else None
            if self.mode == "bow":
                yield start, bow
                continue
            emb = self._embed(diffs[start:start + 256]) @ self._emat.T
            yield start, emb if bow is None else (bow + emb) / 2.0

    def __len__(self) -> int:
        return self.rows.height

    def _neighbours(self, sims: np.ndarray, top: int, exclude: int | None) -> list[int]:
        if exclude is not None:
            sims[exclude] = -1.0
        top = min(top, len(sims))
        idx = np.argpartition(-sims, top - 1)[:top]
        return [int(i) for i in idx[np.argsort(-sims[idx])]]

    def query_diffs(self, diffs: list[str], subsystems: list[str] | None = None, n: int = 1,
                    exclude_self: list[int] | None = None) -> list[list[Neighbour]]:
        """For each diff, ``n`` neighbours ranked NNGen-style (cosine top-k, then BLEU of diffs)."""
        out: list[list[Neighbour]] = []
        diff_col = self.rows["diff"]
        prefixes = self.rows["prefix"].to_list()
        for start, sims_chunk in self._diff_sims(diffs):
            for i in range(start, min(start + 256, len(diffs))):
                sims = sims_chunk[i - start]
                cand = self._neighbours(sims, max(self.k, n), exclude_self[i] if exclude_self else None)
                qprof = metrics.ngram_profile(_diff_doc(diffs[i])[:1500])
                scored = []
                for j in cand:
                    score = metrics.bleu_norm_profiles(metrics.ngram_profile(_diff_doc(diff_col[j])[:1500]), qprof) / 100.0
                    if subsystems and subsystems[i] and prefixes[j] == subsystems[i]:
                        score += self.subsystem_bonus
                    scored.append((score, j))
                scored.sort(key=lambda t: -t[0])
                out.append([self._row(j, float(sims[j])) for _, j in scored[:n]])
        return out

    def query_issues(self, issues: list[str], subsystems: list[str] | None = None, n: int = 2,
                     exclude_self: list[int] | None = None) -> list[list[Neighbour]]:
        q = self._ivec.transform(issues)
        out = []
        for i in range(len(issues)):
            sims = np.asarray((self._imat @ q[i].T).todense()).ravel()
            if subsystems and subsystems[i]:
                sims = sims + self.subsystem_bonus * (self.rows["prefix"] == subsystems[i]).to_numpy()
            out.append([self._row(j, float(sims[j])) for j in self._neighbours(sims, n, exclude_self[i] if exclude_self else None)])
        return out

    def _row(self, j: int, sim: float) -> Neighbour:
        r = self.rows.row(j, named=True)
        return Neighbour(j, r["sha"], r["subject"], r["body"], r["diff"], r["prefix"], sim)

    def nngen(self, diffs: list[str], subsystems: list[str] | None = None) -> list[str]:
        """The baseline's output: the subject of the best neighbour of each diff."""
        return [nb[0].subject if nb else "" for nb in self.query_diffs(diffs, subsystems, n=1)]
