"""Subprocess helpers for the failure tests."""

import os
import subprocess
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]


def child_env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "KFORGE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]), **extra}


def python(code: str, *args: str, home: Path, **popen: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=child_env(home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)  # type: ignore[call-overload]


def kforge(home: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kforge.cli.main", "--home", str(home), *args], cwd=ROOT,
                          env=child_env(home), capture_output=True, text=True, timeout=timeout)


def sorted_table(wh, table: str) -> pl.DataFrame:  # noqa: ANN001
    df = wh.read_table(table)
    cols = [c for c in df.columns if c != "ingested_at" and df.schema[c] not in (pl.List, pl.Struct)
            and not isinstance(df.schema[c], (pl.List, pl.Struct))]
    return df.select(cols).sort(cols, nulls_last=True)
