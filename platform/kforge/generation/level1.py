"""Level 1: gradient boosting predicts subsystem, change type and complexity from a diff or an issue.

Features are hashed tokens (file paths and their directories, identifiers on changed lines, or the
issue's words) plus diff sizes. Subsystem classes are the ``top_k`` training prefixes plus
``<other>``; when the booster says ``<other>`` the prediction falls back to a path vote (the most
frequent training prefix of the deepest known directory the diff touches). Each head is
calibrated by temperature scaling on the validation split (time-ordered, after train); the
expected calibration error before/after is measured on test.
"""

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import sparse

from kforge.errors import InputError
from kforge.generation import labels

OTHER = "<other>"
HEADS = ("subsystem", "change_type", "complexity")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,40}")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_/.-]{1,40}")


@dataclass
class Level1Config:
    top_k: int = 60
    n_estimators: int = 60
    max_depth: int = 6
    learning_rate: float = 0.25
    n_features: int = 2**12
    n_jobs: int = 2
    seed: int = 7


def _dirs(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def diff_tokens(diff: str, max_chars: int = 6000) -> str:
    toks = []
    for p in labels.diff_paths(diff)[:30]:
        toks.append("F:" + p)
        toks += ["D:" + d for d in _dirs(p)]
        toks += ["P:" + t for t in re.split(r"[/._-]", p) if t]
    changed = "\n".join(ln[1:] for ln in diff[:max_chars].splitlines()
                        if ln[:1] in "+-" and not ln.startswith(("+++", "---")))
    toks += ["I:" + t for t in _IDENT.findall(changed)]
    return " ".join(toks)


def issue_tokens(text: str, max_chars: int = 3000) -> str:
    return " ".join("W:" + w.lower() for w in _WORD.findall((text or "")[:max_chars]))


class PathVote:
    """Directory -> prefix counts from training commits (the fallback and a feature)."""

    def __init__(self) -> None:
        self.table: dict[str, Counter] = defaultdict(Counter)

    def fit(self, diffs: list[str], prefixes: list[str]) -> "PathVote":
        for d, p in zip(diffs, prefixes, strict=True):
            if not p:
                continue
            for d2 in {x for path in labels.diff_paths(d) for x in _dirs(path) + [path]}:
                self.table[d2][p] += 1
        return self

    def predict(self, diff: str) -> tuple[str, float]:
        votes: Counter = Counter()
        for path in labels.diff_paths(diff):
            for d in [path] + _dirs(path):
                c = self.table.get(d)
                if c and sum(c.values()) >= 2:
                    total = sum(c.values())
                    for k, v in c.items():
                        votes[k] += v / total
                    break
        if not votes:
            return "", 0.0
        best, score = votes.most_common(1)[0]
        return best, score / sum(votes.values())


def _numeric(diffs: list[str] | None, n: int) -> np.ndarray:
    if diffs is None:
        return np.zeros((n, 3), dtype=np.float32)
    rows = []
    for d in diffs:
        a, r = labels.diff_lines(d)
        rows.append([math.log1p(a), math.log1p(r), math.log1p(len(labels.diff_paths(d)))])
    return np.asarray(rows, dtype=np.float32)


def _softmax_t(p: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(p, 1e-9, 1.0)) / t
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(math.log(0.25), math.log(8.0), 60)):
        q = _softmax_t(p, float(t))
        nll = -float(np.mean(np.log(np.clip(q[np.arange(len(y)), y], 1e-12, 1.0))))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def ece(conf: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


@dataclass
class Head:
    classes: list[str]
    model: Any
    temperature: float = 1.0

    def proba(self, x: sparse.csr_matrix) -> np.ndarray:
        p = np.zeros((x.shape[0], len(self.classes)))
        if len(self.classes) == 1:
            p[:, 0] = 1.0
            return p
        return _softmax_t(self.model.predict_proba(x), self.temperature)


@dataclass
class Level1Model:
    """Two feature modes (``diff`` and ``issue``), three heads each, plus the path vote."""

    config: Level1Config
    heads: dict[str, dict[str, Head]] = field(default_factory=dict)
    path_vote: PathVote = field(default_factory=PathVote)

    def _x(self, mode: str, diffs: list[str] | None, issues: list[str] | None) -> sparse.csr_matrix:
        from sklearn.feature_extraction.text import HashingVectorizer

        hv = HashingVectorizer(n_features=self.config.n_features, token_pattern=r"\S+", lowercase=False,
                               alternate_sign=False, norm="l2")
        if mode == "diff":
            assert diffs is not None
            texts = []
            for d in diffs:
                cand, _ = self.path_vote.predict(d)
                texts.append(diff_tokens(d) + (f" PV:{cand}" if cand else " PV:none"))
            n = len(diffs)
        else:
            assert issues is not None
            texts, n = [issue_tokens(t) for t in issues], len(issues)
        return sparse.hstack([hv.transform(texts), sparse.csr_matrix(_numeric(diffs if mode == "diff" else None, n))]).tocsr()

    def _targets(self, df: pl.DataFrame, head: str) -> list[str]:
        if head == "subsystem":
            return [p if p else OTHER for p in df["prefix"]]
        return df[head].to_list()

    def fit(self, train: pl.DataFrame, val: pl.DataFrame) -> "Level1Model":
        import xgboost as xgb

        cfg = self.config
        self.path_vote = PathVote().fit(train["diff"].to_list(), train["prefix"].to_list())
        top = [p for p, _ in Counter(p for p in train["prefix"] if p).most_common(cfg.top_k)]
        for mode in ("diff", "issue"):
            xtr = self._x(mode, train["diff"].to_list(), train["issue"].to_list())
            xva = self._x(mode, val["diff"].to_list(), val["issue"].to_list()) if val.height else None
            self.heads[mode] = {}
            for head in HEADS:
                ytr = self._targets(train, head)
                if head == "subsystem":
                    ytr = [y if y in top else OTHER for y in ytr]
                classes = sorted(set(ytr))
                index = {c: i for i, c in enumerate(classes)}
                model = None
                if len(classes) > 1:
                    model = xgb.XGBClassifier(n_estimators=cfg.n_estimators, max_depth=cfg.max_depth,
                                              learning_rate=cfg.learning_rate, tree_method="hist", n_jobs=cfg.n_jobs,
                                              random_state=cfg.seed, max_bin=64, subsample=0.9)
                    model.fit(xtr, np.asarray([index[y] for y in ytr]))
                h = Head(classes, model)
                if xva is not None and model is not None:
                    yva = self._targets(val, head)
                    if head == "subsystem":
                        yva = [y if y in index else OTHER for y in yva]
                    keep = np.asarray([y in index for y in yva])
                    if keep.sum() >= 10:
                        h.temperature = fit_temperature(model.predict_proba(xva)[keep],
                                                        np.asarray([index[y] for y, k in zip(yva, keep, strict=True) if k]))
                self.heads[mode][head] = h
        return self

    def predict(self, diffs: list[str] | None = None, issues: list[str] | None = None) -> list[dict[str, Any]]:
        """One dict per input: subsystem, change_type, complexity and a calibrated ``*_conf`` each."""
        if not self.heads:
            raise InputError("level-1 model is not trained")
        mode = "diff" if diffs is not None else "issue"
        items = diffs if diffs is not None else issues
        if items is None:
            raise InputError("give diffs or issue texts")
        x = self._x(mode, diffs, issues)
        out: list[dict[str, Any]] = [{} for _ in items]
        for head in HEADS:
            h = self.heads[mode][head]
            p = h.proba(x)
            best = p.argmax(axis=1)
            for i, j in enumerate(best):
                label, conf = h.classes[j], float(p[i, j])
                if head == "subsystem" and label == OTHER:
                    cand, purity = self.path_vote.predict(diffs[i]) if diffs is not None else ("", 0.0)
                    label, conf = cand, conf * purity
                out[i][head] = label
                out[i][f"{head}_conf"] = conf
        return out

    def evaluate(self, test: pl.DataFrame, mode: str = "diff") -> dict[str, float]:
        """Accuracy (+ ECE of the calibrated confidence) on held-out rows, with the majority baseline."""
        preds = self.predict(diffs=test["diff"].to_list()) if mode == "diff" else self.predict(issues=test["issue"].to_list())
        res: dict[str, float] = {}
        for head in HEADS:
            truth = [t if t else "" for t in (test["prefix"] if head == "subsystem" else test[head]).to_list()]
            correct = np.asarray([p[head] == t for p, t in zip(preds, truth, strict=True)], dtype=float)
            conf = np.asarray([p[f"{head}_conf"] for p in preds])
            res[f"{mode}_{head}_acc"] = float(correct.mean())
            res[f"{mode}_{head}_ece"] = ece(conf, correct)
        if mode == "diff":
            pv = [self.path_vote.predict(d)[0] for d in test["diff"]]
            res["diff_subsystem_pathvote_acc"] = float(np.mean([a == b for a, b in zip(pv, test["prefix"], strict=True)]))
        return res

    def predict_frame(self, df: Any) -> Any:
        """pyfunc entry point: a frame with a ``diff`` or an ``issue`` column."""
        import pandas as pd

        cols = list(df.columns)
        if "diff" in cols:
            rows = self.predict(diffs=[str(x) for x in df["diff"]])
        elif "issue" in cols:
            rows = self.predict(issues=[str(x) for x in df["issue"]])
        else:
            raise InputError("level-1 input needs a 'diff' or an 'issue' column")
        return pd.DataFrame(rows)


def majority_baseline(train: pl.DataFrame, test: pl.DataFrame) -> dict[str, float]:
    res = {}
    for head, col in (("subsystem", "prefix"), ("change_type", "change_type"), ("complexity", "complexity")):
        top = Counter(train[col].to_list()).most_common(1)[0][0]
        res[f"majority_{head}_acc"] = float((test[col] == top).mean())
    return res
