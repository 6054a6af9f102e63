"""Entry point: ``kforge [--home DIR] [--data DIR] COMMAND ...``.

Whatever breaks, a user sees one line ``kforge: error: ...`` (exit 2) that says what to do:

* user errors (``KforgeError``) and argparse errors are printed as they are;
* what the environment does to a command (a read-only or full disk, a damaged warehouse or sqlite
  store, a missing path) reaches here as OSError, sqlite3 / SQLAlchemy / DuckDB errors, and is
  mapped to a ``StorageError`` with the hint that fixes it (:func:`environment_error`).

Anything else is a bug and keeps its traceback. Nothing is half-written because every write goes
through a transactional path (the warehouse's writer, sqlite transactions).
"""

import argparse
import errno
import importlib
import os
import pkgutil
import re
import shutil
import sqlite3
import sys
from pathlib import Path

import kforge.cli as cli_pkg
from kforge.cli.common import Ctx, apply_argument_policy, refuse_overwriting_inputs
from kforge.config import Paths
from kforge.errors import InputError, KforgeError, StorageError

_NOT_COMMANDS = {"main", "common"}


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error convention (no usage block, no SystemExit from parse_args)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kforge", description="kforge: ML platform for software-engineering intelligence")
    parser.add_argument("--home", default=None, help="kforge home (default: $KFORGE_HOME, else ./.kforge)")
    parser.add_argument("--data", default=None,
                        help="real-data directory laid out like ../shared/data (default: $KFORGE_DATA; unset = embedded defaults)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda i: i.name):
        if info.name in _NOT_COMMANDS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"kforge.cli.{info.name}")
        module.register(sub)
    apply_argument_policy(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    home: Path | None = None
    try:
        args = parser.parse_args(argv)
        home = Paths.of(args.home).home
        ctx = Ctx.from_args(args)
        refuse_overwriting_inputs(args, ctx.paths)
        rc = args.func(ctx, args)
        return int(rc or 0)
    except KforgeError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        print("kforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kforge query ... | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        mapped = environment_error(exc, home)
        if mapped is None:
            raise
        return _fail(mapped)


def _fail(exc: BaseException) -> int:
    """Print the error as one line (a message quoting git or DuckDB may hold several)."""
    print("kforge: error: " + " ".join(line.strip() for line in str(exc).splitlines() if line.strip()),
          file=sys.stderr)
    return 2


# -- the environment's failures, mapped to one line with a hint ----------------------------------------

_FULL, _READ_ONLY, _DAMAGED, _LOCKED, _IO = "full", "read-only", "damaged", "locked", "io"
_SQLITE_MESSAGES = [
    (_FULL, re.compile(r"database or disk is full", re.I)),
    (_READ_ONLY, re.compile(r"attempt to write a readonly database|unable to open database file|readonly database", re.I)),
    (_DAMAGED, re.compile(r"database disk image is malformed|file is not a database|file is encrypted", re.I)),
    (_LOCKED, re.compile(r"database is locked|database table is locked", re.I)),
    (_IO, re.compile(r"disk I/O error", re.I)),
]


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and SQLAlchemy's wrapped DB-API error (``.orig``)."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop(0)
        if cur is None or any(cur is seen for seen in out):
            continue
        out.append(cur)
        orig = getattr(cur, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, cur.__cause__, cur.__context__]
    return out


_NEARLY_FULL = 16 * 2**20  # an I/O error with less free than this is taken for a full disk


def _free_bytes(path: Path | None) -> int | None:
    probe = path
    while probe is not None and not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe or ".").free
    except OSError:
        return None


def _free_mib(path: Path | None) -> str:
    free = _free_bytes(path)
    return "free space unknown" if free is None else f"{free / 2**20:.1f} MiB free"


def _where(home: Path | None) -> str:
    return f"the kforge home {home}" if home else "the kforge home"


def _hint(kind: str, what: str, home: Path | None) -> str:
    free = _free_bytes(home)
    if kind == _IO and free is not None and free < _NEARLY_FULL:
        kind = _FULL
    if kind == _FULL:
        return (f"no space left for {what} ({_free_mib(home)}): free space, or move KFORGE_HOME to a larger disk, "
                "then re-run (each write is one transaction: what was stored before is intact)")
    if kind == _READ_ONLY:
        return (f"{what} cannot be written ({_where(home)} is read-only or not yours): fix its permissions, or pass "
                "--home DIR (or set KFORGE_HOME) to a writable directory; `kforge doctor --backup DIR` copies a home")
    if kind == _DAMAGED:
        return (f"{what} is damaged: run `kforge doctor` to see what still reads, then restore the file from a "
                "backup (`kforge doctor --backup DIR` makes one)")
    if kind == _LOCKED:
        return f"{what} is locked by another process: retry when it finishes"
    return (f"a disk I/O error in {what} ({_free_mib(home)}): most often the disk is full or was unmounted; free "
            "space or fix the disk, then run `kforge doctor` and re-run")


def _sqlite_kind(message: str) -> str | None:
    return next((kind for kind, pattern in _SQLITE_MESSAGES if pattern.search(message)), None)


def _os_error(e: OSError, home: Path | None) -> KforgeError:
    target = Path(os.fsdecode(e.filename)) if e.filename else None
    inside_home = bool(target and home and (target == home or home in target.parents))
    what = str(target) if target else _where(home)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(_hint(_FULL, what, target or home))
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        if inside_home or target is None:
            return StorageError(_hint(_READ_ONLY, what, home))
        return InputError(f"cannot write {what}: {e.strerror}: choose a path you can write to")
    if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
        return InputError(f"{what}: {e.strerror}: check the path")
    if e.errno == errno.EIO:
        return StorageError(_hint(_IO, what, target or home))
    return StorageError(f"{what}: {e.strerror or e}")


def environment_error(exc: BaseException, home: Path | None) -> KforgeError | None:
    """The one-line error for a failure the environment caused (None: a bug, keep the traceback)."""
    import duckdb

    from kforge.storage.warehouse import is_damaged, is_out_of_space

    chain = _chain(exc)
    for e in chain:
        if isinstance(e, sqlite3.Error) or (not isinstance(e, OSError) and "(sqlite3." in str(e)):
            kind = _sqlite_kind(str(e))
            if kind is not None:
                return StorageError(_hint(kind, f"a sqlite store under {_where(home)} (mlflow.db or dagster/)", home))
    if any(isinstance(e, duckdb.Error) for e in chain):
        what = f"the warehouse {home / 'warehouse.duckdb'}" if home else "the warehouse"
        if is_out_of_space(exc):
            return StorageError(_hint(_FULL, what, home))
        if is_damaged(exc):
            return StorageError(_hint(_DAMAGED, what, home))
    for e in chain:
        if isinstance(e, OSError) and e.errno is not None:
            return _os_error(e, home)
    return None


if __name__ == "__main__":
    sys.exit(main())
