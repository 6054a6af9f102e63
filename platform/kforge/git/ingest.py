"""Incremental, crash-safe ingestion of a git repository into the warehouse.

* Reads only commits not stored yet (``rev-list`` minus the stored shas) and streams them from
  one ``git log --no-walk=unsorted --stdin`` process, so memory stays bounded.
* Writes in batches, each batch (commits + file changes + quarantine rows) in one transaction:
  a run killed at any point leaves whole batches; the next run picks up exactly what is missing.
* When git cannot diff a commit (a missing blob in a real snapshot), that commit is stored from
  its trees alone (file list without line counts), a quarantine row records git's message, and
  streaming resumes after it. A missing commit or tree object quarantines the commit.
"""

import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from kforge.errors import InputError
from kforge.git import gitcmd
from kforge.git.logparse import LOG_FORMAT, RawCommit, iter_records, parse_record
from kforge.git.rows import (
    COMMIT_KEYS,
    FILE_KEYS,
    QUARANTINE_KEYS,
    commit_row,
    commits_frame,
    files_frame,
    now_utc,
    quarantine_frame,
    quarantine_row,
)
from kforge.git.subsystems import SubsystemRules
from kforge.storage import Warehouse
from kforge.storage import warehouse as wh

REPOS_TABLE = "repositories"


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
    batches: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def repo_name_for(path: Path) -> str:
    """A stable partition-friendly name: the directory name without ``.git``."""
    name = path.name[:-4] if path.name.endswith(".git") else path.name
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "repo"


def register_repository(warehouse: Warehouse, name: str, path: Path) -> None:
    """Record name -> path (the Dagster partition key maps to a path through this table)."""
    df = pl.DataFrame(
        {"repo": [name], "path": [str(path)], "added_at": [now_utc()]},
        schema={"repo": pl.String, "path": pl.String, "added_at": pl.Datetime("us", "UTC")},
    )
    with warehouse.writer() as con:
        if wh.exists(con, REPOS_TABLE):
            con.execute(f"delete from {REPOS_TABLE} where repo = ?", [name])
        wh.append(con, REPOS_TABLE, df)


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
    args = ["log", "--no-walk=unsorted", "--stdin", "-z", "--raw", f"--format={LOG_FORMAT}",
            "--no-color", "--no-ext-diff", "--no-textconv", "--diff-merges=off"]
    args.append("-M" if detect_renames else "--no-renames")
    if numstat:
        args.append("--numstat")
    return args


def _stream_log(repo: Path, shas: list[str], detect_renames: bool, numstat: bool = True
                ) -> tuple[Iterator[bytes], Callable[[], tuple[int, str]]]:
    """Start git log over ``shas``; returns (record iterator, finish() -> (returncode, stderr))."""
    proc = subprocess.Popen(
        ["git", "-C", str(repo), *_log_args(detect_renames, numstat)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
    )
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

    def __init__(self, warehouse: Warehouse, repo: str, rules: SubsystemRules, report: IngestReport, size: int):
        self.warehouse, self.repo, self.rules, self.report, self.size = warehouse, repo, rules, report, size
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
        self.commits.append(commit_row(self.repo, raw.header, files, source))
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
    """Ingest the history of ``ref`` in the repository at ``path`` (incremental, idempotent)."""
    repo_path = gitcmd.check_repository(path)
    repo = name or repo_name_for(repo_path)
    rules = rules or SubsystemRules.load()
    head = gitcmd.resolve_ref(repo_path, ref)
    report = IngestReport(repo=repo, path=str(repo_path), head=head)
    if head is None:
        if ref == "HEAD":
            raise InputError(f"{repo_path} is an empty repository: it has no commits to ingest")
        raise InputError(f"{repo_path} has no commit named {ref!r}")
    register_repository(warehouse, repo, repo_path)
    try:
        history = gitcmd.rev_list(repo_path, head)
    except InputError as exc:
        raise InputError(f"cannot list the history of {repo_path} (missing commit objects?): {exc}") from None
    if gitcmd.is_shallow(repo_path):
        report.notes.append("shallow clone: history before the shallow boundary is not available")
    report.commits_in_history = len(history)
    stored = _stored_shas(warehouse, repo)
    report.already_stored = len(stored & set(history))
    todo = [s for s in history if s not in stored]
    if limit is not None:
        todo = todo[:limit]
    batcher = _Batcher(warehouse, repo, rules, report, batch_size)
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
