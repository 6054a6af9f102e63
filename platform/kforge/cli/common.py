"""Shared CLI plumbing: global options, the context passed to commands, argument policy, output helpers.

Argument policy, applied once to every command by :func:`apply_argument_policy` (``cli/main.py``):

* ``--out`` / ``--output`` must name a file that can be written: its directory exists and is
  writable, it is not a directory or a device, and it is not under ``/proc``, ``/sys`` or ``/dev``
  (:func:`output_path`); :func:`refuse_overwriting_inputs` refuses one that names a file the same
  command reads (an ``--input``, a positional file) or one of the home's stores;
* integer options are whole numbers that fit in 64 bits (:func:`whole_number`), float options are
  finite (:func:`finite_number`), so ``--limit 1e20`` is one clear line, not an overflow deep inside;
* an option with a range declares it with :func:`whole_number_in` / :func:`finite_number_in`, a seed
  with :func:`seed_number` / :func:`seed_list`, so ``--seed -1`` is one line, not a numpy traceback.
"""

import argparse
import datetime as dt
import decimal
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from kforge.config import SEED_MAX, Paths, resolve_data_dir
from kforge.errors import InputError, StorageError
from kforge.storage import Warehouse

OUTPUT_OPTIONS = ("--out", "--output")
_PSEUDO_FILESYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))
_INT64 = 2**63


@dataclass
class Ctx:
    """What every command gets: the kforge home and the optional real-data directory."""

    paths: Paths
    data: Path | None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Ctx":
        """The context; the home is created unless the command set ``creates_home=False`` (it only inspects)."""
        paths = Paths.of(args.home)
        return cls(paths.ensure() if getattr(args, "creates_home", True) else paths, resolve_data_dir(args.data))

    def warehouse(self) -> Warehouse:
        return Warehouse(self.paths.warehouse)

    def text_encoder(self):  # noqa: ANN201 - kforge.text.TextEncoder (nothing loads until it embeds)
        """The home's pretrained text encoder, embeddings cached in its warehouse; commands install it with
        ``kforge.text.use_encoder`` around work whose models embed."""
        from kforge.text import TextEncoder

        return TextEncoder(self.paths, self.warehouse())

    def tracker(self):  # noqa: ANN201 - imported lazily (mlflow is slow to import)
        from kforge.registry import Tracker

        tracker = Tracker(self.paths)
        db = self.paths.mlflow_db
        if tracker.tracking_uri == self.paths.tracking_uri() and not db.exists() and not os.access(db.parent, os.W_OK):
            # MLflow would retry creating its store for minutes, then print a SQLAlchemy traceback
            raise StorageError(f"cannot create the MLflow store {db}: {db.parent} is not writable (read-only or not "
                               "yours); fix its permissions, or pass --home DIR (or set KFORGE_HOME) to a writable "
                               "directory")
        return tracker


# -- argument types ------------------------------------------------------------------------------

def whole_number(text: str) -> int:
    """argparse type: an integer that fits in 64 bits (``1e20``, ``2.5`` and ``10**30`` are refused)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not -_INT64 <= value < _INT64:
        raise argparse.ArgumentTypeError(f"{text} is out of range: give a whole number below 2**63")
    return value


def finite_number(text: str) -> float:
    """argparse type: a finite float (``nan``, ``inf`` and ``1e400`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _bounds(low: float | None, high: float | None) -> str:
    def show(x: float | None) -> str:
        return f"{x:g}" if isinstance(x, float) else str(x)

    if low is not None and high is not None:
        return f"within {show(low)}..{show(high)}"
    return f">= {show(low)}" if low is not None else f"<= {show(high)}"


def _in_range(convert: Callable[[str], Any], what: str, low: float | None, high: float | None) -> Callable[[str], Any]:
    """argparse type: ``convert``'s value within ``low..high`` (a None end is open)."""
    def parse(text: str) -> Any:
        value = convert(text)
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {what} {_bounds(low, high)}")
        return value

    parse.__name__ = convert.__name__
    return parse


def whole_number_in(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """argparse type: a :func:`whole_number` within ``low..high`` (a None end is open), e.g.
    ``type=whole_number_in(0)`` for a row count that a negative would silently misread."""
    return _in_range(whole_number, "a whole number", low, high)


def finite_number_in(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    """argparse type: a :func:`finite_number` within ``low..high`` (a None end is open)."""
    return _in_range(finite_number, "a number", low, high)


def seed_number(text: str) -> int:
    """argparse type: a random seed, ``0..2**32-1`` (numpy and scikit-learn refuse a negative one deep inside)."""
    return whole_number_in(0, SEED_MAX)(text)


def seed_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated :func:`seed_number` values (``0,1,2``)."""
    return tuple(seed_number(x.strip()) for x in text.split(",") if x.strip())


def output_path(text: str) -> str:
    """argparse type: a file path kforge can write (checked before the command does any work)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the output path is empty")
    path = Path(text).expanduser()
    full = path.resolve()
    for root in _PSEUDO_FILESYSTEMS:
        if full == root or root in full.parents:
            raise argparse.ArgumentTypeError(f"{text} is under {root}, a system pseudo-filesystem: write to a "
                                             "file in an ordinary directory")
    if full.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory: give a file name inside it")
    if full.exists() and not full.is_file():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a regular file: choose another path")
    parent = full.parent
    if not parent.exists():
        raise argparse.ArgumentTypeError(f"the directory {parent} does not exist: create it first "
                                         f"(mkdir -p {parent}) or choose another path")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{parent} is not a directory: choose another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (full.exists() and not os.access(full, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{text} cannot be written here (permission denied or read-only "
                                         "file system): choose a writable directory")
    return str(path)


def _optional_output_path(text: str) -> str:
    return text if text == "" else output_path(text)


def apply_argument_policy(parser: argparse.ArgumentParser) -> None:
    """Give every command's ``--out``/``--output`` and numeric options the shared types above
    (the policy is declared here once instead of on each of the commands)."""
    seen: set[int] = set()

    def visit(p: argparse.ArgumentParser) -> None:
        if id(p) in seen:
            return
        seen.add(id(p))
        for action in p._actions:  # noqa: SLF001 - argparse exposes no public walk
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                for child in action.choices.values():
                    visit(child)
            elif set(action.option_strings) & set(OUTPUT_OPTIONS) and action.type is None:
                action.type = _optional_output_path if action.default == "" else output_path
            elif action.type is int:
                action.type = whole_number
            elif action.type is float:
                action.type = finite_number

    visit(parser)


def _output_dests(args: argparse.Namespace) -> list[str]:
    return [opt.lstrip("-") for opt in OUTPUT_OPTIONS if getattr(args, opt.lstrip("-"), None)]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwriting_inputs(args: argparse.Namespace, paths: Paths) -> None:
    """An ``--out``/``--output`` that names a file this command reads, or one of the home's stores,
    is refused before anything runs (writing it would destroy the input)."""
    for dest in _output_dests(args):
        out = Path(getattr(args, dest)).expanduser()
        stores = {"the warehouse": paths.warehouse, "the MLflow store": paths.mlflow_db,
                  "the warehouse lock": paths.warehouse.with_name(paths.warehouse.name + ".lock")}
        for what, store in stores.items():
            if out.resolve() == store.resolve() or _same_file(out, store):
                raise InputError(f"--{dest} {out} is {what} of the kforge home: write to another file")
        for name, value in vars(args).items():
            if name in (dest, "home", "data", "func") or callable(value):
                continue
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, (str, Path)) and str(item) and _same_file(out, Path(item).expanduser()):
                    flag = f"--{name.replace('_', '-')}" if name not in ("file", "files", "path", "paths") else name
                    raise InputError(f"--{dest} {out} is also the input ({flag} {item}): writing it would destroy "
                                     "the input; choose another output file")


# -- output ------------------------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return str(value)


def _csv_ready(df: pl.DataFrame) -> pl.DataFrame:
    """Nested columns (lists, arrays, structs, maps) as JSON text, binary as hex: CSV holds neither."""
    cols = []
    for name, dtype in df.schema.items():
        if dtype.is_nested() or dtype == pl.Object:
            cols.append(pl.Series(name, [None if v is None else json.dumps(v, default=_json_default, ensure_ascii=False)
                                         for v in df[name].to_list()], dtype=pl.String))
        elif dtype == pl.Binary:
            cols.append(df[name].bin.encode("hex"))
        else:
            cols.append(df[name])
    return pl.DataFrame(cols) if cols else df


def print_csv(df: pl.DataFrame) -> None:
    sys.stdout.write(_csv_ready(df).write_csv())


def print_table(df: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=200, tbl_cols=30, fmt_str_lengths=80, tbl_width_chars=200):
        print(df)
