"""Commit and file-change rows: the schema of the ``commits`` and ``file_changes`` tables."""

from datetime import UTC, datetime
from typing import Any

import polars as pl

from kforge.git.message import TRAILER_LISTS, parse_message

_FIXES_T = pl.List(pl.Struct({"sha": pl.String, "subject": pl.String}))
COMMIT_SCHEMA: dict[str, Any] = {
    "repo": pl.String, "sha": pl.String, "parents": pl.List(pl.String), "is_merge": pl.Boolean,
    "author_name": pl.String, "author_email": pl.String, "author_date": pl.String, "author_ts": pl.Int64,
    "committer_name": pl.String, "committer_email": pl.String, "committer_date": pl.String,
    "committer_ts": pl.Int64, "subject": pl.String, "body": pl.String, "subject_prefix": pl.String,
    **{col: pl.List(pl.String) for col in TRAILER_LISTS.values()},
    "other_by_trailers": pl.List(pl.String), "cc_stable": pl.Boolean, "fixes": _FIXES_T,
    "reverts_sha_raw": pl.String, "reverts_subject_raw": pl.String, "cve_ids": pl.List(pl.String),
    "n_files": pl.Int64, "lines_added": pl.Int64, "lines_deleted": pl.Int64,
    "source": pl.String, "ingested_at": pl.Datetime("us", "UTC"),
    # the oldest commit of a shallow clone (listed in .git/shallow): its diff is the whole tree, so it
    # is stored (and quarantined) but kept out of features, labels and exports
    "shallow_boundary": pl.Boolean,
}
FILE_SCHEMA: dict[str, Any] = {
    "repo": pl.String, "sha": pl.String, "path": pl.String, "old_path": pl.String,
    "change_type": pl.String, "added": pl.Int64, "deleted": pl.Int64, "binary": pl.Boolean,
    "subsystem": pl.String,
}
QUARANTINE_SCHEMA: dict[str, Any] = {
    "repo": pl.String, "sha": pl.String, "stage": pl.String, "reason": pl.String,
    "detail": pl.String, "quarantined_at": pl.Datetime("us", "UTC"),
}
COMMIT_KEYS = ["repo", "sha"]
FILE_KEYS = ["repo", "sha", "path"]
QUARANTINE_KEYS = ["repo", "sha", "stage", "reason"]


def now_utc() -> datetime:
    return datetime.now(UTC)


def commit_row(repo: str, header: dict[str, str], files: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """Build a ``commits`` row from git header fields (strings) and the commit's file rows."""
    msg = parse_message(header["message"])
    parents = header["parents"].split() if header["parents"] else []
    added = sum((f["added"] or 0) for f in files)
    deleted = sum((f["deleted"] or 0) for f in files)
    row: dict[str, Any] = {
        "repo": repo, "sha": header["sha"], "parents": parents, "is_merge": len(parents) > 1,
        "author_name": header["author_name"], "author_email": header["author_email"].lower(),
        "author_date": header["author_date"], "author_ts": int(header["author_ts"]),
        "committer_name": header["committer_name"], "committer_email": header["committer_email"].lower(),
        "committer_date": header["committer_date"], "committer_ts": int(header["committer_ts"]),
        "subject": msg.subject, "body": msg.body, "subject_prefix": msg.subject_prefix,
        **msg.trailers, "other_by_trailers": msg.other_by_trailers, "cc_stable": msg.cc_stable,
        "fixes": msg.fixes, "reverts_sha_raw": msg.revert_sha, "reverts_subject_raw": msg.revert_subject,
        "cve_ids": msg.cve_ids, "n_files": len(files), "lines_added": added, "lines_deleted": deleted,
        "source": source, "ingested_at": now_utc(), "shallow_boundary": False,
    }
    return row


def without_shallow_boundaries(commits: pl.DataFrame) -> pl.DataFrame:
    """``commits`` minus shallow-clone boundary commits (null, as in warehouses older than the flag, = no).

    Every reader that turns commits into features, labels or exports goes through this.
    """
    if "shallow_boundary" not in commits.columns:
        return commits
    return commits.filter(~pl.col("shallow_boundary").fill_null(False))


def commits_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=COMMIT_SCHEMA)


def files_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=FILE_SCHEMA)


def quarantine_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=QUARANTINE_SCHEMA)


def quarantine_row(repo: str, sha: str, stage: str, reason: str, detail: str = "") -> dict[str, Any]:
    return {"repo": repo, "sha": sha, "stage": stage, "reason": reason, "detail": detail[:2000],
            "quarantined_at": now_utc()}
