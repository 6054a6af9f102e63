"""What the ``healing`` assets and ``kforge healing`` commands run: build the labelled tasks
(real data when a data directory is given, else the embedded corpus + feedback) and train."""

from pathlib import Path
from typing import Any

import polars as pl
from kforge.healing.corpus import load_programs, run_corpus
from kforge.healing.datasets import CORPUS_LABELS, KERNEL, PYTHON, load_task
from kforge.healing.fixes import GENERIC, STRATEGIES, fix_outcomes
from kforge.healing.rules import RuleEngine


def corpus_tables(engine: RuleEngine | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(error rows, fix outcome rows) from actually running the shipped programs."""
    engine = engine or RuleEngine.default()
    programs = load_programs()
    rows = run_corpus(programs)

    def candidates(row: dict[str, Any]) -> list[str]:
        m = engine.match_row(row)
        row["error_class"] = m.rule.id if m else "unmatched"
        return sorted({*(m.rule.strategies if m else ()), GENERIC, *STRATEGIES})

    outcomes = fix_outcomes(programs, rows, candidates)
    return rows, outcomes


def feedback_labels(fb: pl.DataFrame, groups: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Label feedback as extra training rows per kind (one row per (error, label)). The group of a row on
    a known error (``groups``: error id -> group) is that error's group, so it lands on its side of the
    split; any other row's group is its error id (all the rows on one error on one side), else
    ``fb-<feedback id>``."""
    out: dict[str, list[dict[str, Any]]] = {"kernel": [], "python": []}
    if fb.height == 0:
        return out
    groups = groups or {}
    for r in fb.filter(pl.col("kind") == "label").iter_rows(named=True):
        kind = "kernel" if r.get("log") else "python"
        error_id = r.get("error_id")
        row = {"id": error_id or f"fb-{r['feedback_id']}", r["label"]: r["value"],
               "log" if kind == "kernel" else "traceback": r.get("log") or r.get("traceback"),
               "group": groups.get(error_id, error_id) if error_id else f"fb-{r['feedback_id']}"}
        out[kind].append(row)
    return out


def feedback_outcomes(fb: pl.DataFrame, programs: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Fix feedback as outcome rows. The group (``program``) of an outcome on a known corpus error is
    that error's program (``programs``: error id -> program), so it lands on its program's side of
    the split; any other outcome is its own group (its error id, else ``fb-<feedback id>``)."""
    if fb.height == 0:
        return []
    programs = programs or {}
    out = []
    for r in fb.filter(pl.col("kind") == "fix").iter_rows(named=True):
        error_id = r.get("error_id") or f"fb-{r['feedback_id']}"
        out.append({"error_id": error_id, "program": programs.get(error_id, error_id), "error_class": r["error_class"],
                    "exc_type": "", "strategy": r["strategy"], "success": bool(r["success"])})
    return out


def build_tasks(data_dir: Path | None, corpus_rows: list[dict[str, Any]],
                fb: pl.DataFrame | None = None) -> dict[str, tuple[list[dict[str, Any]], tuple[str, ...], str]]:
    """kind -> (rows, labels, group column). Real data when ``data_dir/healing`` exists; feedback on one of
    its errors joins that error's group (:func:`feedback_labels`)."""
    base: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]] = {}
    if data_dir is not None and (data_dir / "healing" / KERNEL.file).exists():
        base["kernel"] = ([{**r, "group": r[KERNEL.group]} for r in load_task(data_dir, KERNEL)], KERNEL.labels)
    if data_dir is not None and (data_dir / "healing" / PYTHON.file).exists():
        base["python"] = ([{**r, "group": r[PYTHON.group]} for r in load_task(data_dir, PYTHON)], PYTHON.labels)
    else:
        base["python"] = ([{**r, "group": r["program"]} for r in corpus_rows], CORPUS_LABELS)
    known = {str(r["id"]): str(r["group"]) for rows, _ in base.values() for r in rows if r.get("id") not in (None, "")}
    extra = feedback_labels(fb if fb is not None else pl.DataFrame(), known)
    tasks = {kind: (rows + extra[kind], labels, "group") for kind, (rows, labels) in base.items()}
    if "kernel" not in tasks and extra["kernel"]:
        tasks["kernel"] = (extra["kernel"], KERNEL.labels, "group")
    return tasks
