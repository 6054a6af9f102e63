"""`kforge query` stays inside the warehouse: one SELECT, on a connection that reaches no file, URL
or extension and cannot unlock its configuration; nested columns print as JSON in the CSV."""

import csv
import io
import json
from pathlib import Path

import polars as pl
import pytest
from kforge.cli.common import print_csv
from kforge.cli.main import main
from kforge.config import Paths
from kforge.storage import Warehouse


@pytest.fixture()
def home(kforge_home: Path, tmp_path: Path) -> Path:
    Warehouse(Paths.of(kforge_home).warehouse).append("t", pl.DataFrame({"k": [1, 2], "v": ["a;b", "c"]}))
    pl.DataFrame({"secret": [42]}).write_parquet(tmp_path / "outside.parquet")
    (tmp_path / "outside.csv").write_text("secret\n42\n")
    return kforge_home


def _query(home: Path, sql: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["--home", str(home), "query", sql])
    out, err = capsys.readouterr()
    return rc, out, err


REFUSED = [
    ("select * from read_csv('/etc/passwd')", "reads only the warehouse"),
    ("select * from '/etc/passwd'", "does not exist"),  # replacement scans are off
    ("select * from read_text('/etc/hostname')", "reads only the warehouse"),
    ("select * from glob('/etc/*')", "reads only the warehouse"),
    ("select * from read_parquet('{tmp}/outside.parquet')", "reads only the warehouse"),
    ("select * from read_csv_auto('{tmp}/outside.csv')", "reads only the warehouse"),
    ("select * from 'http://127.0.0.1:9/x.parquet'", "reads only the warehouse"),
    ("select * from read_csv('https://127.0.0.1:9/x.csv')", "reads only the warehouse"),
    ("install httpfs", "LOAD statements are refused"),
    ("load httpfs", "LOAD statements are refused"),
    ("attach '{tmp}/other.duckdb' as o", "ATTACH statements are refused"),
    ("copy t to '{tmp}/leak.csv'", "COPY statements are refused"),
    ("copy (select * from t) to '{tmp}/leak.parquet' (format parquet)", "COPY statements are refused"),
    ("export database '{tmp}/dump'", "EXPORT statements are refused"),
    ("set enable_external_access = true", "SET statements are refused"),
    ("reset enable_external_access", "SET statements are refused"),
    ("pragma enable_profiling", "PRAGMA statements are refused"),
    ("call pragma_version()", "CALL statements are refused"),
    ("checkpoint", "refused"),
    ("select 1; drop table t", "one statement at a time"),
    ("select 1; insert into t values (3, 'x')", "one statement at a time"),
    ("insert into t values (3, 'x')", "INSERT statements are refused"),
    ("delete from t", "DELETE statements are refused"),
    ("create table u as select 1", "CREATE statements are refused"),
    ("explain delete from t", "EXPLAIN statements are refused"),
    ("explain analyze insert into t values (3, 'x')", "EXPLAIN statements are refused"),
    ("pivot t on v using count(*)", "MULTI statements are refused"),
    ("   ", "empty query"),
    ("select * from", "query failed"),
]


@pytest.mark.parametrize(("sql", "message"), REFUSED)
def test_what_leaves_the_warehouse_or_writes_is_refused(home: Path, tmp_path: Path, sql: str, message: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _query(home, sql.format(tmp=tmp_path), capsys)
    assert rc == 2, (out, err)
    assert err.startswith("kforge: error:") and message in err and err.count("\n") == 1, err
    assert "42" not in out and "root:" not in out
    assert not (tmp_path / "leak.csv").exists() and not (tmp_path / "leak.parquet").exists()
    assert not (tmp_path / "other.duckdb").exists() and not (tmp_path / "dump").exists()
    assert Warehouse(Paths.of(home).warehouse).read("select count(*) n from t")["n"][0] == 2


def test_the_sandbox_is_in_force_even_inside_an_allowed_select(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A SELECT cannot reach a file through a nested query() either, and the settings are locked."""
    rc, out, _ = _query(home, "select value from duckdb_settings() where name in "
                              "('enable_external_access', 'lock_configuration', 'autoinstall_known_extensions', "
                              "'autoload_known_extensions') order by name", capsys)
    assert rc == 0 and out.splitlines()[1:] == ["false", "false", "false", "true"]
    rc, _, err = _query(home, "select * from query('select * from read_csv(''/etc/passwd'')')", capsys)
    assert rc == 2 and "reads only the warehouse" in err


@pytest.mark.parametrize(("sql", "expected"), [
    ("select ';' as x", [";"]),
    ("select v from t where v = 'a;b'", ["a;b"]),
    ("select 'delete from t; drop table t' as w", ["delete from t; drop table t"]),
    ("select count(*) as n from t;", ["2"]),
    ("with c as (select k from t) select max(k) as m from c", ["2"]),
    ("from t select k order by k", ["1", "2"]),
])
def test_string_literals_and_one_trailing_semicolon_are_fine(home: Path, sql: str, expected: list[str],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _query(home, sql, capsys)
    assert rc == 0, err
    assert [row[0] for row in csv.reader(io.StringIO(out))][1:] == expected


def test_describe_and_explain_of_a_select_work(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _query(home, "describe t", capsys)
    assert rc == 0 and "column_name" in out.splitlines()[0] and "\nk," in out
    rc, out, _ = _query(home, "explain select * from t", capsys)
    assert rc == 0 and "explain" in out.splitlines()[0]


def test_nested_columns_print_as_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _query(home, "select [1, 2] as l, {'a': 1, 'b': 'x;y', 'd': date '2020-01-02'} as s, "
                                "map {'k': 1} as m, [1, 2]::int[2] as arr, [] as e, null::int[] as n, "
                                "[{'x': [1]}] as deep, 'ab'::blob as b, interval 3 day as i, "
                                "1::union(i int, s varchar) as u", capsys)
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1
    row = rows[0]
    assert json.loads(row["l"]) == [1, 2]
    assert json.loads(row["s"]) == {"a": 1, "b": "x;y", "d": "2020-01-02"}
    assert json.loads(row["m"]) == {"k": 1}
    assert json.loads(row["arr"]) == [1, 2] and json.loads(row["e"]) == [] and row["n"] == ""
    assert json.loads(row["deep"]) == [{"x": [1]}]
    assert row["b"] == "6162" and row["i"] == "3 days" and json.loads(row["u"]) == {"i": 1}


def test_print_csv_keeps_flat_columns_and_encodes_nested_ones(capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt

    print_csv(pl.DataFrame({"n": [1, None], "l": [["a", "b"], None],
                            "s": [{"t": dt.datetime(2020, 1, 1, 10, 0), "f": 1.5}, {"t": None, "f": None}]}))
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["n"] == "1" and json.loads(rows[0]["l"]) == ["a", "b"]
    assert json.loads(rows[0]["s"]) == {"t": "2020-01-01T10:00:00", "f": 1.5}
    assert rows[1]["l"] == "" and json.loads(rows[1]["s"]) == {"t": None, "f": None}


def test_query_on_a_home_without_a_warehouse_is_sandboxed_too(kforge_home: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _query(kforge_home, "select * from read_csv('/etc/passwd')", capsys)
    assert rc == 2 and "reads only the warehouse" in err
    rc, out, _ = _query(kforge_home, "select 41 + 1 as x", capsys)
    assert rc == 0 and out.splitlines() == ["x", "42"]
