from pathlib import Path

import pytest
from kforge.errors import InputError
from kforge.feedback import (
    FeedbackSchema,
    Field,
    add_feedback,
    feedback_since,
    import_feedback,
    register_schema,
)
from kforge.storage import Warehouse


def _known_id(row: dict, wh: Warehouse) -> None:
    if row["item"].startswith("unknown"):
        raise InputError(f"item {row['item']!r} does not exist")


SCHEMA = register_schema(FeedbackSchema(
    family="unittest", doc="test family", check=_known_id,
    fields=(Field("item"), Field("outcome", choices=("ok", "failed")), Field("score", "float", required=False),
            Field("ok", "bool", required=False)),
))


def test_add_validates_and_appends(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    add_feedback("unittest", {"item": "a", "outcome": "ok", "score": "0.5", "ok": "yes"}, wh)
    add_feedback("unittest", {"item": "b", "outcome": "failed"}, wh)
    rows = feedback_since("unittest", wh)
    assert rows["feedback_id"].to_list() == [1, 2]
    assert rows["score"].to_list() == [0.5, None] and rows["ok"].to_list() == [True, None]
    assert feedback_since("unittest", wh, after_id=1)["item"].to_list() == ["b"]


@pytest.mark.parametrize(("row", "match"), [
    ({"outcome": "ok"}, "missing required field 'item'"),
    ({"item": "a", "outcome": "maybe"}, "must be one of"),
    ({"item": "a", "outcome": "ok", "score": "high"}, "must be float"),
    ({"item": "a", "outcome": "ok", "colour": "red"}, "unknown field"),
    ({"item": "unknown-1", "outcome": "ok"}, "does not exist"),
])
def test_bad_rows_are_rejected_with_reason(tmp_path: Path, row: dict, match: str) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(InputError, match=match):
        add_feedback("unittest", row, wh)
    assert not wh.has_table("feedback_unittest")


def test_import_is_all_or_nothing(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    add_feedback("unittest", {"item": "a", "outcome": "ok"}, wh)
    good = tmp_path / "good.jsonl"
    good.write_text('{"item": "x", "outcome": "ok"}\n\n{"item": "y", "outcome": "failed"}\n')
    assert import_feedback("unittest", good, wh) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"item": "z", "outcome": "ok"}\n{"item": "unknown-2", "outcome": "ok"}\nnot json\n')
    with pytest.raises(InputError) as exc:
        import_feedback("unittest", bad, wh)
    assert "line 2" in str(exc.value) and "nothing was written" in str(exc.value)
    csv = tmp_path / "rows.csv"
    csv.write_text("item,outcome\nc,ok\nd,bogus\n")
    with pytest.raises(InputError, match="line 3"):
        import_feedback("unittest", csv, wh)
    assert feedback_since("unittest", wh)["item"].to_list() == ["a", "x", "y"]
    with pytest.raises(InputError, match="no such file"):
        import_feedback("unittest", tmp_path / "missing.jsonl", wh)
