"""Subsystem candidates and ranker features from a diff's touched files (diff mode of level 1).

Three candidate sources, all learned on training rows only:

* **directory vote**: for each touched file, the most specific training directory (or the path
  itself) seen at least twice votes with its prefix distribution (``drivers/net/mlx5`` -> ``net/mlx5``).
* **suffix vote**: the same keyed by the file name and its last directories, so a file that
  *moved* (DPDK moved ``drivers/net/ice`` to ``drivers/net/intel/ice`` after our training window)
  still finds the prefix its name carried (``ice_ethdev.c`` -> ``net/ice``).
* **path templates**: strings built from 1-3 directory components of a touched path
  (``drivers/net/nbl/nbl_dev/x.c`` -> ``net/nbl``, ``net/nbl_dev``, ``nbl``, ...). Each template
  (root component + chosen positions) has a hit rate learned on train, so DPDK's convention
  (``drivers/<class>/<driver>`` -> ``<class>/<driver>``, ``lib/<lib>`` -> ``<lib>``) is learned,
  not hard-coded, and a driver never seen in train still gets a candidate.

Per candidate the ranker sees: both votes, the share of files and of changed lines that produce
it through a template, the template's hit rate, its prior and recent frequency in train, and a
few row-level facts (file count, share of doc/test/driver files).
"""

import itertools
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

_FILE = re.compile(r"^diff --git a/\S+ b/(\S+)", re.M)
_PIECE = re.compile(r"[_\-]+")
MAX_FILES = 50
MAX_COMPS = 6
FEATURES = ("dir_vote", "dir_share", "dir_rank", "suf_vote", "suf_share", "tpl_files", "tpl_lines", "tpl_rate",
            "tpl_rate_w", "log_prior", "log_recent", "known", "depth", "log_files", "pre_rank", "doc_share",
            "test_share", "drivers_share", "top_line_share")


def file_changes(diff: str) -> list[tuple[str, int]]:
    """(path, changed lines) per file of a unified diff, in diff order (at most ``MAX_FILES``)."""
    out: list[tuple[str, int]] = []
    starts = [(m.start(), m.group(1)) for m in _FILE.finditer(diff or "")]
    for i, (pos, path) in enumerate(starts[:MAX_FILES]):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(diff)
        n = 0
        for ln in diff[pos:end].splitlines():
            if ln[:1] in "+-" and not ln.startswith(("+++", "---")):
                n += 1
        out.append((path, n))
    return out


def _dirs(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _suffix_keys(path: str) -> list[str]:
    parts = path.split("/")
    keys = ["B:" + parts[-1]]
    if len(parts) >= 3:
        keys.append("L2:" + "/".join(parts[-3:-1]))
    if len(parts) >= 2:
        keys.append("L1:" + parts[-2])
    return keys


def templates(path: str) -> list[tuple[str, str]]:
    """(template key, candidate) pairs from ``path``.

    Directory templates: 1-3 directory components, order kept (``drivers/net/mlx5/hws/x.c`` ->
    ``net/mlx5``). Stem templates: one directory component + one piece of the file name
    (``lib/bpf/bpf_validate.c`` -> ``bpf/validate``, ``app/test/test_memcpy.c`` -> ``test/memcpy``).
    The key names the root component, the depth and the positions used, never the words.
    """
    comps = path.split("/")[:-1][:MAX_COMPS]
    root = comps[0] if len(comps) > 1 else "."
    stem = path.rsplit("/", 1)[-1].split(".", 1)[0].lower()
    pieces = [x for x in _PIECE.split(stem) if x][:3]
    out = [(f"{root}|{len(comps)}|s{j}", x) for j, x in enumerate(pieces)]
    for n in (1, 2, 3):
        for idx in itertools.combinations(range(len(comps)), n):
            out.append((f"{root}|{len(comps)}|{','.join(map(str, idx))}", "/".join(comps[i] for i in idx)))
    for i, c in enumerate(comps):
        out += [(f"{root}|{len(comps)}|{i}s{j}", f"{c}/{x}") for j, x in enumerate(pieces)]
    return out


class _Table:
    """key -> prefix counts; a per-file lookup takes the first key (most specific) seen twice."""

    def __init__(self) -> None:
        self.table: dict[str, Counter] = defaultdict(Counter)

    def add(self, keys: set[str], prefix: str) -> None:
        for k in keys:
            self.table[k][prefix] += 1

    def scores(self, keys_per_file: list[list[str]]) -> Counter:
        votes: Counter = Counter()
        for ks in keys_per_file:
            for k in ks:
                c = self.table.get(k)
                if c:
                    total = sum(c.values())
                    if total >= 2:
                        for p, v in c.items():
                            votes[p] += v / total
                        break
        return votes


@dataclass
class PathStats:
    """What the diff-mode ranker learns from a set of training rows (one cross-fitting fold, or all)."""

    dirs: _Table = field(default_factory=_Table)
    suffix: _Table = field(default_factory=_Table)
    prior: Counter = field(default_factory=Counter)
    recent: Counter = field(default_factory=Counter)
    tpl_hits: Counter = field(default_factory=Counter)
    tpl_tries: Counter = field(default_factory=Counter)

    def fit(self, files: list[list[tuple[str, int]]], prefixes: list[str], recent: list[bool]) -> "PathStats":
        for fs, p, r in zip(files, prefixes, recent, strict=True):
            if not p:
                continue
            self.prior[p] += 1
            self.recent[p] += int(r)
            paths = [f for f, _ in fs]
            self.dirs.add({k for f in paths for k in [f, *_dirs(f)]}, p)
            self.suffix.add({k for f in paths for k in _suffix_keys(f)}, p)
            tried: dict[str, bool] = {}
            for f in paths:
                for key, cand in templates(f):
                    tried[key] = tried.get(key, False) or cand == p
            for key, hit in tried.items():
                self.tpl_tries[key] += 1
                self.tpl_hits[key] += int(hit)
        return self

    def rate(self, key: str) -> float:
        return (self.tpl_hits[key] + 0.1) / (self.tpl_tries[key] + 1.0)

    def candidates(self, fs: list[tuple[str, int]], k: int) -> tuple[list[str], np.ndarray]:
        """The ``k`` best candidates by a simple pre-score, and their feature rows (``FEATURES``)."""
        paths = [f for f, _ in fs]
        dir_votes = self.dirs.scores([[f, *_dirs(f)] for f in paths])
        suf_votes = self.suffix.scores([_suffix_keys(f) for f in paths])
        n_files = max(len(fs), 1)
        n_lines = sum(n for _, n in fs) or 1
        tpl_files: Counter = Counter()
        tpl_lines: Counter = Counter()
        tpl_rate: dict[str, float] = {}
        for f, n in fs:
            best: dict[str, float] = {}
            for key, cand in templates(f):
                best[cand] = max(best.get(cand, 0.0), self.rate(key))
            for cand, r in best.items():
                tpl_files[cand] += 1
                tpl_lines[cand] += n
                tpl_rate[cand] = max(tpl_rate.get(cand, 0.0), r)
        dir_total = sum(dir_votes.values()) or 1.0
        suf_total = sum(suf_votes.values()) or 1.0
        pre: dict[str, float] = {}
        for c in set(dir_votes) | set(suf_votes) | set(tpl_rate):
            pre[c] = (dir_votes[c] / dir_total + suf_votes[c] / suf_total
                      + tpl_rate.get(c, 0.0) * tpl_files[c] / n_files + 0.01 * math.log1p(self.prior[c]))
        cands = sorted(pre, key=lambda c: (-pre[c], c))[:k]
        dir_rank = {c: i for i, (c, _) in enumerate(dir_votes.most_common())}
        roots = Counter("doc" if f.startswith("doc/") else "test" if f.startswith("app/test/")
                        else "drivers" if f.startswith("drivers/") else "other" for f in paths)
        top_line = max(tpl_lines.values(), default=0) / n_lines
        rows = []
        for i, c in enumerate(cands):
            rate = tpl_rate.get(c, 0.0)
            rows.append([dir_votes[c], dir_votes[c] / dir_total, dir_rank.get(c, 99), suf_votes[c],
                         suf_votes[c] / suf_total, tpl_files[c] / n_files, tpl_lines[c] / n_lines, rate,
                         rate * tpl_files[c] / n_files, math.log1p(self.prior[c]), math.log1p(self.recent[c]),
                         float(self.prior[c] > 0), c.count("/"), math.log1p(len(fs)), i, roots["doc"] / n_files,
                         roots["test"] / n_files, roots["drivers"] / n_files, top_line])
        return cands, np.asarray(rows, dtype=np.float32).reshape(-1, len(FEATURES))


def cross_fit(files: list[list[tuple[str, int]]], prefixes: list[str], recent: list[bool], folds: int,
              k: int) -> tuple[list[list[str]], list[np.ndarray]]:
    """Candidates and features of each training row from stats fitted on the *other* folds.

    Folds are contiguous blocks in time order, so the ranker trains on what it will face: votes
    that never saw this commit, and drivers or directories that are new to the rest of train.
    """
    n = len(files)
    bounds = np.linspace(0, n, folds + 1).astype(int)
    cands: list[list[str]] = [[] for _ in range(n)]
    feats: list[np.ndarray] = [np.zeros((0, len(FEATURES)), np.float32) for _ in range(n)]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        rest = [i for i in range(n) if i < lo or i >= hi]
        st = PathStats().fit([files[i] for i in rest], [prefixes[i] for i in rest], [recent[i] for i in rest])
        for i in range(lo, hi):
            cands[i], feats[i] = st.candidates(files[i], k)
    return cands, feats
