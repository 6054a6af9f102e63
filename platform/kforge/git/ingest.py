"""Incremental, crash-safe ingestion of a git repository into the warehouse.

* Reads only commits not stored yet (``rev-list`` minus the stored shas) and streams them from
  one ``git log --no-walk=unsorted --stdin`` process, so memory stays bounded.
* Writes in batches, each batch (commits + file changes + quarantine rows) in one transaction:
  a run killed at any point leaves whole batches; the next run picks up exactly what is missing.
* When git cannot diff a commit (a missing blob in a real snapshot), that commit is stored from
  its trees alone (file list without line counts), a quarantine row records git's message, and
  streaming resumes after it. A missing commit or tree object quarantines the commit.
* A repository is its top level (``repo/docs`` is ``repo``) under one name that no other history
  may take (:mod:`kforge.git.identity`).
* Commits invalid as UTF-8 are stored with U+FFFD and quarantined; git is asked for UTF-8 whatever
  the repository's ``i18n.logOutputEncoding`` says, so a message that declares its encoding (e.g.
  ``encoding ISO-8859-1``) is decoded from it.
* The boundary commits of a shallow clone (``.git/shallow``) have their whole tree as one change:
  they are stored with ``shallow_boundary = true`` and a quarantine row, and every reader of
  features, labels and exports drops them. Deepening the clone makes them ordinary commits again:
  the next run reads them again with their real diff.
"""

import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kforge.errors import InputError
from kforge.git import gitcmd
from kforge.git.identity import REPOS_TABLE, claim, identify, repo_name_for
from kforge.git.logparse import LOG_FORMAT, RawCommit, iter_records, parse_record
from kforge.git.rows import (
    COMMIT_KEYS,
    FILE_KEYS,
    QUARANTINE_KEYS,
    commit_row,
    commits_frame,
    files_frame,
    quarantine_frame,
    quarantine_row,
)
from kforge.git.subsystems import SubsystemRules
from kforge.storage import Warehouse
from kforge.storage import warehouse as wh

__all__ = ["REPOS_TABLE", "IngestReport", "ingest_repository", "register_repository", "registered_repositories",
           "repo_name_for", "repository_path"]
SHALLOW_BOUNDARY = "shallow boundary: its diff is the whole tree; kept out of features, labels and exports"


@dataclass
class IngestReport:
    repo: str
    path: str
    head: str | None
    commits_in_history: int = 0
    already_stored: int = 0
    commits_added: int = 0
    files_added: int = 0
    quarantined: int = 0
    shallow_boundaries: int = 0
    batches: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def register_repository(warehouse: Warehouse, name: str, path: Path) -> str:
    """Record name -> the repository at ``path`` (the Dagster partition key maps to a path through this
    table); refuses a name taken by another repository (:func:`kforge.git.identity.claim`)."""
    return claim(warehouse, identify(path, name))


def repository_path(warehouse: Warehouse, name: str) -> Path:
    if not warehouse.has_table(REPOS_TABLE):
        raise InputError(f"unknown repository {name!r}: run `kforge ingest PATH` to register it")
    df = warehouse.read(f"select path from {REPOS_TABLE} where repo = ?", [name])
    if df.height == 0:
        raise InputError(f"unknown repository {name!r}: run `kforge ingest PATH` to register it")
    return Path(df["path"][0])


def registered_repositories(warehouse: Warehouse) -> dict[str, Path]:
    """Every registered repository name -> clone path (empty when none is registered)."""
    if not warehouse.has_table(REPOS_TABLE):
        return {}
    return {r: Path(p) for r, p in warehouse.read(f"select repo, path from {REPOS_TABLE}").iter_rows()}


def _stored_shas(warehouse: Warehouse, repo: str) -> set[str]:
    if not warehouse.has_table("commits"):
        return set()
    return set(warehouse.read("select sha from commits where repo = ?", [repo])["sha"].to_list())


def _log_args(detect_renames: bool, numstat: bool = True) -> list[str]:
    # --encoding=UTF-8: whatever i18n.logOutputEncoding the repository sets, git hands over UTF-8
    # (messages that declare another encoding converted from it; bytes it cannot convert verbatim,
    # which logparse then stores with U+FFFD and quarantines)
    args = ["log", "--no-walk=unsorted", "--stdin", "-z", "--raw", f"--format={LOG_FORMAT}", "--encoding=UTF-8",
            "--no-color", "--no-ext-diff", "--no-textconv", "--diff-merges=off"]
    args.append("-M" if detect_renames else "--no-renames")
    if numstat:
        args.append("--numstat")
    return args


def _stream_log(repo: Path, shas: list[str], detect_renames: bool, numstat: bool = True
                ) -> tuple[Iterator[bytes], Callable[[], tuple[int, str]]]:
    """Start git log over ``shas``; returns (record iterator, finish() -> (returncode, stderr))."""
    proc = gitcmd.popen_git(repo, *_log_args(detect_renames, numstat), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    errbuf: list[bytes] = []

    def feed() -> None:
        try:
            assert proc.stdin is not None
            proc.stdin.write(("\n".join(shas) + "\n").encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass

    def drain_err() -> None:
        assert proc.stderr is not None
        errbuf.append(proc.stderr.read())

    threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=drain_err, daemon=True)]
    for t in threads:
        t.start()

    def chunks() -> Iterator[bytes]:
        assert proc.stdout is not None
        while True:
            chunk = proc.stdout.read(1 << 16)
            if not chunk:
                break
            yield chunk

    def finish() -> tuple[int, str]:
        rc = proc.wait()
        for t in threads:
            t.join(timeout=30)
        return rc, b"".join(errbuf).decode(errors="replace").strip()

    return iter_records(chunks()), finish


class _Batcher:
    """Accumulates rows and writes them in one transaction per batch."""

    def __init__(self, warehouse: Warehouse, repo: str, rules: SubsystemRules, report: IngestReport, size: int,
                 boundaries: frozenset[str] = frozenset()):
        self.warehouse, self.repo, self.rules, self.report, self.size = warehouse, repo, rules, report, size
        self.boundaries = boundaries
        self.commits: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        self.quarantine: list[dict[str, Any]] = []

    def add(self, raw: RawCommit, source: str = "git") -> None:
        files = [
            {"repo": self.repo, "sha": raw.header["sha"], "path": f.path, "old_path": f.old_path,
             "change_type": f.change_type, "added": f.added, "deleted": f.deleted, "binary": f.binary,
             "subsystem": None}
            for f in raw.files
        ]
        row = commit_row(self.repo, raw.header, files, source)
        if row["sha"] in self.boundaries:
            row["shallow_boundary"] = True
            self.report.shallow_boundaries += 1
            self.quarantine.append(quarantine_row(self.repo, row["sha"], "history", SHALLOW_BOUNDARY,
                                                  f"listed in .git/shallow; {len(files)} files as one change"))
        self.commits.append(row)
        self.files.extend(files)
        for problem in raw.problems:
            self.quarantine.append(quarantine_row(self.repo, raw.header["sha"], "parse", problem.split(";")[0], problem))
        if len(self.commits) >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.commits and not self.quarantine:
            return
        files = files_frame(self.files)
        if files.height:
            files = files.with_columns(self.rules.column(files["path"]))
        with self.warehouse.writer() as con:
            # file rows first, commit rows last: both in one transaction anyway
            self.report.files_added += wh.append_new(con, "file_changes", files, FILE_KEYS)
            self.report.quarantined += wh.append_new(con, "ingest_quarantine", quarantine_frame(self.quarantine), QUARANTINE_KEYS)
            self.report.commits_added += wh.append_new(con, "commits", commits_frame(self.commits), COMMIT_KEYS)
        self.report.batches += 1
        self.commits, self.files, self.quarantine = [], [], []


def _shallow_boundaries(repo: Path) -> frozenset[str]:
    """The commits listed in the clone's ``shallow`` file (empty for a complete clone)."""
    if not gitcmd.is_shallow(repo):
        return frozenset()
    where = gitcmd.git(repo, "rev-parse", "--path-format=absolute", "--git-path", "shallow").decode().strip()
    try:
        return frozenset(Path(where).read_text().split())
    except OSError:
        return frozenset()


def _sync_boundaries(warehouse: Warehouse, repo: str, boundaries: frozenset[str]) -> None:
    """Flag stored commits that are shallow boundaries now; delete stored boundary commits that are not
    any more (the clone was deepened), so this run reads them again with their real diff. One transaction."""
    if not warehouse.has_table("commits"):
        return
    with warehouse.writer() as con:
        cols = {r[0] for r in con.execute("describe commits").fetchall()}
        if "shallow_boundary" not in cols:
            if not boundaries:
                return
            con.execute("alter table commits add column shallow_boundary boolean")
        shas = sorted(boundaries)
        if shas:
            con.execute("update commits set shallow_boundary = true where repo = ? and list_contains(?, sha)",
                        [repo, shas])
        stale = [r[0] for r in con.execute(
            "select sha from commits where repo = ? and shallow_boundary and not list_contains(?, sha)",
            [repo, shas]).fetchall()]
        if stale:
            for table in ("file_changes", "commits"):
                con.execute(f"delete from {table} where repo = ? and list_contains(?, sha)", [repo, stale])
            if wh.exists(con, "ingest_quarantine"):
                con.execute("delete from ingest_quarantine where repo = ? and list_contains(?, sha) and reason = ?",
                            [repo, stale, SHALLOW_BOUNDARY])


def _salvage(repo: Path, sha: str, detect_renames: bool) -> tuple[RawCommit | None, str]:
    """Re-read one commit without line counts (needs only its trees)."""
    it, finish = _stream_log(repo, [sha], detect_renames, numstat=False)
    recs = list(it)
    rc, err = finish()
    if rc != 0 or not recs:
        return None, err
    return parse_record(recs[0]), ""


def _accept(batcher: _Batcher, rec: bytes, todo: list[str], pos: int) -> int:
    raw = parse_record(rec)
    if raw.header["sha"] != todo[pos]:
        raise InputError(f"git returned {raw.header['sha']} where {todo[pos]} was expected")
    batcher.add(raw)
    return pos + 1


def ingest_repository(
    path: str | Path,
    warehouse: Warehouse,
    *,
    name: str | None = None,
    ref: str = "HEAD",
    batch_size: int = 2000,
    rules: SubsystemRules | None = None,
    detect_renames: bool = False,
    limit: int | None = None,
) -> IngestReport:
    """Ingest the history of ``ref`` in the repository containing ``path`` (incremental, idempotent).

    ``name``: the repository's name; default: the name it is registered under, else one derived
    from its origin URL or directory. A name taken by another repository is refused.
    """
    repo_path = gitcmd.check_repository(path)
    rules = rules or SubsystemRules.load()
    head = gitcmd.resolve_ref(repo_path, ref)
    if head is None:
        if ref == "HEAD":
            raise InputError(f"{repo_path} is an empty repository: it has no commits to ingest")
        raise InputError(f"{repo_path} has no commit named {ref!r}")
    repo = claim(warehouse, identify(repo_path, name, head))
    report = IngestReport(repo=repo, path=str(repo_path), head=head)
    try:
        history = gitcmd.rev_list(repo_path, head)
    except InputError as exc:
        raise InputError(f"cannot list the history of {repo_path} (missing commit objects?): {exc}") from None
    if gitcmd.is_shallow(repo_path):
        report.notes.append("shallow clone: history before the shallow boundary is not available")
    report.commits_in_history = len(history)
    boundaries = _shallow_boundaries(repo_path)
    _sync_boundaries(warehouse, repo, boundaries)
    stored = _stored_shas(warehouse, repo)
    report.already_stored = len(stored & set(history))
    todo = [s for s in history if s not in stored]
    if limit is not None:
        todo = todo[:limit]
    batcher = _Batcher(warehouse, repo, rules, report, batch_size, boundaries)
    if report.notes:
        batcher.quarantine.append(quarantine_row(repo, head, "history", "shallow clone", report.notes[0]))

    pos = 0
    while pos < len(todo):
        records, finish = _stream_log(repo_path, todo[pos:], detect_renames)
        pending: bytes | None = None  # a record is complete only once the next one starts
        for rec in records:
            if pending is not None:
                pos = _accept(batcher, pending, todo, pos)
            pending = rec
        rc, err = finish()
        if rc == 0:
            if pending is not None:
                pos = _accept(batcher, pending, todo, pos)
            break
        # git stopped at todo[pos]: salvage it without line counts, quarantine, move on
        bad = todo[pos]
        salvaged, err2 = _salvage(repo_path, bad, detect_renames)
        if salvaged is not None:
            batcher.add(salvaged)
            batcher.quarantine.append(quarantine_row(repo, bad, "diff", "missing object: line counts unavailable", err))
        else:
            batcher.quarantine.append(quarantine_row(repo, bad, "commit", "unreadable commit: not stored", err2 or err))
        pos += 1
    batcher.flush()
    return report
