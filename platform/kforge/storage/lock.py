"""A process-wide file lock: DuckDB allows one writer, so every access goes through here.

Writers take the lock exclusively, readers shared; a held lock is waited for (bounded), and
the lock is released by the kernel if the holder dies (kill -9 leaves no stale lock).
"""

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kforge.errors import StorageError


@contextmanager
def file_lock(path: Path, exclusive: bool, timeout_s: float = 900.0) -> Iterator[None]:
    """Hold an flock on ``path`` (created if missing) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StorageError(
                        f"waited {timeout_s:.0f}s for the warehouse lock {path}; another kforge "
                        "process is writing. Retry when it finishes."
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
