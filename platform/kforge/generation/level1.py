"""Level 1: gradient boosting predicts subsystem, change type and complexity from a diff or an issue.

* **subsystem** (hundreds of prefixes on real data): a candidate ranker. Diff mode: candidates
  and features from the touched files (``subsystem.PathStats``: directory and file-name votes plus
  path templates whose hit rates are learned on train, so unseen drivers and moved directories
  still get a candidate); the ranker's training features are cross-fitted over time blocks of
  train, so it never learns from votes that saw the row itself. Issue mode: word -> prefix votes.
  A binary XGBoost scores each (input, candidate) pair and the best candidate wins.
* **change type / complexity**: multi-class XGBoost on a compact bag of tokens (paths,
  directories, identifiers on changed lines, or the issue's words; the 400 most frequent in
  train) plus diff sizes.

Confidence is calibrated on the validation split (later than train, earlier than test): isotonic
regression of the top score against correctness. ECE before/after is measured on test.
"""

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from kforge.errors import InputError
from kforge.generation import labels, subsystem

HEADS = ("subsystem", "change_type", "complexity")
MODES = ("diff", "issue")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,40}")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_/.-]{1,40}")


@dataclass
class Level1Config:
    n_estimators: int = 80
    max_depth: int = 6
    learning_rate: float = 0.2
    vocab: int = 400
    candidates: int = 5
    diff_candidates: int = 12
    folds: int = 4
    recent_share: float = 0.2
    n_jobs: int = 2
    seed: int = 7


def _dirs(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def diff_tokens(diff: str, max_chars: int = 6000) -> list[str]:
    toks = []
    for p in labels.diff_paths(diff)[:30]:
        toks += ["D:" + d for d in _dirs(p)[:3]] + ["E:" + p.rsplit(".", 1)[-1]]
    changed = "\n".join(ln[1:] for ln in diff[:max_chars].splitlines()
                        if ln[:1] in "+-" and not ln.startswith(("+++", "---")))
    return toks + ["I:" + t for t in _IDENT.findall(changed)]


def issue_tokens(text: str, max_chars: int = 3000) -> list[str]:
    return ["W:" + w.lower().strip("./-") for w in _WORD.findall((text or "")[:max_chars])]


class Vote:
    """key -> prefix counts from training rows; keys are directories (diff) or words (issue)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.table: dict[str, Counter] = defaultdict(Counter)

    def keys(self, item: str) -> list[list[str]]:
        """Per file (diff) or per word (issue): keys from most to least specific."""
        if self.mode == "diff":
            return [[p] + _dirs(p) for p in labels.diff_paths(item)[:50]]
        return [[w] for w in dict.fromkeys(issue_tokens(item))]

    def fit(self, items: list[str], prefixes: list[str]) -> "Vote":
        for it, p in zip(items, prefixes, strict=True):
            if p:
                for k in {k for ks in self.keys(it) for k in ks}:
                    self.table[k][p] += 1
        if self.mode == "issue":  # words present in most prefixes carry nothing
            n = len({p for p in prefixes if p}) or 1
            self.table = defaultdict(Counter, {k: c for k, c in self.table.items() if len(c) < max(3, n // 4)})
        return self

    def scores(self, item: str) -> Counter:
        votes: Counter = Counter()
        for ks in self.keys(item):
            for k in ks:
                c = self.table.get(k)
                if c and sum(c.values()) >= 2:
                    total = sum(c.values())
                    for p, v in c.items():
                        votes[p] += v / total
                    break
        return votes


def _iso(conf: np.ndarray, correct: np.ndarray) -> Any:
    from sklearn.isotonic import IsotonicRegression

    if len(conf) < 10 or correct.min() == correct.max():
        return None
    return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(conf, correct)


def ece(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


@dataclass
class SubsystemRanker:
    """Issue mode: word votes (``vote``); diff mode: ``subsystem.PathStats`` (``paths``)."""

    mode: str
    vote: Vote | None
    prior: dict[str, float]
    model: Any = None
    calib: Any = None
    paths: subsystem.PathStats | None = None

    def _candidates(self, item: str, k: int) -> tuple[list[str], np.ndarray]:
        paths = getattr(self, "paths", None)  # absent in rankers pickled before diff mode used PathStats
        if paths is not None:
            return paths.candidates(subsystem.file_changes(item), k)
        assert self.vote is not None
        votes = self.vote.scores(item)
        total = sum(votes.values()) or 1.0
        cands = [p for p, _ in votes.most_common(k)]
        rows = []
        n_keys = len(self.vote.keys(item))
        for rank, p in enumerate(cands):
            rows.append([votes[p], votes[p] / total, rank, math.log1p(self.prior.get(p, 0.0)), n_keys,
                         (votes[p] - votes[cands[1]]) / total if rank == 0 and len(cands) > 1 else 0.0,
                         p.count("/")])
        return cands, np.asarray(rows, dtype=np.float32).reshape(-1, 7)

    def fit(self, items: list[str], truth: list[str], k: int, cfg: Level1Config) -> "SubsystemRanker":
        """``items`` in time order (oldest first): cross-fitting folds and ``recent`` follow it."""
        import xgboost as xgb

        if self.mode == "diff":
            files = [subsystem.file_changes(it) for it in items]
            recent = [i >= (1.0 - cfg.recent_share) * len(items) for i in range(len(items))]
            cand_lists, xs = subsystem.cross_fit(files, truth, recent, cfg.folds, k)
            self.paths = subsystem.PathStats().fit(files, truth, recent)
            depth = cfg.max_depth
        else:
            cand_lists, xs = zip(*(self._candidates(it, k) for it in items), strict=True) if items else ((), ())
            depth = 4
        ys = [c == t for cands, t in zip(cand_lists, truth, strict=True) for c in cands]
        width = len(subsystem.FEATURES) if self.mode == "diff" else 7
        x = np.vstack(xs) if len(xs) else np.zeros((0, width), np.float32)
        y = np.asarray(ys, dtype=int)
        if len(set(y.tolist())) == 2:
            self.model = xgb.XGBClassifier(n_estimators=cfg.n_estimators, max_depth=depth,
                                           learning_rate=cfg.learning_rate, tree_method="hist", n_jobs=cfg.n_jobs,
                                           random_state=cfg.seed)
            self.model.fit(x, y)
        return self

    def k(self, cfg: Level1Config) -> int:
        return cfg.diff_candidates if self.mode == "diff" else cfg.candidates

    def predict(self, items: list[str], k: int) -> list[tuple[str, float]]:
        out = []
        for it in items:
            cands, x = self._candidates(it, k)
            if not cands:
                out.append(("", 0.0))
                continue
            s = self.model.predict_proba(x)[:, 1] if self.model is not None else x[:, 1]
            j = int(np.argmax(s))
            out.append((cands[j], float(s[j])))
        return out


@dataclass
class ClassHead:
    classes: list[str]
    model: Any = None
    calib: Any = None

    def predict(self, x: np.ndarray) -> list[tuple[str, float]]:
        if self.model is None:
            return [(self.classes[0], 1.0)] * len(x)
        p = self.model.predict_proba(x)
        return [(self.classes[int(j)], float(p[i, j])) for i, j in enumerate(p.argmax(axis=1))]


@dataclass
class Level1Model:
    """Two feature modes (``diff`` and ``issue``) with three calibrated heads each."""

    config: Level1Config = field(default_factory=Level1Config)
    vocab: dict[str, dict[str, int]] = field(default_factory=dict)
    rankers: dict[str, SubsystemRanker] = field(default_factory=dict)
    heads: dict[str, dict[str, ClassHead]] = field(default_factory=dict)

    def _tokens(self, mode: str, items: list[str]) -> list[list[str]]:
        return [diff_tokens(d) if mode == "diff" else issue_tokens(d) for d in items]

    def _x(self, mode: str, items: list[str]) -> np.ndarray:
        voc = self.vocab[mode]
        x = np.zeros((len(items), len(voc) + 3), dtype=np.float32)
        for i, toks in enumerate(self._tokens(mode, items)):
            for t in toks:
                j = voc.get(t)
                if j is not None:
                    x[i, j] += 1.0
            if mode == "diff":
                a, r = labels.diff_lines(items[i])
                x[i, -3:] = [math.log1p(a), math.log1p(r), math.log1p(len(labels.diff_paths(items[i])))]
            else:
                x[i, -3] = math.log1p(len(items[i]))
        x[:, :-3] = np.log1p(x[:, :-3])
        return x

    @staticmethod
    def _items(df: pl.DataFrame, mode: str) -> list[str]:
        return df["diff" if mode == "diff" else "issue"].to_list()

    def fit(self, train: pl.DataFrame, val: pl.DataFrame) -> "Level1Model":
        import xgboost as xgb

        cfg = self.config
        if "ts" in train.columns:
            train = train.sort("ts", maintain_order=True)
        prior = dict(Counter(p for p in train["prefix"] if p))
        for mode in MODES:
            items = self._items(train, mode)
            counts = Counter(t for toks in self._tokens(mode, items) for t in set(toks))
            self.vocab[mode] = {t: i for i, (t, _) in enumerate(counts.most_common(cfg.vocab))}
            vote = Vote(mode).fit(items, train["prefix"].to_list()) if mode == "issue" else None
            ranker = SubsystemRanker(mode, vote, prior)
            self.rankers[mode] = ranker.fit(items, train["prefix"].to_list(), ranker.k(cfg), cfg)
            x = self._x(mode, items)
            self.heads[mode] = {}
            for head in ("change_type", "complexity"):
                classes = sorted(set(train[head].to_list()))
                h = ClassHead(classes)
                if len(classes) > 1:
                    idx = {c: i for i, c in enumerate(classes)}
                    h.model = xgb.XGBClassifier(n_estimators=cfg.n_estimators, max_depth=cfg.max_depth,
                                                learning_rate=cfg.learning_rate, tree_method="hist", n_jobs=cfg.n_jobs,
                                                random_state=cfg.seed, subsample=0.9, colsample_bytree=0.5)
                    h.model.fit(x, np.asarray([idx[c] for c in train[head]]))
                self.heads[mode][head] = h
        if val.height >= 10:
            self._calibrate(val)
        return self

    def _calibrate(self, val: pl.DataFrame) -> None:
        for mode in MODES:
            raw = self._raw(mode, self._items(val, mode))
            for head in HEADS:
                truth = val["prefix" if head == "subsystem" else head].to_list()
                conf = np.asarray([r[head][1] for r in raw])
                ok = np.asarray([r[head][0] == t for r, t in zip(raw, truth, strict=True)], dtype=float)
                cal = _iso(conf, ok)
                if head == "subsystem":
                    self.rankers[mode].calib = cal
                else:
                    self.heads[mode][head].calib = cal

    def _raw(self, mode: str, items: list[str]) -> list[dict[str, tuple[str, float]]]:
        x = self._x(mode, items)
        ranker = self.rankers[mode]
        sub = ranker.predict(items, ranker.k(self.config))
        ct = self.heads[mode]["change_type"].predict(x)
        cx = self.heads[mode]["complexity"].predict(x)
        return [{"subsystem": s, "change_type": a, "complexity": b} for s, a, b in zip(sub, ct, cx, strict=True)]

    def predict(self, diffs: list[str] | None = None, issues: list[str] | None = None,
                calibrated: bool = True) -> list[dict[str, Any]]:
        """One dict per input: subsystem, change_type, complexity and a calibrated ``*_conf`` each."""
        if not self.heads:
            raise InputError("level-1 model is not trained")
        if (diffs is None) == (issues is None):
            raise InputError("give either diffs or issue texts")
        mode = "diff" if diffs is not None else "issue"
        items = diffs if diffs is not None else issues
        assert items is not None
        out = []
        for r in self._raw(mode, items):
            row = {k: v for head in HEADS for k, v in ((head, r[head][0]), (f"{head}_conf", r[head][1]))}
            out.append(self._calibrated(mode, row) if calibrated else row)
        return out

    def _calibrated(self, mode: str, row: dict[str, Any]) -> dict[str, Any]:
        out = dict(row)
        for head in HEADS:
            cal = self.rankers[mode].calib if head == "subsystem" else self.heads[mode][head].calib
            if cal is not None:
                out[f"{head}_conf"] = float(cal.predict([row[f"{head}_conf"]])[0])
        return out

    def evaluate(self, test: pl.DataFrame, mode: str = "diff") -> dict[str, float]:
        """Accuracy and ECE (raw and calibrated confidence) on held-out rows."""
        items = self._items(test, mode)
        raw = self.predict(**{f"{mode}s": items}, calibrated=False)
        cal = [self._calibrated(mode, r) for r in raw]
        res: dict[str, float] = {}
        for head in HEADS:
            truth = test["prefix" if head == "subsystem" else head].to_list()
            ok = np.asarray([p[head] == t for p, t in zip(cal, truth, strict=True)], dtype=float)
            res[f"{mode}_{head}_acc"] = float(ok.mean())
            res[f"{mode}_{head}_ece_raw"] = ece(np.asarray([p[f"{head}_conf"] for p in raw]), ok)
            res[f"{mode}_{head}_ece"] = ece(np.asarray([p[f"{head}_conf"] for p in cal]), ok)
        return res

    def predict_frame(self, df: Any) -> Any:
        """pyfunc-style entry point: a frame with a ``diff`` or an ``issue`` column."""
        import pandas as pd

        if "diff" in df.columns:
            return pd.DataFrame(self.predict(diffs=[str(x) for x in df["diff"]]))
        if "issue" in df.columns:
            return pd.DataFrame(self.predict(issues=[str(x) for x in df["issue"]]))
        raise InputError("level-1 input needs a 'diff' or an 'issue' column")


def majority_baseline(train: pl.DataFrame, test: pl.DataFrame) -> dict[str, float]:
    """The named simple baseline: always predict the most frequent training label."""
    res = {}
    for head, col in (("subsystem", "prefix"), ("change_type", "change_type"), ("complexity", "complexity")):
        top = Counter(train[col].to_list()).most_common(1)[0][0]
        res[f"majority_{head}_acc"] = float((test[col] == top).mean())
    return res
