"""The home's layout is written whole or not at all: a failed first write of the Dagster instance
config (a full disk) leaves no truncated dagster.yaml behind for every later run to keep."""

import errno
from pathlib import Path

import pytest
from kforge.config import DAGSTER_YAML, Paths
from kforge.errors import StorageError


def test_a_failed_config_write_leaves_no_half_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = Paths.of(tmp_path / "home")
    real = Path.write_text

    def disk_full(self: Path, data: str, *args: object, **kwargs: object) -> int:
        real(self, data[: len(data) // 3])  # part of the file reaches the disk, then ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(StorageError, match="No space left"):
        paths.ensure()
    monkeypatch.undo()
    cfg = paths.dagster_home / "dagster.yaml"
    assert not cfg.exists() and list(paths.dagster_home.iterdir()) == []
    paths.ensure()  # space again: the next run writes the whole config
    assert cfg.read_text() == DAGSTER_YAML
