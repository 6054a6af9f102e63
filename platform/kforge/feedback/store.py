"""Validated, append-only feedback tables (one per family: ``feedback_<family>``).

Every stored row gets ``feedback_id`` (monotonic per table), ``received_at`` and ``source``;
sensors use ``feedback_id`` as their cursor.

``import`` is exactly once: each imported row carries a ``content_key`` (sha256 of the validated
row as canonical JSON, plus ``#k`` for its k-th identical copy in the file), and a row whose key
is stored already is not written again. Importing a file twice adds nothing ("already imported:
N rows"); a file that grew adds only its new rows; a file with two identical rows keeps both.
``add`` rows get no key: the same event observed twice by hand is two observations.

Free-text fields (``Field(text=True)``: crash logs, tracebacks, notes) are anonymised before they
are stored (:mod:`kforge.healing.anonymize`, with the home's ``anonymize.json`` rules), unless the
caller passes ``anonymize=False``; the row's ``anonymized`` column records which. The content key
is taken before anonymising, so two rows that differ only in a scrubbed value stay two rows.
"""

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from kforge.errors import InputError
from kforge.storage import Warehouse
from kforge.storage import warehouse as wh

CONTENT_KEY = "content_key"
ANONYMIZED = "anonymized"

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
    text: bool = False          # free text (a log, a traceback, a note): anonymised before it is stored


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

    @property
    def text_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.text)

    def polars_schema(self) -> dict[str, Any]:
        base = {f.name: _TYPES[f.type][0] for f in self.fields}
        return {"feedback_id": pl.Int64, **base, "source": pl.String, "received_at": pl.Datetime("us", "UTC"),
                CONTENT_KEY: pl.String, **({ANONYMIZED: pl.Boolean} if self.text_fields else {})}

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
    full = [{**r, "source": source, "received_at": now, CONTENT_KEY: None} for r in rows]
    first, last = warehouse.append_with_ids(schema.table, "feedback_id", full, schema.polars_schema())
    return last - first + 1


def content_keys(schema: FeedbackSchema, rows: list[dict[str, Any]]) -> list[str]:
    """One key per validated row: sha256 of its canonical JSON, ``#k`` for the k-th identical row."""
    seen: Counter[str] = Counter()
    keys = []
    for r in rows:
        canon = json.dumps({f.name: r.get(f.name) for f in schema.fields}, sort_keys=True, default=str,
                           separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(canon.encode()).hexdigest()
        seen[digest] += 1
        keys.append(f"{digest}#{seen[digest]}")
    return keys


def _backfill_keys(con: Any, schema: FeedbackSchema) -> None:
    """Give rows imported before content keys existed (source ``file:...``, no key) their keys, so
    re-importing an old file does not double it. Runs inside the import's transaction."""
    cols = {r[0] for r in con.execute(f"describe {schema.table}").fetchall()}
    if CONTENT_KEY not in cols:
        con.execute(f"alter table {schema.table} add column {CONTENT_KEY} varchar")
    old = wh.fetch(con, f"select * from {schema.table} where {CONTENT_KEY} is null and source like 'file:%' "
                        "order by feedback_id")
    if not old.height:
        return
    keyed = pl.DataFrame({"feedback_id": old["feedback_id"], CONTENT_KEY: content_keys(schema, old.to_dicts())})
    con.register("_backfill_keys", keyed.to_arrow())
    try:
        con.execute(f"update {schema.table} t set {CONTENT_KEY} = s.{CONTENT_KEY} from _backfill_keys s "
                    "where t.feedback_id = s.feedback_id")
    finally:
        con.unregister("_backfill_keys")


@dataclass(frozen=True)
class FeedbackImport:
    """What ``import`` did: rows written now, and rows of the file that were stored already."""

    added: int
    already_imported: int
    first_id: int | None = None


def _anonymized(schema: FeedbackSchema, rows: list[dict[str, Any]], warehouse: Warehouse,
                anonymize: bool) -> list[dict[str, Any]]:
    """The rows as they are stored: text fields scrubbed (unless ``anonymize`` is False) and the
    choice recorded in ``anonymized``. The one anonymisation hook of every feedback write."""
    if not schema.text_fields:
        return rows
    if not anonymize:
        return [{**r, ANONYMIZED: False} for r in rows]
    from kforge.healing.anonymize import Anonymizer

    anon = Anonymizer.default(home=warehouse.path.parent)   # the home's own rules, <home>/anonymize.json
    return [{**anon.scrub_fields(r, schema.text_fields)[0], ANONYMIZED: True} for r in rows]


def add_feedback(family: str, row: dict[str, Any], warehouse: Warehouse, source: str = "cli",
                 anonymize: bool = True) -> int:
    schema = get_schema(family)
    return _write(schema, _anonymized(schema, [schema.validate(row, warehouse)], warehouse, anonymize), warehouse, source)


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


def import_feedback(family: str, path: str | Path, warehouse: Warehouse, anonymize: bool = True) -> int:
    """Validate every row of a JSONL/CSV file; write all new rows or none; return how many were written."""
    return import_feedback_file(family, path, warehouse, anonymize).added


def import_feedback_file(family: str, path: str | Path, warehouse: Warehouse, anonymize: bool = True) -> FeedbackImport:
    """Validate every row of a JSONL/CSV file, then write the rows not imported before, in one
    transaction (the key check and the write cannot interleave with another import)."""
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
        shown = "; ".join(e.replace("\n", " ") for e in errors[:5]) + (
            f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise InputError(f"{path}: {len(errors)} invalid row(s), nothing was written: {shown}")
    if not good:
        raise InputError(f"{path}: no rows")
    now = datetime.now(UTC)
    keyed = [{**r, "source": f"file:{Path(path).name}", "received_at": now, CONTENT_KEY: k}
             for r, k in zip(_anonymized(schema, good, warehouse, anonymize), content_keys(schema, good), strict=True)]
    with warehouse.writer() as con:
        if wh.exists(con, schema.table):
            _backfill_keys(con, schema)
            stored = set(wh.fetch(con, f"select {CONTENT_KEY} from {schema.table} where {CONTENT_KEY} is not null"
                                  )[CONTENT_KEY].to_list())
            keyed = [r for r in keyed if r[CONTENT_KEY] not in stored]
        first, last = wh.append_with_ids(con, schema.table, "feedback_id", keyed, schema.polars_schema())
    return FeedbackImport(added=last - first + 1, already_imported=len(good) - len(keyed),
                          first_id=first if keyed else None)


def feedback_since(family: str, warehouse: Warehouse, after_id: int = 0) -> pl.DataFrame:
    """Rows with feedback_id > after_id (the sensors' cursor)."""
    schema = get_schema(family)
    if not warehouse.has_table(schema.table):
        return pl.DataFrame(schema=schema.polars_schema())
    return warehouse.read(f"select * from {schema.table} where feedback_id > ? order by feedback_id", [after_id])
