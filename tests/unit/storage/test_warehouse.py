import multiprocessing as mp
from pathlib import Path

import polars as pl
import pytest
from kforge.errors import InputError
from kforge.storage import Warehouse


def test_append_new_is_idempotent(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    assert wh.append_new("t", pl.DataFrame({"k": [1, 2], "v": ["a", "b"]}), keys=["k"]) == 2
    assert wh.append_new("t", pl.DataFrame({"k": [2, 3], "v": ["x", "c"]}), keys=["k"]) == 1
    df = wh.read("select * from t order by k")
    assert df["k"].to_list() == [1, 2, 3]
    assert df["v"].to_list() == ["a", "b", "c"]  # stored rows are never overwritten


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.append("t", pl.DataFrame({"k": [1]}))
    from kforge.storage import warehouse as w

    with pytest.raises(RuntimeError):
        with wh.writer() as con:
            w.append(con, "t", pl.DataFrame({"k": [2, 3]}))
            raise RuntimeError("killed mid-batch")
    assert wh.count("t") == 1


def test_new_columns_are_added(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.append("t", pl.DataFrame({"k": [1]}))
    wh.append("t", pl.DataFrame({"k": [2], "extra": ["x"]}))
    assert wh.read("select extra from t order by k")["extra"].to_list() == [None, "x"]


@pytest.mark.parametrize("sql", ["delete from t", "drop table t", "insert into t values (1)", "select 1; select 2",
                                 "attach 'x.db'", "copy t to 'x.csv'", "  "])
def test_query_readonly_refuses_writes(tmp_path: Path, sql: str) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.append("t", pl.DataFrame({"k": [1]}))
    with pytest.raises(InputError):
        wh.query_readonly(sql)
    assert wh.count("t") == 1


def test_query_readonly_reports_sql_errors(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(InputError, match="query failed"):
        wh.query_readonly("select * from nope")
    assert wh.query_readonly("select 'delete' as word")["word"].to_list() == ["delete"]


def _writer(path: str, start: int) -> None:
    wh = Warehouse(path)
    for i in range(start, start + 20):
        wh.append_new("t", pl.DataFrame({"k": [i]}), keys=["k"])


def test_concurrent_writers_from_processes_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "w.duckdb")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, s)) for s in (0, 10, 20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert sorted(Warehouse(path).read("select k from t")["k"].to_list()) == list(range(40))
