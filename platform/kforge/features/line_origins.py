"""Line-origin features: who wrote, when, and in which commit, the lines a commit touches.

The replay keeps, for every file, the commit that wrote each of its current lines (an
incremental ``git blame``), by applying the zero-context change log
(:func:`kforge.git.line_log.change_log`) in history order. Just before a commit is applied, the
lines it removes, and for pure insertions the two lines around the insertion point, are
*touched lines*; their origins are recorded. A commit's features therefore depend only on the
history up to its parent, plus, for ``buggy_share``, the fixes that had landed before its own
time: point in time by construction (the asset check and the unit tests recompute them with
the later history removed).

Per commit, for the removed lines (``lo_rm_*``), the insertion neighbours (``lo_nb_*``) and both
(``lo_tc_*``): known lines and lines of unknown origin, mean and minimum age of the lines in days,
distinct origin commits and authors, and the shares written by the same author, by a fix commit
(``Fixes:``), by a commit known to be buggy at the time (fixed or reverted before it), and in the
last 30 days.

The replay is the one sequential step (each commit's state is the previous one's plus a diff);
it loops over hunks, not lines or rows, and the statistics are one polars aggregation.

Example::

    log = change_log(repo, shas)
    feats = line_origin_features(log, shas, commits, commit_event_times(chains), BlobLines(repo))
"""

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from kforge.git.line_log import FAILED_MARK, BlobLines, change_log, first_parent_shas

DAY = 86400
RECENT_DAYS = 30
FAMILIES = ("rm", "nb", "tc")
STATS = ("lines", "unknown", "age_mean", "age_min", "n_commits", "n_authors", "self_share", "fixcode_share",
         "buggy_share", "recent_share")
LINE_ORIGIN_NUMERIC = ["has_line_origins", *(f"lo_{fam}_{s}" for fam in FAMILIES for s in STATS)]

_TOKEN = re.compile(
    rb"^(?:\x01(?P<commit>[0-9a-f]{40})|\x02FAILED|\x03(?P<failed_path>.*)|diff --git (?P<diff>.*)"
    rb"|--- (?P<old>.*)|\+\+\+ (?P<new>.*)|rename from (?P<rfrom>.*)|rename to (?P<rto>.*)"
    rb"|@@ -(?P<a>\d+)(?:,(?P<b>\d+))? \+(?P<c>\d+)(?:,(?P<d>\d+))? @@)", re.MULTILINE)

ParentLines = Callable[[str, bytes], int | None]


def _path(raw: bytes) -> bytes | None:
    raw = raw.rstrip(b"\r\t")  # git ends ---/+++ names that contain a space with a tab
    if raw.startswith(b'"') and raw.endswith(b'"'):
        raw = raw[1:-1]
    if raw == b"/dev/null":
        return None
    return raw[2:] if raw[:2] in (b"a/", b"b/") else raw


class _Replay:
    """File states (origin index per line) and the touched-line events collected so far."""

    def __init__(self, parent_lines: ParentLines | None) -> None:
        self.state: dict[bytes, list[int]] = {}
        self.parent_lines = parent_lines
        self.ev_commit: list[int] = []
        self.ev_origin: list[int] = []
        self.ev_kind: list[int] = []
        self.mismatches = 0
        self.reinitialised = 0
        self._reset_file()

    def _reset_file(self) -> None:
        self.old: list[int] | None = None
        self.new: list[int] | None = None
        self.new_path: bytes | None = None
        self.cursor = 0
        self.skip = False
        self.rename: list[bytes | None] = [None, None]
        self.had_body = False
        self.in_header = False

    def finish_file(self) -> None:
        src, dst = self.rename
        if src is not None and dst is not None and not self.had_body and src in self.state:
            self.state[dst] = self.state.pop(src)  # a pure rename
        if self.new is not None and self.new_path is not None and self.old is not None:
            self.new.extend(self.old[self.cursor:])
            self.state[self.new_path] = self.new
        self._reset_file()

    def open_file(self, ci: int, parent: str | None, old_path: bytes | None, new_path: bytes | None) -> None:
        self.had_body = True
        self.new_path = new_path
        if old_path is None:
            self.old = []
        else:
            self.old = self.state.pop(old_path, None)
            if self.old is None:
                n = self.parent_lines(parent, old_path) if (self.parent_lines and parent) else None
                if n is None:
                    self.old, self.skip = [], True
                else:
                    self.old = [-1] * n
                    self.reinitialised += 1
        self.new = [] if new_path is not None else None
        if new_path is None:  # a deleted file: its lines are not counted as touched
            self.old = None

    def hunk(self, ci: int, a: int, b: int, d: int) -> None:
        if self.old is None or self.new is None:
            return
        start = a - 1 if b > 0 else a
        if not self.skip and (start + b > len(self.old) or start < self.cursor):
            self.skip = True
            self.mismatches += 1
        if self.skip:  # out of line with git: forget the file (it is re-read at its next change)
            self.new = None
            return
        self.new.extend(self.old[self.cursor:start])
        touched = self.old[start:start + b]  # the removed lines
        kind = 0
        if b == 0:  # a pure insertion: the lines just before and after it
            touched, kind = self.old[max(start - 1, 0):start + 1], 1
        self.ev_commit.extend([ci] * len(touched))
        self.ev_origin.extend(touched)
        self.ev_kind.extend([kind] * len(touched))
        self.new.extend([ci] * d)
        self.cursor = start + b


def replay(log: bytes, shas: list[str], parent_lines: ParentLines | None = None
           ) -> tuple[pl.DataFrame, dict[str, object]]:
    """Touched-line events of ``log`` (whose commits are ``shas``, oldest first): a frame of
    ``commit_idx``, ``origin_idx`` (-1: written before the history we could read) and ``kind``
    (0 removed line, 1 insertion neighbour), and counters (commits replayed, mismatches, files
    re-read from git)."""
    index = {s: i for i, s in enumerate(shas)}
    r = _Replay(parent_lines)
    ci, parent, old_path, seen = -1, None, None, 0
    failed: list[int] = []
    for m in _TOKEN.finditer(log):
        kind = "a" if m.group("a") is not None else m.lastgroup
        if kind == "commit":
            r.finish_file()
            sha = m.group("commit").decode()
            if sha not in index:
                raise ValueError(f"commit {sha} of the change log is not in the given history")
            ci = index[sha]
            parent = shas[ci - 1] if ci > 0 else None
            seen += 1
        elif m.group(0) == FAILED_MARK:
            r.finish_file()
            failed.append(ci)
        elif kind == "failed_path":
            r.state.pop(m.group("failed_path"), None)
        elif kind == "diff":
            r.finish_file()
            r.in_header = True
        elif kind == "rfrom" and r.in_header:
            r.rename[0] = _path(m.group("rfrom"))
        elif kind == "rto" and r.in_header:
            r.rename[1] = _path(m.group("rto"))
        elif kind == "old" and r.in_header:
            old_path = _path(m.group("old"))
        elif kind == "new" and r.in_header:
            r.open_file(ci, parent, old_path, _path(m.group("new")))
            r.in_header = False
        elif kind == "a":
            r.in_header = False
            b = 1 if m.group("b") is None else int(m.group("b"))
            d = 1 if m.group("d") is None else int(m.group("d"))
            r.hunk(ci, int(m.group("a")), b, d)
    r.finish_file()
    events = pl.DataFrame({"commit_idx": np.asarray(r.ev_commit, dtype=np.int64),
                           "origin_idx": np.asarray(r.ev_origin, dtype=np.int64),
                           "kind": np.asarray(r.ev_kind, dtype=np.int8)})
    return events, {"commits": seen, "mismatches": r.mismatches, "reinitialised": r.reinitialised,
                    "failed": len(failed), "failed_idx": failed}  # type: ignore[dict-item]


def _stats(ev: pl.DataFrame, fam: str) -> pl.DataFrame:
    known = pl.col("origin_idx") >= 0
    age = (pl.col("t") - pl.col("o_t")) / DAY
    k = lambda e: e.filter(known)  # noqa: E731
    return ev.group_by("commit_idx").agg(
        known.sum().alias("lines"), (~known).sum().alias("unknown"),
        k(age).mean().alias("age_mean"), k(age).min().alias("age_min"),
        k(pl.col("origin_idx")).n_unique().alias("n_commits"), k(pl.col("o_author")).n_unique().alias("n_authors"),
        k(pl.col("o_author") == pl.col("author")).mean().alias("self_share"),
        k(pl.col("o_fix")).mean().alias("fixcode_share"),
        k(pl.col("o_event").is_not_null() & (pl.col("o_event") < pl.col("t"))).mean().alias("buggy_share"),
        k(age < RECENT_DAYS).mean().alias("recent_share"),
    ).rename({s: f"lo_{fam}_{s}" for s in STATS})


def line_origin_features(log: bytes, shas: list[str], commits: pl.DataFrame, event_times: pl.DataFrame,
                         parent_lines: ParentLines | None = None) -> tuple[pl.DataFrame, dict[str, object]]:
    """One row per commit of ``shas`` that is in ``commits``: ``sha``, ``has_line_origins`` = 1 and
    the ``lo_*`` features (see the module docstring). ``commits`` needs sha, author_email,
    committer_ts, fixes; ``event_times`` (sha, event_ts) is when each commit was first fixed or
    reverted (:func:`kforge.features.build.commit_event_times`)."""
    events, counters = replay(log, shas, parent_lines)
    meta = (pl.DataFrame({"sha": shas, "idx": np.arange(len(shas), dtype=np.int64)})
            .join(commits.select("sha", pl.col("committer_ts").alias("ts"),
                                 pl.col("author_email").str.to_lowercase().alias("a"),
                                 (pl.col("fixes").list.len() > 0).alias("fx")).unique("sha"), on="sha", how="left")
            .join(event_times.select("sha", pl.col("event_ts").alias("ev")).unique("sha"), on="sha", how="left"))
    who = meta.select(pl.col("idx").alias("commit_idx"), pl.col("ts").alias("t"), pl.col("a").alias("author"))
    origin = meta.select(pl.col("idx").alias("origin_idx"), pl.col("ts").alias("o_t"), pl.col("a").alias("o_author"),
                         pl.col("fx").alias("o_fix"), pl.col("ev").alias("o_event"))
    ev = events.join(who, on="commit_idx", how="left").join(origin, on="origin_idx", how="left")
    failed = counters.pop("failed_idx")
    rows = meta.filter(pl.col("ts").is_not_null() & ~pl.col("idx").is_in(failed)).select(  # type: ignore[arg-type]
        "sha", pl.col("idx").alias("commit_idx"))
    for fam, part in (("rm", ev.filter(pl.col("kind") == 0)), ("nb", ev.filter(pl.col("kind") == 1)), ("tc", ev)):
        rows = rows.join(_stats(part, fam), on="commit_idx", how="left")
    out = rows.drop("commit_idx").with_columns(pl.lit(1.0).alias("has_line_origins"))
    return out.select("sha", *LINE_ORIGIN_NUMERIC).with_columns(
        pl.col(c).cast(pl.Float64).fill_null(0.0) for c in LINE_ORIGIN_NUMERIC), counters


def from_repository(repo: Path, commits: pl.DataFrame, event_times: pl.DataFrame,
                    upto: str = "HEAD") -> tuple[pl.DataFrame, dict[str, object]]:
    """:func:`line_origin_features` for the first-parent history of the clone ``repo`` up to ``upto``
    (``commits`` and ``event_times`` as there; rows only for commits in ``commits``)."""
    shas = first_parent_shas(repo, upto)
    blobs = BlobLines(repo)
    try:
        return line_origin_features(change_log(repo, shas), shas, commits, event_times, blobs)
    finally:
        blobs.close()


def for_repositories(repos: dict[str, Path], commits: pl.DataFrame, event_times: pl.DataFrame,
                     upto: str = "HEAD") -> tuple[pl.DataFrame | None, dict[str, dict[str, object]]]:
    """Line-origin features of every ``repo -> clone path`` whose clone can be read (None when none
    can), with the replay counters per repository (or why it was skipped: those commits then have
    ``has_line_origins`` = 0, and the training coverage rule decides whether the features are used)."""
    from kforge.errors import InputError

    frames, counters = [], {}
    for repo, path in sorted(repos.items()):
        if not Path(path).exists():
            counters[repo] = {"skipped": f"clone {path} does not exist"}
            continue
        mine = commits.filter(pl.col("repo") == repo) if "repo" in commits.columns else commits
        try:
            frame, counters[repo] = from_repository(Path(path), mine, event_times, upto)
        except InputError as exc:
            counters[repo] = {"skipped": str(exc)}
            continue
        frames.append(frame)
    return (pl.concat(frames) if frames else None), counters


__all__ = ["LINE_ORIGIN_NUMERIC", "for_repositories", "from_repository", "line_origin_features", "replay"]
