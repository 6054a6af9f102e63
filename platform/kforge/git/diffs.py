"""Unified diffs per commit (for generation models and training exports).

Same schema as ``../shared/data/kernel/*.diffs.parquet``: repo, sha, parent, author_date,
subject, body, diff (truncated at ``max_bytes``), diff_bytes_full, truncated. Streams one
``git log -p`` process; commits whose diff git cannot produce are skipped and reported.
"""

from pathlib import Path
from typing import Any

import polars as pl

from kforge.git.gitcmd import run_git
from kforge.git.message import split_message

DIFF_SCHEMA: dict[str, Any] = {
    "repo": pl.String, "sha": pl.String, "parent": pl.String, "author_date": pl.String, "subject": pl.String,
    "body": pl.String, "diff": pl.String, "diff_bytes_full": pl.Int64, "truncated": pl.Boolean,
}
DIFF_FORMAT = "%x1e%H%x1f%P%x1f%aI%x1f%B%x1d"


def extract_diffs(repo_path: Path, repo: str, shas: list[str], max_bytes: int = 65536) -> tuple[pl.DataFrame, list[str]]:
    """Diffs for ``shas`` (in that order). Returns (frame, shas git could not diff)."""
    if not shas:
        return pl.DataFrame(schema=DIFF_SCHEMA), []
    proc = run_git(repo_path, "log", "--no-walk=unsorted", "--stdin", "-p", "--no-renames", "--no-color",
                   "--diff-merges=first-parent", f"--format={DIFF_FORMAT}", input_bytes=("\n".join(shas) + "\n").encode())
    rows = []
    for rec in proc.stdout.split(b"\x1e")[1:]:
        head, _, diff = rec.partition(b"\x1d")
        parts = head.split(b"\x1f")
        if len(parts) != 4:
            continue
        sha, parents, date, message = (p.decode("utf-8", errors="replace") for p in parts)
        subject, body = split_message(message)
        full = len(diff.lstrip(b"\n"))
        text = diff.lstrip(b"\n")[:max_bytes].decode("utf-8", errors="replace")
        rows.append({"repo": repo, "sha": sha, "parent": (parents.split() or [None])[0], "author_date": date,
                     "subject": subject, "body": body, "diff": text, "diff_bytes_full": full,
                     "truncated": full > max_bytes})
    if proc.returncode != 0 and rows:
        rows.pop()  # the last record may be cut off by git's failure
    got = {r["sha"] for r in rows}
    return pl.DataFrame(rows, schema=DIFF_SCHEMA), [s for s in shas if s not in got]


__all__ = ["DIFF_SCHEMA", "extract_diffs"]
