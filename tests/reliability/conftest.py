"""Helpers for the failure tests: subprocesses that can be killed, a home with the demo repo
ingested, a tiny tmpfs (skipped only where mounting is not permitted)."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

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


@pytest.fixture()
def ingested_home(kforge_home: Path, demo_repo: Path) -> Path:
    """A kforge home with the 600-commit demo repository ingested (partition `demo`)."""
    from kforge.cli.main import main

    assert main(["--home", str(kforge_home), "ingest", str(demo_repo), "--name", "demo"]) == 0
    return kforge_home


@pytest.fixture()
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs; skip where mount is not permitted (unprivileged containers)."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
