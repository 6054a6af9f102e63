"""Import commit tables extracted elsewhere (the schema of ``../shared/data/kernel/*.commits.parquet``).

Required columns: sha, parents, author_name, author_email, author_date, author_ts,
committer_name, committer_email, committer_date, committer_ts, subject, body, files (and
optionally repo). Trailer lists and fixes are re-derived from the message when absent, so both
sources produce the same ``commits`` rows. Labels in the file (fixed_later, reverted, ...) are
*not* imported: kforge derives its own labels from the chains.

All or nothing: the whole file is checked first (column types, null or malformed shas and
parents, missing timestamps, file entries without a path, the same key twice with different
content) and only then written, in **one** warehouse transaction. A file with invalid rows is
refused with one line naming the first of them; ``quarantine_invalid=True``
(``kforge import-commits --quarantine-invalid``) instead stores the valid rows and one
``ingest_quarantine`` row (stage ``import``) per invalid row and reason, in the same transaction.
Rows that repeat an earlier row of the file exactly are dropped and counted.

Diffs: a commits table may come with its diffs file (the layout of ``*.diffs.parquet``:
``kforge import-commits FILE --diffs DIFFS``). It is checked with the commits (readable, the diff
columns, every row naming a commit of this file) and its rows go to ``imported_diffs`` in the same
transaction, so the diff corpus (``commit_diffs``, the generation corpus) holds imported commits too.

Example::

    prep = prepare_import("libbpf.commits.parquet")      # raises InputError on any invalid row
    write_import(prep, Warehouse(tmp_path / "w.duckdb"))  # -> {"commits_added": 2871, ...}
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from kforge.errors import InputError
from kforge.git.diffs import DIFF_SCHEMA
from kforge.git.rows import (
    COMMIT_KEYS,
    COMMIT_SCHEMA,
    FILE_KEYS,
    FILE_SCHEMA,
    QUARANTINE_KEYS,
    commit_row,
    now_utc,
    quarantine_frame,
    quarantine_row,
)
from kforge.git.subsystems import SubsystemRules
from kforge.storage import Warehouse
from kforge.storage import warehouse as wh

REQUIRED = ("sha", "parents", "author_name", "author_email", "author_date", "author_ts", "committer_name",
            "committer_email", "committer_date", "committer_ts", "subject", "body", "files")
STAGE = "import"
_OID = r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$"  # a full lower-case SHA-1 or SHA-256 object id
_FILE_T = pl.List(pl.Struct({"path": pl.String, "added": pl.Int64, "deleted": pl.Int64, "binary": pl.Boolean}))
_SHOWN = 5
DIFFS_TABLE = "imported_diffs"


def _is_string(t: Any) -> bool:
    return t == pl.String


def _is_int(t: Any) -> bool:
    return t.is_integer()


def _is_string_list(t: Any) -> bool:
    return isinstance(t, pl.List) and t.inner in (pl.String, pl.Null)


def _is_file_list(t: Any) -> bool:
    if not isinstance(t, pl.List):
        return False
    if t.inner == pl.Null:
        return True
    if not isinstance(t.inner, pl.Struct):
        return False
    fields = {f.name: f.dtype for f in t.inner.fields}
    ok = {"path": _is_string, "added": _is_int, "deleted": _is_int, "binary": lambda d: d == pl.Boolean}
    return "path" in fields and all(ok[k](v) or v == pl.Null for k, v in fields.items() if k in ok)


# column -> (what it must be, dtype test, dtype an all-null column is cast to)
_TYPES: dict[str, tuple[str, Callable[[Any], bool], Any]] = {
    **{c: ("a string", _is_string, pl.String) for c in (
        "sha", "author_name", "author_email", "author_date", "committer_name", "committer_email",
        "committer_date", "subject", "body", "repo")},
    "author_ts": ("an integer (unix seconds)", _is_int, pl.Int64),
    "committer_ts": ("an integer (unix seconds)", _is_int, pl.Int64),
    "parents": ("a list of strings", _is_string_list, pl.List(pl.String)),
    "files": ("a list of structs {path: string, added: int, deleted: int, binary: bool}", _is_file_list, _FILE_T),
}


@dataclass
class PreparedImport:
    """A checked commits file: what will be written, and what will not (and why)."""

    path: Path
    valid: pl.DataFrame        # rows to write (``_row`` = 1-based row number in the file)
    invalid: pl.DataFrame      # one row per (invalid row, reason): _row, repo, sha, reason
    rows_in_file: int
    duplicates_dropped: int
    diffs: pl.DataFrame | None = None   # the diffs file's rows for the valid commits (DIFF_SCHEMA), if one was given

    @property
    def invalid_rows(self) -> int:
        return self.invalid["_row"].n_unique() if self.invalid.height else 0


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a directory, expected a commits parquet file")
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for non-parquet input
        raise InputError(f"{path} is not a readable parquet file: {str(exc).splitlines()[0][:300]}") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"{path} lacks required commit columns: {', '.join(missing)} "
                         "(expected the schema of ../shared/data/kernel/*.commits.parquet)")
    wrong = [f"{c!r} is {df.schema[c]}, expected {want}" for c, (want, ok, _) in _TYPES.items()
             if c in df.columns and df.schema[c] != pl.Null and not ok(df.schema[c])]
    if wrong:
        raise InputError(f"{path}: wrong column types, nothing was written: {'; '.join(wrong)} "
                         "(expected the schema of ../shared/data/kernel/*.commits.parquet)")
    nulls = [pl.col(c).cast(cast) for c, (_, _, cast) in _TYPES.items() if c in df.columns and df.schema[c] == pl.Null]
    return df.with_columns(nulls) if nulls else df


def _checks(df: pl.DataFrame) -> list[tuple[str, pl.Expr]]:
    """(reason, expression true on the rows it rejects)."""
    sha = pl.col("sha")
    checks = [
        ("sha is null or empty", sha.is_null() | (sha == "")),
        ("sha is not a full lower-case hex object id", (sha != "") & ~sha.str.contains(_OID)),
        ("repo is null or empty", pl.col("repo").is_null() | (pl.col("repo").str.strip_chars() == "")),
        ("author_ts is null", pl.col("author_ts").is_null()),
        ("committer_ts is null", pl.col("committer_ts").is_null()),
        ("a parent is null or not a full hex object id",
         pl.col("parents").list.eval(pl.element().is_null() | ~pl.element().str.contains(_OID)).list.any()),
    ]
    inner = df.schema["files"].inner
    if isinstance(inner, pl.Struct):
        names = {f.name for f in inner.fields}
        el = pl.element().struct
        checks.append(("a file entry has no path", pl.col("files").list.eval(
            pl.element().is_null() | el.field("path").is_null() | (el.field("path") == "")).list.any()))
        for col in ("added", "deleted"):
            if col in names:
                checks.append((f"a file entry has a negative '{col}' count",
                               pl.col("files").list.eval(el.field(col) < 0).list.any()))
    return [(reason, expr.fill_null(False)) for reason, expr in checks]


def _read_diffs(path: Path, valid: pl.DataFrame) -> pl.DataFrame:
    """The diffs file's rows for the commits being imported (their repo as imported), checked whole."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for non-parquet input
        raise InputError(f"{path} is not a readable parquet file: {str(exc).splitlines()[0][:300]}") from None
    missing = [c for c in ("sha", "diff") if c not in df.columns]
    if missing:
        raise InputError(f"{path} lacks the diff columns {', '.join(missing)} (expected the schema of "
                         "../shared/data/kernel/*.diffs.parquet); nothing was written")
    try:
        df = df.select([(pl.col(c) if c in df.columns else pl.lit(None)).cast(t).alias(c)
                        for c, t in DIFF_SCHEMA.items() if c != "repo"])
    except Exception as exc:
        raise InputError(f"{path}: wrong diff column types, nothing was written: {str(exc).splitlines()[0][:200]}") \
            from None
    keys = valid.select("sha", "repo").unique()
    unknown = df.join(keys, on="sha", how="anti")
    if unknown.height:
        raise InputError(f"{path}: {unknown.height} of {df.height} diffs name no commit of the imported table "
                         f"(first sha {unknown['sha'][0]!r}); nothing was written")
    return df.join(keys, on="sha").select(list(DIFF_SCHEMA)).unique(["repo", "sha"], keep="first",
                                                                      maintain_order=True)


def prepare_import(path: str | Path, repo: str | None = None, quarantine_invalid: bool = False,
                   diffs: str | Path | None = None) -> PreparedImport:
    """Read and check a whole commits file (and its ``diffs`` file, if given); write nothing.

    Raises InputError (one line) when the file cannot be read, has the wrong columns or column
    types, or has invalid rows and ``quarantine_invalid`` is off.
    """
    path = Path(path)
    df = _read(path)
    if repo:
        df = df.with_columns(pl.lit(repo).alias("repo"))
    elif "repo" not in df.columns:
        df = df.with_columns(pl.lit(path.name.split(".")[0]).alias("repo"))
    height = df.height
    df = df.select(*REQUIRED, "repo").with_row_index("_row", offset=1)
    content = pl.struct(*REQUIRED, "repo")
    first = df.select(content.is_first_distinct()).to_series()
    df = df.filter(first)  # exact repeats of an earlier row carry nothing new
    dup = pl.struct("repo", "sha").is_duplicated() & pl.col("sha").is_not_null()
    checks = [*_checks(df), ("the same (repo, sha) appears again in the file with different content", dup)]
    flags = df.select("_row", *[expr.alias(f"_bad{i}") for i, (_, expr) in enumerate(checks)])
    invalid = pl.concat([
        df.filter(flags[f"_bad{i}"]).select("_row", "repo", "sha", pl.lit(reason).alias("reason"))
        for i, (reason, _) in enumerate(checks)
    ]).sort("_row", maintain_order=True)
    prep = PreparedImport(path=path, valid=df.filter(~pl.col("_row").is_in(invalid["_row"].implode())),
                          invalid=invalid, rows_in_file=height, duplicates_dropped=height - df.height)
    if invalid.height and not quarantine_invalid:
        raise InputError(_refusal(prep))
    if diffs is not None:
        prep.diffs = _read_diffs(Path(diffs), prep.valid)
    return prep


def _refusal(prep: PreparedImport) -> str:
    firsts = prep.invalid.unique("_row", keep="first", maintain_order=True)
    shown = "; ".join(f"row {r} (sha {str(s)[:50]!r}): {why}" for r, s, why in
                      firsts.head(_SHOWN).select("_row", "sha", "reason").iter_rows())
    more = f"; and {prep.invalid_rows - _SHOWN} more" if prep.invalid_rows > _SHOWN else ""
    return (f"{prep.path}: {prep.invalid_rows} of {prep.rows_in_file} rows are invalid, nothing was written: "
            f"{shown}{more}. Fix the file, or pass --quarantine-invalid to import the {prep.valid.height} "
            "valid rows and record the invalid ones in ingest_quarantine")


def _quarantine(prep: PreparedImport) -> pl.DataFrame:
    rows = []
    for row, repo, sha, reason in prep.invalid.select("_row", "repo", "sha", "reason").iter_rows():
        key = sha if sha else f"{prep.path.name}#row{row}"
        rows.append(quarantine_row(repo or prep.path.name.split(".")[0], key, STAGE, reason,
                                   f"{prep.path.name} row {row}: {reason}; sha={sha!r}"))
    return quarantine_frame(rows)


def _frames(chunk: pl.DataFrame, source: str, rules: SubsystemRules) -> tuple[pl.DataFrame, pl.DataFrame]:
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
        commit_rows.append(commit_row(r["repo"], header, files, source=source))
        file_rows.extend(files)
    commits = pl.DataFrame(commit_rows, schema=COMMIT_SCHEMA).with_columns(pl.lit(now_utc()).alias("ingested_at"))
    files_df = pl.DataFrame(file_rows, schema=FILE_SCHEMA)
    if files_df.height:
        files_df = files_df.with_columns(rules.column(files_df["path"]))
    return commits, files_df


def write_import(prep: PreparedImport, warehouse: Warehouse, rules: SubsystemRules | None = None,
                 batch_size: int = 5000) -> dict[str, int]:
    """Write a checked file in one transaction (idempotent: keys repo, sha)."""
    rules = rules or SubsystemRules.load()
    source = f"import:{prep.path.name}"
    added = files_added = quarantined = 0
    with warehouse.writer() as con:  # one transaction: a failure anywhere stores nothing of this file
        for start in range(0, prep.valid.height, batch_size):
            commits, files = _frames(prep.valid.slice(start, batch_size), source, rules)
            files_added += wh.append_new(con, "file_changes", files, FILE_KEYS)
            added += wh.append_new(con, "commits", commits, COMMIT_KEYS)
        if prep.invalid.height:
            quarantined = wh.append_new(con, "ingest_quarantine", _quarantine(prep), QUARANTINE_KEYS)
        diffs_added = wh.append_new(con, DIFFS_TABLE, prep.diffs, ["repo", "sha"]) if prep.diffs is not None else 0
    return {"rows_in_file": prep.rows_in_file, "commits_added": added, "diffs_added": diffs_added,
            "already_stored": prep.valid.height - added, "files_added": files_added,
            "duplicates_dropped": prep.duplicates_dropped, "invalid_rows": prep.invalid_rows,
            "quarantined": quarantined}


def import_commits(path: str | Path, warehouse: Warehouse, rules: SubsystemRules | None = None,
                   repo: str | None = None, batch_size: int = 5000,
                   quarantine_invalid: bool = False, diffs: str | Path | None = None) -> dict[str, int]:
    """Check one commits parquet (and its diffs file), then load it in one transaction; idempotent (keys: repo, sha)."""
    return write_import(prepare_import(path, repo, quarantine_invalid, diffs), warehouse, rules, batch_size)


def imported_diffs(warehouse: Warehouse) -> pl.DataFrame:
    """The diffs stored with imported commit tables (empty when none were)."""
    if not warehouse.has_table(DIFFS_TABLE):
        return pl.DataFrame(schema=DIFF_SCHEMA)
    return warehouse.read_table(DIFFS_TABLE).select(list(DIFF_SCHEMA)).cast(DIFF_SCHEMA)  # type: ignore[arg-type]
