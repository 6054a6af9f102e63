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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from kforge.errors import InputError, StorageError
from kforge.storage.lock import file_lock

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WRITE_SQL = re.compile(
    r"\b(insert|update|delete|create|drop|alter|attach|detach|copy|export|import|install|load|"
    r"pragma|set|call|checkpoint|vacuum)\b",
    re.IGNORECASE,
)


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
    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        delay = 0.1
        for attempt in range(self.retries + 1):
            try:
                if read_only and not self.path.exists():
                    return duckdb.connect(":memory:")
                self.path.parent.mkdir(parents=True, exist_ok=True)
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:  # lock held by a process outside our file lock
                msg = str(exc)
                if _out_of_space(exc):
                    raise self._no_space(exc) from exc
                if "lock" not in msg.lower() or attempt == self.retries:
                    raise StorageError(f"cannot open warehouse {self.path}: {msg}") from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection (shared lock)."""
        with file_lock(self.lock_path, exclusive=False, timeout_s=self.lock_timeout_s):
            con = self._connect(read_only=True)
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction (exclusive lock).

        Commits when the block ends normally, rolls back on any exception.
        """
        with file_lock(self.lock_path, exclusive=True, timeout_s=self.lock_timeout_s):
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
                    if _out_of_space(exc):
                        raise self._no_space(exc) from exc
                    raise
                try:
                    con.execute("COMMIT")
                except duckdb.Error as exc:
                    if _out_of_space(exc):
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

    # -- reads -------------------------------------------------------------------------------
    def read(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """Run a query and return a polars DataFrame."""
        with self.reader() as con:
            return _fetch(con, sql, params)

    def query_readonly(self, sql: str) -> pl.DataFrame:
        """Run a user-supplied query; anything that could modify the warehouse is refused."""
        stripped = sql.strip().rstrip(";")
        if not stripped:
            raise InputError("empty query")
        if ";" in stripped:
            raise InputError("one statement at a time: the query contains ';'")
        if _WRITE_SQL.search(re.sub(r"'[^']*'", "''", stripped)):
            raise InputError("kforge query is read-only: INSERT/UPDATE/DDL statements are refused")
        try:
            return self.read(stripped)
        except duckdb.Error as exc:
            raise InputError(f"query failed: {exc}") from exc

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


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _out_of_space(exc: BaseException) -> bool:
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
