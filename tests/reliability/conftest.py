"""Helpers for the failure tests: subprocesses that can be killed, a home with the demo repo
ingested, a tiny tmpfs (skipped only where mounting is not permitted)."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
