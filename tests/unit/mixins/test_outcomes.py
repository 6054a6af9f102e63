"""The append-only outcomes table: matrix imports (CSV/JSONL), feedback, aggregation."""

import json
from pathlib import Path

import polars as pl
import pytest
from kforge.errors import InputError
from kforge.feedback import add_feedback, import_feedback
from kforge.mixins.outcomes import aggregate_matrix, import_matrix, read_outcomes
from kforge.mixins.pipeline import ingest_feedback


def test_import_postgres_style_csv_and_jsonl(warehouse, catalogue, tmp_path: Path):
    csv = tmp_path / "mixin_compatibility_matrix.csv"
    csv.write_text("id,mixin_a,mixin_b,node_type,success_count,failure_count,last_tested,conflict_reason\n"
                   "1,caching,Retry,EFFECT,3,2,2025-03-01 10:00:00+00,stale read\n"
                   "2,LoggingMixin,Security,compute,4,0,2025-03-02T10:00:00Z,\n")
    assert import_matrix(csv, warehouse, catalogue) == 9
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(json.dumps({"mixin1": "Audit", "mixin2": "Retry", "node": "REDUCER", "successes": 1,
                                 "failures": 1, "updated_at": "2025-04-01T00:00:00"}) + "\n")
    assert import_matrix(jsonl, warehouse, catalogue) == 2
    out = read_outcomes(warehouse)
    assert out["outcome_id"].to_list() == list(range(1, 12))
    m = aggregate_matrix(out)
    row = m.filter(pl.col("combination") == "Caching+Retry").row(0, named=True)
    assert (row["success_count"], row["failure_count"], row["conflict_reason"]) == (3, 2, "stale read")
    assert row["mixin_a"] == "Caching" and row["node_type"] == "EFFECT"
    assert out.filter(pl.col("combination") == "Audit+Retry")["source"][0] == "import:m.jsonl"
    # the same export again (here under another name) would double every count: refused, nothing written
    again = tmp_path / "copy.csv"
    again.write_bytes(csv.read_bytes())
    with pytest.raises(InputError, match="imported before"):
        import_matrix(again, warehouse, catalogue)
    assert read_outcomes(warehouse).height == 11


@pytest.mark.parametrize("body,error", [
    ("mixin_a,mixin_b,node_type,success_count,failure_count\nCaching,Nope,EFFECT,1,0\n", "line 3: unknown mixin 'Nope'"),
    ("mixin_a,mixin_b,node_type,success_count,failure_count\nCaching,Retry,EFFECT,-1,0\n", "non-negative"),
    ("mixin_a,mixin_b,success_count\nCaching,Retry,1\n", "needs mixin_a, mixin_b and node_type"),
    ("mixin_a,mixin_b,node_type,success_count,failure_count\nCaching,Caching,EFFECT,1,0\n", "the same mixin"),
    ("mixin_a,mixin_b,node_type,success_count,failure_count\nCaching,Retry,EFFECT,0,0\n", "nothing was observed"),
    ("mixin_a,mixin_b,node_type,success_count,last_tested\nCaching,Retry,EFFECT,1,yesterday\n", "ISO timestamp"),
    ("mixin_a,mixin_b,node_type,success_count\nCaching,Retry,SINK,1\n", "unknown node type"),
])
def test_bad_import_rows_write_nothing(warehouse, catalogue, tmp_path: Path, body: str, error: str):
    f = tmp_path / "bad.csv"
    f.write_text("mixin_a,mixin_b,node_type,success_count,failure_count\nCaching,Retry,EFFECT,2,0\n"
                 + body.split("\n", 1)[1] if body.startswith("mixin_a,mixin_b,node_type,success_count,failure_count")
                 else body)
    with pytest.raises(InputError, match=error):
        import_matrix(f, warehouse, catalogue)
    assert read_outcomes(warehouse).height == 0


def test_bad_files(warehouse, catalogue, tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        import_matrix(tmp_path / "x.csv", warehouse, catalogue)
    (tmp_path / "x.parquet").write_text("x")
    with pytest.raises(InputError, match="expected a .csv or .jsonl"):
        import_matrix(tmp_path / "x.parquet", warehouse, catalogue)
    (tmp_path / "x.jsonl").write_text('{"mixin_a": "Caching"\n')
    with pytest.raises(InputError, match="not valid JSON"):
        import_matrix(tmp_path / "x.jsonl", warehouse, catalogue)


def test_feedback_is_validated_ingested_once(warehouse, tmp_path: Path):
    add_feedback("mixins", {"mixins": "retry,caching", "node_type": "effect", "outcome": "failure",
                            "conflict_reason": "duplicate_side_effect"}, warehouse)
    f = tmp_path / "fb.jsonl"
    f.write_text(json.dumps({"mixins": "Audit,Metrics,Retry", "node_type": "COMPUTE", "outcome": "success",
                             "observed_at": "2026-02-01T00:00:00Z"}) + "\n")
    import_feedback("mixins", f, warehouse)
    assert ingest_feedback(warehouse) == 2
    assert ingest_feedback(warehouse) == 0          # idempotent
    out = read_outcomes(warehouse)
    first = out.row(0, named=True) if out["combination"][0] == "Caching+Retry" else out.row(1, named=True)
    assert first["mixins"] == ["Caching", "Retry"] and not first["passed"]
    assert set(out["source"].to_list()) == {"feedback:1", "feedback:2"}
    assert out.filter(pl.col("set_size") == 3).height == 1


@pytest.mark.parametrize("row,error", [
    ({"mixins": "Caching", "node_type": "EFFECT", "outcome": "failure"}, "at least two"),
    ({"mixins": "Caching,Zap", "node_type": "EFFECT", "outcome": "failure"}, "unknown mixin"),
    ({"mixins": "Caching,Retry", "node_type": "EFFECT", "outcome": "maybe"}, "must be one of"),
    ({"mixins": "Caching,Retry", "node_type": "EFFECT", "outcome": "success", "conflict_reason": "x"}, "only meaningful"),
    ({"mixins": "Caching,Retry", "node_type": "EFFECT", "outcome": "success", "observed_at": "soon"}, "ISO"),
])
def test_bad_feedback_rows(warehouse, row, error):
    with pytest.raises(InputError, match=error):
        add_feedback("mixins", row, warehouse)
