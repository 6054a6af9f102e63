"""Import commit tables extracted elsewhere (the schema of ``../shared/data/kernel/*.commits.parquet``).

Required columns: sha, parents, author_name, author_email, author_date, author_ts,
committer_name, committer_email, committer_date, committer_ts, subject, body, files, repo.
Trailer lists and fixes are re-derived from the message when absent, so both sources produce
the same ``commits`` rows. Labels in the file (fixed_later, reverted, ...) are *not* imported:
kforge derives its own labels from the chains.
"""

from pathlib import Path
from typing import Any

import polars as pl

from kforge.errors import InputError
from kforge.git.rows import (
    COMMIT_KEYS,
    COMMIT_SCHEMA,
    FILE_KEYS,
    FILE_SCHEMA,
    commit_row,
    now_utc,
)
from kforge.git.subsystems import SubsystemRules
from kforge.storage import Warehouse
from kforge.storage import warehouse as wh

REQUIRED = ("sha", "parents", "author_name", "author_email", "author_date", "author_ts", "committer_name",
            "committer_email", "committer_date", "committer_ts", "subject", "body", "files")


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for non-parquet input
        raise InputError(f"{path} is not a readable parquet file: {exc}") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"{path} lacks required commit columns: {', '.join(missing)} "
                         "(expected the schema of ../shared/data/kernel/*.commits.parquet)")
    if "repo" not in df.columns:
        df = df.with_columns(pl.lit(path.name.split(".")[0]).alias("repo"))
    return df


def import_commits(path: str | Path, warehouse: Warehouse, rules: SubsystemRules | None = None,
                   repo: str | None = None, batch_size: int = 5000) -> dict[str, int]:
    """Load one commits parquet; idempotent (keys: repo, sha)."""
    rules = rules or SubsystemRules.load()
    df = _read(Path(path))
    if repo:
        df = df.with_columns(pl.lit(repo).alias("repo"))
    added = files_added = 0
    for start in range(0, df.height, batch_size):
        chunk = df.slice(start, batch_size)
        commit_rows: list[dict[str, Any]] = []
        file_rows: list[dict[str, Any]] = []
        for r in chunk.iter_rows(named=True):
            files = [
                {"repo": r["repo"], "sha": r["sha"], "path": f["path"], "old_path": None, "change_type": None,
                 "added": f.get("added"), "deleted": f.get("deleted"), "binary": bool(f.get("binary")),
                 "subsystem": None}
                for f in (r["files"] or [])
            ]
            header = {k: ("" if r[k] is None else str(r[k])) for k in REQUIRED if k not in ("files", "parents")}
            header["parents"] = " ".join(r["parents"] or [])
            header["message"] = (r["subject"] or "") + "\n\n" + (r["body"] or "")
            commit_rows.append(commit_row(r["repo"], header, files, source=f"import:{Path(path).name}"))
            file_rows.extend(files)
        commits = pl.DataFrame(commit_rows, schema=COMMIT_SCHEMA).with_columns(pl.lit(now_utc()).alias("ingested_at"))
        files = pl.DataFrame(file_rows, schema=FILE_SCHEMA)
        if files.height:
            files = files.with_columns(rules.column(files["path"]))
        with warehouse.writer() as con:
            files_added += wh.append_new(con, "file_changes", files, FILE_KEYS)
            added += wh.append_new(con, "commits", commits, COMMIT_KEYS)
    return {"rows_in_file": df.height, "commits_added": added, "files_added": files_added}
