"""NNGen-style retrieval (Liu et al., ASE'18): the message of the nearest training diff.

Diffs become bag-of-words vectors (code tokens of changed lines and paths); the ``k`` most
cosine-similar training diffs are re-ranked by BLEU-4 between the diffs, and the best one's
message is the output. Subsystem-aware: with a predicted subsystem, candidates carrying that
prefix get ``subsystem_bonus`` added to their re-ranking score. Issue texts are matched against
training messages' issue text the same way (for patch drafting context).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from kforge.generation import labels, metrics

_CHANGED_CHARS = 4000


def _diff_doc(diff: str) -> str:
    lines = diff[:_CHANGED_CHARS].splitlines()
    paths = " ".join(labels.diff_paths(diff))
    return paths + "\n" + "\n".join(ln[1:] for ln in lines if ln[:1] in "+-" and not ln.startswith(("+++", "---")))


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
    rows: pl.DataFrame = field(default_factory=pl.DataFrame)
    _vec: Any = None
    _mat: Any = None
    _ivec: Any = None
    _imat: Any = None

    def fit(self, train: pl.DataFrame) -> "RetrievalIndex":
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.rows = train.select("sha", "subject", "body", "diff", "prefix", "issue")
        self._vec = TfidfVectorizer(token_pattern=r"[A-Za-z_][A-Za-z0-9_]+", max_features=50000, sublinear_tf=True,
                                    dtype=np.float32)
        self._mat = self._vec.fit_transform([_diff_doc(d) for d in self.rows["diff"]]).tocsr()
        self._ivec = TfidfVectorizer(token_pattern=r"[A-Za-z_][A-Za-z0-9_]+", max_features=30000, sublinear_tf=True,
                                     dtype=np.float32)
        self._imat = self._ivec.fit_transform([f"{s} {i}" for s, i in zip(self.rows["subject"], self.rows["issue"], strict=True)]).tocsr()
        return self

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
        q = self._vec.transform([_diff_doc(d) for d in diffs]).tocsr()
        out: list[list[Neighbour]] = []
        diff_col = self.rows["diff"]
        prefixes = self.rows["prefix"].to_list()
        for start in range(0, len(diffs), 256):  # one sparse product per chunk of queries
            sims_chunk = np.asarray((q[start:start + 256] @ self._mat.T).todense())
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
