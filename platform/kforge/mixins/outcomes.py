"""Observed outcomes: the append-only ``mixin_outcomes`` table and the aggregated matrix.

Rows come from the harness, from imported ``mixin_compatibility_matrix`` exports (CSV/JSONL,
e.g. a Postgres ``COPY ... TO CSV HEADER`` or ``row_to_json`` dump) and from feedback. Each row is
one observation of a combination (2+ mixins) on a node type: passed or failed, with the conflict
reason when one was observed.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from kforge.errors import InputError
from kforge.jsonl import read_jsonl
from kforge.mixins.catalogue import Catalogue
from kforge.storage import Warehouse

OUTCOMES = "mixin_outcomes"
MATRIX = "mixin_compatibility_matrix"
MAX_EXPANDED_PER_ROW = 10_000

OUTCOME_SCHEMA: dict[str, Any] = {
    "outcome_id": pl.Int64, "combination": pl.String, "mixins": pl.List(pl.String), "set_size": pl.Int32,
    "composition_order": pl.String, "node_type": pl.String, "scenario": pl.String, "mode": pl.String,
    "passed": pl.Boolean, "conflict_reason": pl.String, "detail": pl.String, "seed": pl.Int64,
    "duration_ms": pl.Float64, "source": pl.String, "observed_at": pl.Datetime("us", "UTC"),
}


def combination_key(mixins: list[str]) -> str:
    return "+".join(sorted(mixins))


def trials_frame(rows: list[dict[str, Any]], source: str) -> pl.DataFrame:
    """Harness/import rows -> the outcome schema (``outcome_id`` is assigned on storage)."""
    out = []
    for r in rows:
        mixins = sorted(r["mixins"])
        out.append({
            "outcome_id": None, "combination": combination_key(mixins), "mixins": mixins, "set_size": len(mixins),
            "composition_order": "+".join(r.get("order") or mixins), "node_type": r["node_type"],
            "scenario": r.get("scenario") or "observed", "mode": r.get("mode") or "unknown",
            "passed": bool(r["passed"]), "conflict_reason": r.get("conflict_reason") or None,
            "detail": r.get("detail") or "", "seed": r.get("seed"), "duration_ms": r.get("duration_ms"),
            "source": r.get("source") or source, "observed_at": r["observed_at"],
        })
    return pl.DataFrame(out, schema=OUTCOME_SCHEMA)


def append_outcomes(wh: Warehouse, df: pl.DataFrame) -> tuple[int, int]:
    """Append rows, numbering them after the current maximum; returns (first_id, n)."""
    if df.height == 0:
        return 0, 0
    rows = df.sort("observed_at", maintain_order=True).drop("outcome_id", strict=False).to_dicts()
    start, _ = wh.append_with_ids(OUTCOMES, "outcome_id", rows, OUTCOME_SCHEMA)
    return start, df.height


def read_outcomes(wh: Warehouse) -> pl.DataFrame:
    if not wh.has_table(OUTCOMES):
        return pl.DataFrame(schema=OUTCOME_SCHEMA)
    return wh.read(f"select * from {OUTCOMES} order by outcome_id").cast(OUTCOME_SCHEMA)  # type: ignore[arg-type]


def aggregate_matrix(outcomes: pl.DataFrame) -> pl.DataFrame:
    """Per (mixin_a, mixin_b, node_type): successes, failures, last tested, top conflict reason.
    Pair rows come from pair observations only; larger sets are aggregated under ``combination``."""
    if outcomes.height == 0:
        return pl.DataFrame(schema={"combination": pl.String, "mixin_a": pl.String, "mixin_b": pl.String,
                                    "set_size": pl.Int32, "node_type": pl.String, "success_count": pl.Int64,
                                    "failure_count": pl.Int64, "success_rate": pl.Float64,
                                    "last_tested": pl.Datetime("us", "UTC"), "conflict_reason": pl.String,
                                    "conflict_reasons": pl.String})
    reasons = (outcomes.filter(~pl.col("passed") & pl.col("conflict_reason").is_not_null())
               .group_by("combination", "node_type", "conflict_reason").len()
               .sort(["len", "conflict_reason"], descending=[True, False])
               .group_by("combination", "node_type", maintain_order=True)
               .agg(pl.col("conflict_reason").first().alias("conflict_reason"),
                    pl.format("{}={}", "conflict_reason", "len").str.join(";").alias("conflict_reasons")))
    agg = (outcomes.group_by("combination", "node_type")
           .agg(pl.col("mixins").first(), pl.col("set_size").first(),
                pl.col("passed").sum().cast(pl.Int64).alias("success_count"),
                (~pl.col("passed")).sum().cast(pl.Int64).alias("failure_count"),
                pl.col("observed_at").max().alias("last_tested")))
    return (agg.join(reasons, on=["combination", "node_type"], how="left")
            .with_columns(mixin_a=pl.col("mixins").list.get(0), mixin_b=pl.col("mixins").list.get(1),
                          success_rate=pl.col("success_count") / (pl.col("success_count") + pl.col("failure_count")))
            .select("combination", "mixin_a", "mixin_b", "set_size", "node_type", "success_count", "failure_count",
                    "success_rate", "last_tested", "conflict_reason", "conflict_reasons")
            .sort("combination", "node_type"))


# -- import of mixin_compatibility_matrix exports --------------------------------------------------

_ALIASES = {"mixin_a": ("mixin_a", "mixin1", "first_mixin"), "mixin_b": ("mixin_b", "mixin2", "second_mixin"),
            "node_type": ("node_type", "node", "nodetype"),
            "success_count": ("success_count", "successes", "n_success"),
            "failure_count": ("failure_count", "failures", "n_failure"),
            "last_tested": ("last_tested", "last_tested_at", "updated_at", "tested_at"),
            "conflict_reason": ("conflict_reason", "reason", "failure_reason")}


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        try:
            df = pl.read_csv(path, infer_schema=False)
        except Exception as exc:
            raise InputError(f"{path} is not a readable CSV file: {exc}") from None
        return [(i, r) for i, r in enumerate(df.iter_rows(named=True), start=2)]
    if path.suffix.lower() not in (".jsonl", ".json", ".ndjson"):
        raise InputError(f"{path}: expected a .csv or .jsonl export of mixin_compatibility_matrix")
    return list(read_jsonl(path))


def _pick(row: dict[str, Any], field: str) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for alias in _ALIASES[field]:
        if alias in lowered and lowered[alias] not in (None, ""):
            return lowered[alias]
    return None


def _count(v: Any, field: str) -> int:
    try:
        n = int(float(v))
    except (TypeError, ValueError):
        raise InputError(f"{field} must be a non-negative integer, got {v!r}") from None
    if n < 0 or n != float(v):
        raise InputError(f"{field} must be a non-negative integer, got {v!r}")
    if n > MAX_EXPANDED_PER_ROW:
        raise InputError(f"{field}={n} is more than {MAX_EXPANDED_PER_ROW} observations for one row")
    return n


def _when(v: Any) -> datetime:
    if v is None:
        return datetime.now(UTC)
    try:
        ts = datetime.fromisoformat(str(v).replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise InputError(f"last_tested must be an ISO timestamp, got {v!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def parse_matrix_row(row: dict[str, Any], cat: Catalogue) -> list[dict[str, Any]]:
    """One matrix row -> one observation per counted success/failure."""
    a, b, nt = _pick(row, "mixin_a"), _pick(row, "mixin_b"), _pick(row, "node_type")
    if a is None or b is None or nt is None:
        raise InputError("needs mixin_a, mixin_b and node_type")
    ma, mb, node = cat.canonical(str(a)), cat.canonical(str(b)), cat.node_type(str(nt))
    if ma == mb:
        raise InputError(f"mixin_a and mixin_b are the same mixin ({ma})")
    succ = _count(_pick(row, "success_count") or 0, "success_count")
    fail = _count(_pick(row, "failure_count") or 0, "failure_count")
    if succ + fail == 0:
        raise InputError("success_count + failure_count is 0: nothing was observed")
    when = _when(_pick(row, "last_tested"))
    reason = _pick(row, "conflict_reason")
    base = {"mixins": [ma, mb], "node_type": node, "observed_at": when, "scenario": "imported", "mode": "unknown"}
    return ([{**base, "passed": True} for _ in range(succ)]
            + [{**base, "passed": False, "conflict_reason": str(reason) if reason else "unknown"} for _ in range(fail)])


def _already_imported(wh: Warehouse, detail: str) -> int:
    if not wh.has_table(OUTCOMES):
        return 0
    return int(wh.read(f"select count(*) as n from {OUTCOMES} where detail = ?", [detail])["n"][0])


def import_matrix(path: str | Path, wh: Warehouse, cat: Catalogue) -> int:
    """Validate every row of an export; append all observations or none. Returns rows appended.
    An export whose bytes were imported before is refused (its counts would be stored twice); each
    imported row's ``detail`` holds the file's sha256 for that."""
    import hashlib

    path = Path(path)
    good: list[dict[str, Any]] = []
    errors = []
    for line, row in _rows(path):
        try:
            good.extend(parse_matrix_row(row, cat))
        except InputError as exc:
            errors.append(f"line {line}: {exc}")
    if errors:
        shown = "\n  ".join(errors[:20]) + (f"\n  ... {len(errors) - 20} more" if len(errors) > 20 else "")
        raise InputError(f"{path}: {len(errors)} invalid row(s), nothing was written:\n  {shown}")
    if not good:
        raise InputError(f"{path}: no rows")
    detail = "import sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    done = _already_imported(wh, detail)
    if done:
        raise InputError(f"{path} was imported before ({done} observations with the same sha256): importing it "
                         "again would count every observation twice; nothing was written")
    _, n = append_outcomes(wh, trials_frame([{**r, "detail": detail} for r in good], source=f"import:{path.name}"))
    return n


def feedback_to_outcomes(feedback: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``feedback_mixins`` -> outcome rows (source ``feedback:<id>``)."""
    rows = []
    for r in feedback.iter_rows(named=True):
        rows.append({"mixins": [m for m in r["mixins"].split(",") if m], "node_type": r["node_type"],
                     "passed": r["outcome"] == "success", "conflict_reason": r.get("conflict_reason"),
                     "scenario": "production", "mode": r.get("mode") or "unknown",
                     "observed_at": _when(r["observed_at"]) if r.get("observed_at") else r["received_at"],
                     "source": f"feedback:{r['feedback_id']}", "detail": r.get("notes") or ""})
    return trials_frame(rows, source="feedback")
