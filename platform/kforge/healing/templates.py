"""Drain template mining (He et al., ICWS 2017) and the grouping-accuracy metric.

Drain, as published and as run in the loghub benchmark (Zhu et al., ICSE-SEIP 2019):

1. **Preprocess**: every match of the domain regexes becomes ``<*>``; the message is split into tokens.
2. **Fixed-depth parse tree**: the first layer routes by token count, the next ``depth - 3`` layers by the
   leading tokens (a token holding a digit goes to the ``<*>`` child; a node holds at most ``max_children``
   children, after which new tokens share its ``<*>`` child). ``depth`` counts the root, the length layer,
   the token layers and the leaf, as in the benchmark's settings.
3. **Leaf**: the group whose template is most similar (simSeq = equal non-wildcard tokens / length, ties to the
   template with more wildcards) takes the message when simSeq >= ``st``; differing positions become ``<*>``.
   Otherwise the message starts a new group at that leaf.

Groups whose final templates are equal are one event (the benchmark identifies events by template), which
:meth:`Drain.events` gives. Per-system settings of the benchmark are in ``data/drain_settings.json``
(:meth:`Drain.for_system`); an unknown system gets generic masks (numbers, hex, paths, IPs) that keep
``<*>`` a token of its own, which :func:`kforge.healing.suggest.template_regex` relies on.

Example::

    miner = Drain.for_system("HDFS")
    ids = miner.fit(messages)
    miner.events(ids)      # ["Receiving block <*> src: <*> dest: <*>", ...]
"""

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

WILDCARD = "<*>"
SETTINGS_PATH = Path(__file__).parent / "data" / "drain_settings.json"
GENERIC_REGEXES = (
    r"(?:/[\w.\-]+)+/?",                                   # paths
    r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b",              # IPv4(:port)
    r"\b0x[0-9a-fA-F]+\b", r"\b[0-9a-fA-F]{8,}\b",        # hex
    r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)?(?![A-Za-z])",       # numbers
)
GENERIC_SPLIT = r"[\s=,:;()\[\]{}]+"


@cache
def benchmark_settings() -> dict[str, dict]:
    """System name -> ``{"regexes", "depth", "st", "published_accuracy"}`` of the loghub benchmark."""
    return json.loads(SETTINGS_PATH.read_text())["systems"]


@dataclass
class Cluster:
    id: int
    template: list[str]
    size: int = 0


@dataclass
class _Node:
    children: dict[str, "_Node"] = field(default_factory=dict)
    clusters: list[int] = field(default_factory=list)


@dataclass
class Drain:
    """Online Drain; the defaults are the generic ones (for errors of no known system)."""

    depth: int = 4
    sim_threshold: float = 0.4
    max_children: int = 100
    regexes: Sequence[str] = GENERIC_REGEXES
    mask: str = f" {WILDCARD} "       # what a regex match becomes (the benchmark: "<*>", in place)
    split: str | None = GENERIC_SPLIT  # token separators (None: whitespace, as the benchmark)
    clusters: list[Cluster] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rx = [re.compile(p) for p in self.regexes]
        self._split = re.compile(self.split) if self.split else None
        self._root: dict[int, _Node] = {}

    @classmethod
    def for_system(cls, system: str | None) -> "Drain":
        """The benchmark's settings for a loghub system; generic defaults for any other name."""
        s = benchmark_settings().get(system or "")
        if s is None:
            return cls()
        return cls(depth=s["depth"], sim_threshold=s["st"], regexes=tuple(s["regexes"]), mask=WILDCARD, split=None)

    def tokenize(self, message: str) -> list[str]:
        text = message.strip()
        for rx in self._rx:
            text = rx.sub(self.mask, text)
        return [t for t in self._split.split(text) if t] if self._split else text.split()

    def _prefix(self, tokens: list[str]) -> list[str]:
        return tokens[: max(self.depth - 3, 0)]

    def _leaf(self, tokens: list[str], create: bool) -> _Node | None:
        node = self._root.get(len(tokens))
        if node is None:
            if not create:
                return None
            node = self._root[len(tokens)] = _Node()
        for tok in self._prefix(tokens):
            if tok in node.children:
                node = node.children[tok]
            elif not create:
                node = node.children.get(WILDCARD)
                if node is None:
                    return None
            else:
                node = self._child(node, tok)
        return node

    def _child(self, node: _Node, tok: str) -> _Node:
        """Routes a token not yet under ``node`` (creating its child while there is room)."""
        kids = node.children
        if any(c.isdigit() for c in tok):
            tok = WILDCARD
        elif len(kids) + (WILDCARD not in kids) >= self.max_children:
            tok = WILDCARD  # full: the last slot is kept for the wildcard child
        return kids.setdefault(tok, _Node())

    def _best(self, leaf: _Node | None, tokens: list[str]) -> Cluster | None:
        best, best_sim, best_wild = None, -1.0, -1
        for cid in leaf.clusters if leaf else ():
            c = self.clusters[cid]
            same = sum(a == b for a, b in zip(c.template, tokens, strict=True) if a != WILDCARD)
            sim, wild = same / max(len(tokens), 1), c.template.count(WILDCARD)
            if sim > best_sim or (sim == best_sim and wild > best_wild):
                best, best_sim, best_wild = c, sim, wild
        return best if best is not None and best_sim >= self.sim_threshold else None

    def add(self, message: str) -> int:
        """Assign a message to a group (creating or generalising one); returns the group id."""
        tokens = self.tokenize(message)
        best = self._best(self._leaf(tokens, create=False), tokens)
        if best is not None:
            best.template = [a if a == b else WILDCARD for a, b in zip(best.template, tokens, strict=True)]
            best.size += 1
            return best.id
        c = Cluster(len(self.clusters), tokens, 1)
        self.clusters.append(c)
        self._leaf(tokens, create=True).clusters.append(c.id)
        return c.id

    def fit(self, messages: Iterable[str]) -> list[int]:
        return [self.add(m) for m in messages]

    def match(self, message: str) -> int | None:
        """The group of a message without changing the model (None if no group is similar enough)."""
        tokens = self.tokenize(message)
        best = self._best(self._leaf(tokens, create=False), tokens)
        return None if best is None else best.id

    def templates(self) -> dict[int, str]:
        return {c.id: " ".join(c.template) for c in self.clusters}

    def events(self, cluster_ids: Iterable[int]) -> list[str]:
        """The event (final template) of each group id: groups with equal templates are one event."""
        t = self.templates()
        return [t[c] for c in cluster_ids]


@dataclass
class LegacyDrain:
    """kforge's first miner, kept as the baseline row: generic masks, one flat bucket per (length, first
    ``depth - 2`` tokens), no children limit, groups identified by id."""

    depth: int = 4
    sim_threshold: float = 0.4
    _buckets: dict[tuple, list[list[str]]] = field(default_factory=lambda: defaultdict(list))
    _ids: dict[int, int] = field(default_factory=dict)

    def fit(self, messages: Iterable[str]) -> list[int]:
        tok = Drain()
        out, n = [], 0
        for m in messages:
            tokens = tok.tokenize(m)
            key = (len(tokens), *(WILDCARD if any(c.isdigit() for c in t) else t for t in tokens[: self.depth - 2]))
            best, best_sim, best_wild = None, -1.0, -1
            for tpl in self._buckets[key]:
                sim = sum(a == b for a, b in zip(tpl, tokens, strict=True) if a != WILDCARD) / max(len(tokens), 1)
                if sim > best_sim or (sim == best_sim and tpl.count(WILDCARD) > best_wild):
                    best, best_sim, best_wild = tpl, sim, tpl.count(WILDCARD)
            if best is not None and best_sim >= self.sim_threshold:
                best[:] = [a if a == b else WILDCARD for a, b in zip(best, tokens, strict=True)]
            else:
                best = tokens
                self._buckets[key].append(best)
                self._ids[id(best)], n = n, n + 1
            out.append(self._ids[id(best)])
        return out


def grouping_accuracy(truth: Sequence[object], predicted: Sequence[object]) -> float:
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
