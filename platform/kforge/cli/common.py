"""Shared CLI plumbing: global options, the context passed to commands, output helpers."""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kforge.config import Paths, resolve_data_dir
from kforge.storage import Warehouse


@dataclass
class Ctx:
    """What every command gets: the kforge home and the optional real-data directory."""

    paths: Paths
    data: Path | None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Ctx":
        return cls(Paths.of(args.home).ensure(), resolve_data_dir(args.data))

    def warehouse(self) -> Warehouse:
        return Warehouse(self.paths.warehouse)

    def tracker(self):  # noqa: ANN201 - imported lazily (mlflow is slow to import)
        from kforge.registry import Tracker

        return Tracker(self.paths)


def print_csv(df: pl.DataFrame) -> None:
    sys.stdout.write(df.write_csv())


def print_table(df: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=200, tbl_cols=30, fmt_str_lengths=80, tbl_width_chars=200):
        print(df)
