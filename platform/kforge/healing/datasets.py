"""Labelled healing data: the real files in ``<data>/healing`` or the embedded corpus.

A task is one kind of input with its label fields and the column that groups near-duplicates
(crash title, notebook, program) so they never straddle a split.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kforge.errors import InputError
from kforge.jsonl import read_jsonl


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
