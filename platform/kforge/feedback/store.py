"""Validated, append-only feedback tables (one per family: ``feedback_<family>``).

Every stored row gets ``feedback_id`` (monotonic per table), ``received_at`` and ``source``;
sensors use ``feedback_id`` as their cursor.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from kforge.errors import InputError
from kforge.storage import Warehouse

_TYPES: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "str": (pl.String, lambda v: str(v)),
    "int": (pl.Int64, lambda v: int(v)),
    "float": (pl.Float64, lambda v: float(v)),
    "bool": (pl.Boolean, lambda v: v if isinstance(v, bool) else {"true": True, "1": True, "yes": True,
                                                                      "false": False, "0": False, "no": False}[str(v).lower()]),
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "str"           # str | int | float | bool
    required: bool = True
    choices: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class FeedbackSchema:
    """What one family accepts as feedback. ``check`` may raise InputError for cross-field rules
    (e.g. an id that must exist in the warehouse)."""

    family: str
    fields: tuple[Field, ...]
    doc: str = ""
    check: Callable[[dict[str, Any], Warehouse], None] | None = field(default=None, compare=False)

    @property
    def table(self) -> str:
        return f"feedback_{self.family}"

    def polars_schema(self) -> dict[str, Any]:
        base = {f.name: _TYPES[f.type][0] for f in self.fields}
        return {"feedback_id": pl.Int64, **base, "source": pl.String, "received_at": pl.Datetime("us", "UTC")}

    def validate(self, row: dict[str, Any], warehouse: Warehouse) -> dict[str, Any]:
        known = {f.name for f in self.fields}
        unknown = sorted(set(row) - known)
        if unknown:
            raise InputError(f"unknown field(s) {', '.join(unknown)}; {self.family} feedback takes: {', '.join(sorted(known))}")
        out: dict[str, Any] = {}
        for f in self.fields:
            v = row.get(f.name)
            if v is None or v == "":
                if f.required:
                    raise InputError(f"missing required field {f.name!r}")
                out[f.name] = None
                continue
            try:
                out[f.name] = _TYPES[f.type][1](v)
            except (ValueError, KeyError, TypeError):
                raise InputError(f"field {f.name!r} must be {f.type}, got {v!r}") from None
            if f.choices and str(out[f.name]) not in f.choices:
                raise InputError(f"field {f.name!r} must be one of {', '.join(f.choices)}, got {v!r}")
        if self.check:
            self.check(out, warehouse)
        return out


_REGISTRY: dict[str, FeedbackSchema] = {}


def register_schema(schema: FeedbackSchema) -> FeedbackSchema:
    _REGISTRY[schema.family] = schema
    return schema


def schemas() -> dict[str, FeedbackSchema]:
    """Every family's schema (``kforge.feedback.families``) plus any registered at run time."""
    from kforge.feedback.families import family_schemas

    return {**family_schemas(), **_REGISTRY}


def get_schema(family: str) -> FeedbackSchema:
    all_ = schemas()
    if family not in all_:
        raise InputError(f"unknown feedback family {family!r}; known: {', '.join(sorted(all_)) or 'none'}")
    return all_[family]


def _write(schema: FeedbackSchema, rows: list[dict[str, Any]], warehouse: Warehouse, source: str) -> int:
    now = datetime.now(UTC)
    full = [{**r, "source": source, "received_at": now} for r in rows]
    first, last = warehouse.append_with_ids(schema.table, "feedback_id", full, schema.polars_schema())
    return last - first + 1


def add_feedback(family: str, row: dict[str, Any], warehouse: Warehouse, source: str = "cli") -> int:
    schema = get_schema(family)
    return _write(schema, [schema.validate(row, warehouse)], warehouse, source)


def _read_rows(path: Path) -> Iterable[tuple[int, dict[str, Any] | str]]:
    """(line number, row) or (line number, error message) for every non-empty line."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.suffix == ".csv":
        try:
            df = pl.read_csv(path, infer_schema=False)
        except Exception as exc:
            raise InputError(f"{path} is not a readable CSV file: {exc}") from None
        for i, r in enumerate(df.iter_rows(named=True), start=2):
            yield i, {k: v for k, v in r.items() if v is not None}
        return
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield i, f"not valid JSON ({exc.msg})"
            continue
        yield i, obj if isinstance(obj, dict) else "expected a JSON object per line"


def import_feedback(family: str, path: str | Path, warehouse: Warehouse) -> int:
    """Validate every row of a JSONL/CSV file; write all of them or none."""
    schema = get_schema(family)
    good, errors = [], []
    for line, row in _read_rows(Path(path)):
        if isinstance(row, str):
            errors.append(f"line {line}: {row}")
            continue
        try:
            good.append(schema.validate(row, warehouse))
        except InputError as exc:
            errors.append(f"line {line}: {exc}")
    if errors:
        shown = "\n  ".join(errors[:20]) + (f"\n  ... {len(errors) - 20} more" if len(errors) > 20 else "")
        raise InputError(f"{path}: {len(errors)} invalid row(s), nothing was written:\n  {shown}")
    if not good:
        raise InputError(f"{path}: no rows")
    return _write(schema, good, warehouse, source=f"file:{Path(path).name}")


def feedback_since(family: str, warehouse: Warehouse, after_id: int = 0) -> pl.DataFrame:
    """Rows with feedback_id > after_id (the sensors' cursor)."""
    schema = get_schema(family)
    if not warehouse.has_table(schema.table):
        return pl.DataFrame(schema=schema.polars_schema())
    return warehouse.read(f"select * from {schema.table} where feedback_id > ? order by feedback_id", [after_id])
