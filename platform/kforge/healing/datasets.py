"""Labelled healing data: the real files in ``<data>/healing`` or the embedded corpus.

A task is one kind of input with its label fields and the column that groups near-duplicates
(crash title, notebook, program) so they never straddle a split.
"""

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kforge.errors import InputError


@dataclass(frozen=True)
class Task:
    kind: str                 # kernel | python
    file: str                 # file name under <data>/healing
    labels: tuple[str, ...]
    group: str                # column grouping near-duplicates
    text: str                 # column with the raw input


KERNEL = Task("kernel", "syzkaller_crash_reports.train.jsonl", ("crash_class", "syz_type"), "title", "log")
PYTHON = Task("python", "junobench_crashes.train.jsonl",
              ("label_root_cause", "label_exception_type", "label_ml_pipeline", "label_if_ml_bug", "lib_cause"),
              "fname", "traceback")
CORPUS_LABELS = ("label_root_cause", "label_exception_type", "label_ml_pipeline")
TASKS = (KERNEL, PYTHON)


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-empty line; clear errors for unreadable files or lines."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
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


def load_task(data_dir: Path, task: Task) -> list[dict[str, Any]]:
    """Rows of a task's training file, checked for the columns the task needs."""
    path = data_dir / "healing" / task.file
    rows = []
    for i, r in read_jsonl(path):
        missing = [c for c in (task.text, task.group, *task.labels) if c not in r]
        if missing:
            raise InputError(f"{path}:{i}: missing field(s) {', '.join(missing)}")
        rows.append(r)
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows
