"""``feedback import`` is exactly once: the same rows are never stored twice, new rows always are."""

import json
from pathlib import Path

import pytest
from kforge.cli.main import main
from kforge.feedback import (
    FeedbackSchema,
    Field,
    add_feedback,
    feedback_since,
    import_feedback,
    register_schema,
)
from kforge.feedback.store import import_feedback_file
from kforge.storage import Warehouse

register_schema(FeedbackSchema(
    family="idem", doc="exactly-once test family",
    fields=(Field("item"), Field("outcome", choices=("ok", "failed")), Field("score", "float", required=False),
            Field("n", "int", required=False)),
))
ROWS = [{"item": "a", "outcome": "ok", "score": 0.5}, {"item": "b", "outcome": "failed", "n": 3}]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _items(wh: Warehouse) -> list[str]:
    return feedback_since("idem", wh)["item"].to_list()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_importing_a_file_twice_stores_its_rows_once(tmp_path: Path, fmt: str) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    if fmt == "csv":
        path = tmp_path / "f.csv"
        path.write_text("item,outcome,score,n\na,ok,0.5,\nb,failed,,3\n")
    else:
        path = _jsonl(tmp_path / "f.jsonl", ROWS)
    assert import_feedback("idem", path, wh) == 2
    again = import_feedback_file("idem", path, wh)
    assert (again.added, again.already_imported) == (0, 2)
    assert _items(wh) == ["a", "b"]


def test_the_same_rows_written_differently_are_the_same_rows(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    import_feedback("idem", _jsonl(tmp_path / "a.jsonl", ROWS), wh)
    # other key order, numbers as strings, spacing, another file name: the validated rows are equal
    other = tmp_path / "b.jsonl"
    other.write_text('{"outcome":"ok","item":"a","score":"0.50"}\n\n{ "n": "3", "outcome": "failed", "item": "b" }\n')
    assert import_feedback_file("idem", other, wh).already_imported == 2
    assert _items(wh) == ["a", "b"]


def test_a_grown_file_adds_only_its_new_rows(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    path = _jsonl(tmp_path / "f.jsonl", ROWS)
    import_feedback("idem", path, wh)
    _jsonl(path, [*ROWS, {"item": "c", "outcome": "ok"}])
    res = import_feedback_file("idem", path, wh)
    assert (res.added, res.already_imported) == (1, 2)
    assert _items(wh) == ["a", "b", "c"] and feedback_since("idem", wh)["feedback_id"].to_list() == [1, 2, 3]


def test_identical_rows_inside_one_file_are_separate_events(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    path = _jsonl(tmp_path / "f.jsonl", [ROWS[0], ROWS[0]])
    assert import_feedback("idem", path, wh) == 2
    assert import_feedback("idem", path, wh) == 0
    _jsonl(path, [ROWS[0], ROWS[0], ROWS[0]])  # a third observation of the same outcome
    assert import_feedback("idem", path, wh) == 1
    assert _items(wh) == ["a", "a", "a"]


def test_rows_imported_before_content_keys_are_not_imported_again(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    path = _jsonl(tmp_path / "f.jsonl", ROWS)
    import_feedback("idem", path, wh)
    wh.execute("alter table feedback_idem drop column content_key")  # a warehouse from before the keys
    res = import_feedback_file("idem", path, wh)
    assert (res.added, res.already_imported) == (0, 2) and _items(wh) == ["a", "b"]


def test_add_records_each_observation_and_does_not_block_an_import(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    add_feedback("idem", {"item": "a", "outcome": "ok", "score": "0.5"}, wh, source="cli")
    add_feedback("idem", {"item": "a", "outcome": "ok", "score": "0.5"}, wh, source="cli")
    assert import_feedback("idem", _jsonl(tmp_path / "f.jsonl", ROWS), wh) == 2
    assert _items(wh) == ["a", "a", "a", "b"]


def test_cli_says_already_imported(tmp_path: Path, kforge_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _jsonl(tmp_path / "f.jsonl", ROWS)
    assert main(["--home", str(kforge_home), "feedback", "import", "idem", str(path)]) == 0
    assert "recorded 2 idem feedback rows" in capsys.readouterr().out
    assert main(["--home", str(kforge_home), "feedback", "import", "idem", str(path)]) == 0
    assert "already imported: 2 rows" in capsys.readouterr().out
    _jsonl(path, [*ROWS, {"item": "z", "outcome": "failed"}])
    assert main(["--home", str(kforge_home), "feedback", "import", "idem", str(path)]) == 0
    out = capsys.readouterr().out
    assert "recorded 1 new idem feedback rows" in out and "already imported: 2 rows" in out


def test_invalid_file_is_one_error_line(tmp_path: Path, kforge_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(f'{{"item": "x{i}", "outcome": "maybe"}}\n' for i in range(8)) + "not json\n")
    assert main(["--home", str(kforge_home), "feedback", "import", "idem", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "9 invalid row(s), nothing was written" in err and "and 4 more" in err, err
