"""Build the ``commit_diffs`` table: from registered repositories (git), the diffs imported with commit tables
(``kforge import-commits --diffs``) and real-data diff files."""

from pathlib import Path

import polars as pl

from kforge.git.diffs import DIFF_SCHEMA, extract_diffs
from kforge.git.importer import imported_diffs
from kforge.git.ingest import registered_repositories
from kforge.storage import Warehouse


def collect_diffs(wh: Warehouse, data_root: Path | None, max_commits: int, max_bytes: int) -> tuple[pl.DataFrame, list[str]]:
    frames, failed = [], []
    if wh.has_table("commits"):
        # shallow-clone boundary commits (their diff is the whole tree) stay out of the diff corpus
        flagged = "shallow_boundary" in wh.read("select * from commits limit 0").columns
        boundary = " and not coalesce(shallow_boundary, false)" if flagged else ""
        for repo, path in registered_repositories(wh).items():
            if not path.exists():
                continue
            shas = wh.read(
                f"select sha from commits where repo = ? and not is_merge{boundary} order by committer_ts desc limit ?",
                [repo, max_commits])["sha"].to_list()
            df, bad = extract_diffs(Path(path), repo, shas, max_bytes)
            frames.append(df)
            failed += bad
    imported = imported_diffs(wh)
    if imported.height:
        frames.append(imported)
    if data_root is not None:
        for f in sorted((data_root / "kernel").glob("*.diffs.parquet")):
            frames.append(pl.read_parquet(f).select(list(DIFF_SCHEMA)).cast(DIFF_SCHEMA))  # type: ignore[arg-type]
    if not frames:
        return pl.DataFrame(schema=DIFF_SCHEMA), failed
    return pl.concat(frames).unique(subset=["repo", "sha"], keep="first"), failed
