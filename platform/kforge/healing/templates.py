"""Drain-style template mining (He et al., ICWS 2017) and the grouping-accuracy metric.

Messages are tokenised, masked (numbers, hex, paths, quoted values become ``<*>``), routed by
token count and the first ``depth - 2`` tokens through a fixed-depth tree, and merged into the
most similar group of the leaf when the share of equal tokens reaches ``sim_threshold``;
differing positions become ``<*>``.

Example::

    miner = Drain()
    for msg in messages:
        miner.add(msg)
    miner.templates()      # {cluster id: "Receiving block <*> src: <*> dest: <*>"}
"""

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

WILDCARD = "<*>"
_MASKS = [re.compile(p) for p in (
    r"(?:/[\w.\-]+)+/?",                                   # paths
    r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b",              # IPv4(:port)
    r"\b0x[0-9a-fA-F]+\b", r"\b[0-9a-fA-F]{8,}\b",        # hex
    r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)?(?![A-Za-z])",       # numbers
)]
_SPLIT = re.compile(r"[\s=,:;()\[\]{}]+")


def tokenize(message: str) -> list[str]:
    text = message
    for rx in _MASKS:
        text = rx.sub(" <*> ", text)
    return [t for t in _SPLIT.split(text) if t]


@dataclass
class Cluster:
    id: int
    template: list[str]
    size: int = 0


@dataclass
class Drain:
    depth: int = 4
    sim_threshold: float = 0.4
    max_children: int = 100
    clusters: list[Cluster] = field(default_factory=list)
    _tree: dict[tuple, list[int]] = field(default_factory=lambda: defaultdict(list))

    def _key(self, tokens: list[str]) -> tuple:
        prefix = []
        for t in tokens[: max(self.depth - 2, 0)]:
            prefix.append(WILDCARD if any(c.isdigit() for c in t) else t)
        return (len(tokens), *prefix)

    @staticmethod
    def _sim(template: list[str], tokens: list[str]) -> tuple[float, int]:
        same = sum(a == b for a, b in zip(template, tokens, strict=True) if a != WILDCARD)
        wild = sum(a == WILDCARD for a in template)
        return same / max(len(tokens), 1), wild

    def add(self, message: str) -> int:
        """Assign a message to a cluster (creating or generalising one); returns the cluster id."""
        tokens = tokenize(message)
        key = self._key(tokens)
        best, best_sim = None, -1.0
        for cid in self._tree[key]:
            c = self.clusters[cid]
            sim, wild = self._sim(c.template, tokens)
            if sim > best_sim or (sim == best_sim and best is not None and wild > self._sim(best.template, tokens)[1]):
                best, best_sim = c, sim
        if best is not None and best_sim >= self.sim_threshold:
            best.template = [a if a == b else WILDCARD for a, b in zip(best.template, tokens, strict=True)]
            best.size += 1
            return best.id
        c = Cluster(len(self.clusters), tokens, 1)
        self.clusters.append(c)
        self._tree[key].append(c.id)
        return c.id

    def fit(self, messages: Iterable[str]) -> list[int]:
        return [self.add(m) for m in messages]

    def match(self, message: str) -> int | None:
        """The cluster of a message without changing the model (None if no cluster is similar)."""
        tokens = tokenize(message)
        best, best_sim = None, -1.0
        for cid in self._tree.get(self._key(tokens), []):
            sim, _ = self._sim(self.clusters[cid].template, tokens)
            if sim > best_sim:
                best, best_sim = cid, sim
        return best if best_sim >= self.sim_threshold else None

    def templates(self) -> dict[int, str]:
        return {c.id: " ".join(c.template) for c in self.clusters}


def grouping_accuracy(truth: Sequence[str], predicted: Sequence[int | str]) -> float:
    """Loghub's metric: a message counts as correct when its predicted group holds exactly the
    messages of its true group."""
    by_pred: dict[object, set[int]] = defaultdict(set)
    by_true: dict[object, set[int]] = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, predicted, strict=True)):
        by_true[t].add(i)
        by_pred[p].add(i)
    correct = 0
    for members in by_pred.values():
        t = Counter(truth[i] for i in members)
        if len(t) == 1 and by_true[next(iter(t))] == members:
            correct += len(members)
    return correct / max(len(truth), 1)
