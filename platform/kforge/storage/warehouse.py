"""The DuckDB warehouse: polars DataFrames in, polars DataFrames out.

One write path: every write takes an exclusive file lock, opens a connection, runs in one
transaction and closes, so concurrent Dagster steps and CLI commands never hit DuckDB's
"Could not set lock" and a killed writer leaves either the whole batch or none of it.

Example::

    wh = Warehouse(tmp_path / "w.duckdb")
    wh.append_new("t", pl.DataFrame({"k": [1, 2]}), keys=["k"])   # -> 2
    wh.append_new("t", pl.DataFrame({"k": [2, 3]}), keys=["k"])   # -> 1
    wh.read("select count(*) n from t")["n"][0]                   # -> 3
"""

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from kforge.errors import InputError, StorageError
from kforge.storage.lock import file_lock

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# `kforge query` runs user SQL on a connection that can reach nothing but the warehouse: no files,
# no URLs, no extensions (installed or auto-loaded), and a configuration the query cannot unlock.
SANDBOX_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}
# DuckDB types polars cannot hold are handed over as text (nested ones as JSON)
_TEXT_TYPES = re.compile(r"\b(INTERVAL|UNION|BIT|TIME WITH TIME ZONE|BIGNUM|VARINT)\b")
_NESTED_IDS = {"list", "struct", "map", "array", "union"}
_DAMAGED = re.compile(r"corrupt database file|not a valid duckdb database file|could not read enough bytes|"
                      r"does not match stored checksum", re.IGNORECASE)


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise InputError(f"invalid table or column name {name!r}: use letters, digits and _")
    return name


class Warehouse:
    """All kforge tables in one DuckDB file, accessed through a single locked write path."""

    def __init__(self, path: str | Path, lock_timeout_s: float = 900.0, retries: int = 5) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout_s = lock_timeout_s
        self.retries = retries

    # -- connections -------------------------------------------------------------------------
    def _connect(self, read_only: bool, sandboxed: bool = False) -> duckdb.DuckDBPyConnection:
        delay = 0.1
        config = SANDBOX_CONFIG if sandboxed else {}
        for attempt in range(self.retries + 1):
            try:
                if read_only and not self.path.exists():
                    return duckdb.connect(":memory:", config=config)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                return duckdb.connect(str(self.path), read_only=read_only, config=config)
            except OSError as exc:  # the home's directory cannot be created
                raise self._unwritable(exc) from exc
            except duckdb.Error as exc:  # lock held by a process outside our file lock, or a bad file
                msg = str(exc)
                if is_out_of_space(exc):
                    raise self._no_space(exc) from exc
                if is_damaged(exc):
                    raise self._damaged(exc) from exc
                if re.search(r"read-only file system|permission denied", msg, re.IGNORECASE):
                    raise self._unwritable(exc) from exc
                if "lock" not in msg.lower() or attempt == self.retries:
                    raise StorageError(f"cannot open warehouse {self.path}: {msg}") from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        """The warehouse file lock; a lock file that cannot be created or opened is a StorageError."""
        with ExitStack() as stack:
            try:
                stack.enter_context(file_lock(self.lock_path, exclusive=exclusive, timeout_s=self.lock_timeout_s))
            except OSError as exc:
                raise self._unwritable(exc) from exc
            yield

    @contextmanager
    def reader(self, sandboxed: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection (shared lock); ``sandboxed``: one that reaches nothing outside the
        warehouse (:data:`SANDBOX_CONFIG`), for SQL a user typed."""
        with self._locked(exclusive=False):
            con = self._connect(read_only=True, sandboxed=sandboxed)
            try:
                yield con
            except duckdb.Error as exc:
                if is_damaged(exc):
                    raise self._damaged(exc) from exc
                raise
            finally:
                con.close()

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction (exclusive lock).

        Commits when the block ends normally, rolls back on any exception.
        """
        with self._locked(exclusive=True):
            con = self._connect(read_only=False)
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException as exc:
                    try:
                        con.execute("ROLLBACK")
                    except duckdb.Error:
                        pass  # already aborted by DuckDB; nothing of this transaction is stored
                    if is_out_of_space(exc):
                        raise self._no_space(exc) from exc
                    if is_damaged(exc):
                        raise self._damaged(exc) from exc
                    raise
                try:
                    con.execute("COMMIT")
                except duckdb.Error as exc:
                    if is_out_of_space(exc):
                        raise self._no_space(exc) from exc
                    raise StorageError(f"could not commit to {self.path}: {exc}") from exc
            finally:
                con.close()

    def _no_space(self, exc: BaseException) -> StorageError:
        import shutil

        free = shutil.disk_usage(self.path.parent).free if self.path.parent.exists() else 0
        return StorageError(
            f"no space left on the device holding the warehouse {self.path} ({free / 2**20:.1f} MiB free): "
            "this write was rolled back and nothing already stored was changed. Free space, or move "
            f"KFORGE_HOME to a larger disk, then re-run (writes are idempotent). DuckDB said: {_root_cause(exc)}"
        )

    def _damaged(self, exc: BaseException) -> StorageError:
        return StorageError(
            f"the warehouse {self.path} is damaged ({_first_line(exc)[:200]}): run `kforge doctor` to see "
            "which tables still read, then restore it from a backup (`kforge doctor --backup DIR` makes one) "
            "or move the file aside and rebuild it with `kforge ingest` and `kforge materialize`"
        )

    def _unwritable(self, exc: BaseException) -> StorageError:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc)
        return StorageError(
            f"cannot write in {self.path.parent}: {reason}. Every kforge command, even a read, takes a lock "
            "file beside the warehouse: fix the directory's permissions, or pass --home DIR (or set KFORGE_HOME) "
            "to a writable directory (`kforge doctor --backup DIR` copies this home there)"
        )

    # -- reads -------------------------------------------------------------------------------
    def read(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """Run a query and return a polars DataFrame."""
        with self.reader() as con:
            return _fetch(con, sql, params)

    def query_readonly(self, sql: str) -> pl.DataFrame:
        """Run one user-supplied SELECT (or EXPLAIN of one) on a sandboxed read-only connection.

        Statements are classified by DuckDB's own parser; the connection cannot read files or URLs,
        install or load extensions, or change its configuration (:data:`SANDBOX_CONFIG`). Columns
        of DuckDB types polars cannot hold (intervals, unions, bit strings) come back as text.
        """
        statement = _one_select(sql)
        with self.reader(sandboxed=True) as con:
            try:
                rel = con.sql(statement)
                if rel is None:
                    return pl.DataFrame()
                return pl.from_arrow(_polars_safe(rel).to_arrow_table())  # type: ignore[return-value]
            except duckdb.PermissionException as exc:
                raise InputError(f"kforge query reads only the warehouse's own tables: {_first_line(exc)}") from exc
            except duckdb.Error as exc:
                if is_damaged(exc):
                    raise self._damaged(exc) from exc
                raise InputError(f"query failed: {_first_line(exc)}") from exc

    def tables(self) -> list[str]:
        if not self.path.exists():
            return []
        df = self.read("select table_name from information_schema.tables order by 1")
        return df["table_name"].to_list()

    def has_table(self, table: str) -> bool:
        return table in self.tables()

    def count(self, table: str) -> int:
        if not self.has_table(table):
            return 0
        return int(self.read(f"select count(*) as n from {_ident(table)}")["n"][0])

    def read_table(self, table: str, where: str = "", params: Sequence[Any] | None = None) -> pl.DataFrame:
        """The whole table (optionally filtered); raises if it does not exist yet."""
        if not self.has_table(table):
            raise InputError(f"table {table!r} does not exist yet in {self.path}: materialize it first")
        return self.read(f"select * from {_ident(table)} {where}", params)

    # -- writes ------------------------------------------------------------------------------
    def append_new(self, table: str, df: pl.DataFrame, keys: Sequence[str]) -> int:
        """Insert the rows of ``df`` whose ``keys`` are not stored yet; return how many were added."""
        with self.writer() as con:
            return append_new(con, table, df, keys)

    def append(self, table: str, df: pl.DataFrame) -> int:
        """Append all rows (append-only tables such as feedback)."""
        with self.writer() as con:
            return append(con, table, df)

    def replace(self, table: str, df: pl.DataFrame) -> int:
        """Replace a whole derived table atomically."""
        with self.writer() as con:
            return replace(con, table, df)

    def append_with_ids(self, table: str, id_col: str, rows: Sequence[dict[str, Any]],
                        schema: dict[str, Any] | None = None) -> tuple[int, int]:
        """Append rows stamped with new consecutive ``id_col`` values; (first id, last id)."""
        with self.writer() as con:
            return append_with_ids(con, table, id_col, rows, schema)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.writer() as con:
            con.execute(sql, params or [])


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _one_select(sql: str) -> str:
    """The single SELECT (or EXPLAIN of a SELECT) in ``sql``, classified by DuckDB's own parser
    (so a ';' or a keyword inside a string literal is just text); anything else is an InputError."""
    statements = _parse(sql)
    if len(statements) > 1:
        raise InputError(f"one statement at a time: the query holds {len(statements)} statements")
    stmt = statements[0]
    if stmt.type == duckdb.StatementType.SELECT:
        return stmt.query
    if stmt.type == duckdb.StatementType.EXPLAIN:
        inner = _parse(re.sub(r"^\s*explain(\s+analy[sz]e)?\s+", "", stmt.query, flags=re.IGNORECASE))
        if len(inner) == 1 and inner[0].type == duckdb.StatementType.SELECT:
            return stmt.query
    name = str(stmt.type).rsplit(".", 1)[-1]
    raise InputError(f"kforge query is read-only: {name} statements are refused (only SELECT, or EXPLAIN of a SELECT)")


def _parse(sql: str) -> list[Any]:
    try:
        statements = duckdb.extract_statements(sql) if sql.strip() else []
    except duckdb.Error as exc:
        raise InputError(f"query failed: {_first_line(exc)}") from exc
    if not statements:
        raise InputError("empty query")
    return statements


def _polars_safe(rel: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """``rel`` with the columns polars cannot import turned into text (nested ones into JSON)."""
    exprs, changed = [], False
    for name, dtype in zip(rel.columns, rel.dtypes, strict=True):
        quoted = '"' + name.replace('"', '""') + '"'
        if _TEXT_TYPES.search(str(dtype)):
            changed = True
            as_text = f"to_json({quoted})" if dtype.id in _NESTED_IDS else f"{quoted}::VARCHAR"
            exprs.append(f"{as_text} AS {quoted}")
        else:
            exprs.append(quoted)
    return rel.project(", ".join(exprs)) if changed else rel


def is_damaged(exc: BaseException) -> bool:
    """True when DuckDB failed because the warehouse file is corrupt, truncated or not a database."""
    return any(isinstance(e, duckdb.Error) and _DAMAGED.search(str(e)) for e in _chain(exc))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def is_out_of_space(exc: BaseException) -> bool:
    """True when DuckDB (or the OS under it) failed for lack of disk space (ENOSPC / quota)."""
    return any(isinstance(e, (duckdb.Error, OSError)) and
               re.search(r"no space left|disk is full|disk quota exceeded|out of space", str(e), re.IGNORECASE)
               for e in _chain(exc))


def _root_cause(exc: BaseException) -> str:
    found = [e for e in _chain(exc) if re.search(r"no space left|disk is full|quota|out of space", str(e), re.I)]
    return str(found[0] if found else exc).splitlines()[0][:300]


# Connection-level helpers, usable inside one ``Warehouse.writer()`` transaction ------------

def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    rel = con.sql(sql, params=list(params) if params else None)
    if rel is None:
        return pl.DataFrame()
    return pl.from_arrow(rel.to_arrow_table())  # type: ignore[return-value]


def exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` exists (inside an open connection or writer transaction)."""
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_name = ?", [table]
        ).fetchall()[0][0]  # type: ignore[index]
    )


_exists = exists


def append_with_ids(con: duckdb.DuckDBPyConnection, table: str, id_col: str, rows: Sequence[dict[str, Any]],
                    schema: dict[str, Any] | None = None) -> tuple[int, int]:
    """Append ``rows`` stamped with consecutive ids after the table's largest ``id_col``, in the
    caller's writer transaction (so two writers never hand out the same id). Returns the first
    and last id written (``(start, start - 1)`` for no rows)."""
    table, id_col = _ident(table), _ident(id_col)
    start = 1
    if exists(con, table):
        start = int(con.execute(f"select coalesce(max({id_col}), 0) from {table}").fetchall()[0][0]) + 1  # type: ignore[index]
    if rows:
        full = [{id_col: start + i, **r} for i, r in enumerate(rows)]
        append(con, table, pl.DataFrame(full, schema=schema) if schema else pl.DataFrame(full))
    return start, start + len(rows) - 1


def _create_like(con: duckdb.DuckDBPyConnection, table: str, view: str) -> None:
    con.execute(f"create table if not exists {table} as select * from {view} limit 0")


def _add_missing_columns(con: duckdb.DuckDBPyConnection, table: str, view: str) -> None:
    have = {r[0] for r in con.execute(f"describe {table}").fetchall()}
    for name, typ, *_ in con.execute(f"describe {view}").fetchall():
        if name not in have:
            con.execute(f'alter table {table} add column "{name}" {typ}')


def append_new(con: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame, keys: Sequence[str]) -> int:
    table = _ident(table)
    if df.height == 0 and _exists(con, table):
        return 0
    view = f"_incoming_{table}"
    df = df.unique(subset=list(keys), keep="first", maintain_order=True)
    con.register(view, df.to_arrow())
    try:
        _create_like(con, table, view)
        _add_missing_columns(con, table, view)
        on = " and ".join(f"t.{_ident(k)} is not distinct from s.{k}" for k in keys)
        before = con.execute(f"select count(*) from {table}").fetchall()[0][0]  # type: ignore[index]
        con.execute(
            f"insert into {table} by name select s.* from {view} s "
            f"where not exists (select 1 from {table} t where {on})"
        )
        after = con.execute(f"select count(*) from {table}").fetchall()[0][0]  # type: ignore[index]
        return int(after - before)
    finally:
        con.unregister(view)


def append(con: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame) -> int:
    table = _ident(table)
    view = f"_incoming_{table}"
    con.register(view, df.to_arrow())
    try:
        _create_like(con, table, view)
        _add_missing_columns(con, table, view)
        con.execute(f"insert into {table} by name select * from {view}")
        return df.height
    finally:
        con.unregister(view)


def replace(con: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame) -> int:
    table = _ident(table)
    view = f"_incoming_{table}"
    con.register(view, df.to_arrow())
    try:
        con.execute(f"create or replace table {table} as select * from {view}")
        return df.height
    finally:
        con.unregister(view)


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """Query through an open connection (inside a writer transaction)."""
    return _fetch(con, sql, params)
