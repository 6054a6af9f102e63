"""Reading JSON-lines files users hand to kforge (plain or .gz), with errors that name the line."""

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kforge.errors import InputError


def read_jsonl(path: str | Path, missing: str = "no such file") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-empty line; clear errors for unreadable files or lines."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: {missing}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for i, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise InputError(f"{path}:{i}: expected one JSON object per line")
                yield i, obj
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
