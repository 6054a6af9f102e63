"""import-commits stores a whole file or nothing; commit messages reach the warehouse as the README says."""

import subprocess
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from kforge.cli.main import main
from kforge.errors import InputError
from kforge.git import importer
from kforge.git.importer import import_commits, prepare_import
from kforge.git.ingest import ingest_repository
from kforge.storage import Warehouse

from tests.conftest import git

N = 60
BAD = 55  # 1-based row number of the broken row


def _rows(n: int, repo: str = "r") -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        sha = f"{i + 1:040x}"
        rows.append({
            "sha": sha, "parents": [f"{i:040x}"] if i else [], "author_name": f"A{i}", "author_email": "a@x.org",
            "author_date": "2024-01-01T00:00:00+00:00", "author_ts": 1_700_000_000 + i, "committer_name": "C",
            "committer_email": "c@x.org", "committer_date": "2024-01-01T00:00:00+00:00",
            "committer_ts": 1_700_000_000 + i, "subject": f"net: change {i}", "body": "Signed-off-by: A <a@x.org>",
            "files": [{"path": f"net/f{i}.c", "added": i, "deleted": 0, "binary": False}], "repo": repo,
        })
    return rows


def _write(path: Path, rows: list[dict[str, Any]], schema: dict[str, Any] | None = None) -> Path:
    pl.DataFrame(rows, schema=schema, infer_schema_length=None).write_parquet(path)
    return path


def _set(field: str, value: Any) -> Any:
    def f(rows: list[dict[str, Any]]) -> None:
        rows[BAD - 1][field] = value
    return f


def _dup_key(rows: list[dict[str, Any]]) -> None:
    rows[BAD - 1] = {**rows[BAD - 2], "subject": "other content, same key"}


def _file(**kw: Any) -> Any:
    def f(rows: list[dict[str, Any]]) -> None:
        rows[BAD - 1]["files"] = [{"path": "x.c", "added": 1, "deleted": 0, "binary": False, **kw}]
    return f


BREAKAGES = {
    "null author_ts": (_set("author_ts", None), "author_ts is null"),
    "null committer_ts": (_set("committer_ts", None), "committer_ts is null"),
    "null sha": (_set("sha", None), "sha is null"),
    "empty sha": (_set("sha", ""), "sha is null or empty"),
    "short sha": (_set("sha", "abc123"), "not a full lower-case hex object id"),
    "upper-case sha": (_set("sha", "A" * 40), "not a full lower-case hex object id"),
    "sha with a newline": (_set("sha", "0" * 39 + "\n"), "not a full lower-case hex object id"),
    "malformed parent": (_set("parents", ["nope"]), "a parent is null or not a full hex object id"),
    "null parent": (_set("parents", [None]), "a parent is null"),
    "empty repo": (_set("repo", " "), "repo is null or empty"),
    "duplicate key, other content": (_dup_key, "appears again in the file with different content"),
    "file without path": (_file(path=None), "a file entry has no path"),
    "negative line count": (_file(added=-3), "negative 'added' count"),
}


@pytest.mark.parametrize("case", list(BREAKAGES))
def test_one_bad_row_stores_nothing_and_names_the_row(tmp_path: Path, case: str) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    keep = import_commits(_write(tmp_path / "keep.parquet", _rows(3, repo="other")), wh)
    assert keep["commits_added"] == 3
    rows = _rows(N)
    breakage, reason = BREAKAGES[case]
    breakage(rows)
    bad = _write(tmp_path / "bad.parquet", rows)
    with pytest.raises(InputError) as exc:
        import_commits(bad, wh, batch_size=10)  # many batches: a prefix would show
    msg = str(exc.value)
    assert f"row {BAD}" in msg and reason in msg and "nothing was written" in msg and "\n" not in msg, msg
    assert "1 of 60 rows are invalid" in msg or "2 of 60 rows are invalid" in msg, msg
    assert wh.count("commits") == 3 and wh.count("file_changes") == 3
    assert wh.read("select count(*) n from commits where repo = 'r'")["n"][0] == 0


@pytest.mark.parametrize(("column", "values", "dtype"), [
    ("author_ts", ["1700000000"] * 3, pl.String),
    ("committer_ts", [1.7e9] * 3, pl.Float64),
    ("sha", [1, 2, 3], pl.Int64),
    ("parents", ["p", "q", "r"], pl.String),
    ("files", ["a.c", "b.c", "c.c"], pl.String),
    ("files", [[1], [2], [3]], pl.List(pl.Int64)),
    ("subject", [[1], [2], [3]], pl.List(pl.Int64)),
])
def test_wrong_column_types_are_refused_with_one_line(tmp_path: Path, kforge_home: Path, column: str, values: list,
                                                      dtype: Any, capsys: pytest.CaptureFixture[str]) -> None:
    df = pl.DataFrame(_rows(3)).with_columns(pl.Series(column, values, dtype=dtype))
    path = tmp_path / "typed.parquet"
    df.write_parquet(path)
    rc = main(["--home", str(kforge_home), "import-commits", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert "wrong column types" in err and repr(column) in err, err


def test_all_null_optional_column_is_accepted(tmp_path: Path) -> None:
    df = pl.DataFrame(_rows(3)).with_columns(pl.lit(None).alias("body"))
    df.write_parquet(tmp_path / "nullbody.parquet")
    assert import_commits(tmp_path / "nullbody.parquet", Warehouse(tmp_path / "w.duckdb"))["commits_added"] == 3


def test_6000_rows_bad_at_5500_store_nothing_via_the_cli(tmp_path: Path, kforge_home: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    rows = _rows(6000)
    rows[5499]["author_ts"] = None
    good = _write(tmp_path / "good.parquet", _rows(5, repo="g"))
    bad = _write(tmp_path / "bad.parquet", rows)
    # every file is checked before any is written
    rc = main(["--home", str(kforge_home), "import-commits", str(good), str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("kforge: error: ") and err.count("\n") == 1, err
    assert "row 5500" in err and "1 of 6000 rows are invalid" in err and "--quarantine-invalid" in err
    wh = Warehouse(kforge_home / "warehouse.duckdb")
    assert not wh.has_table("commits") or wh.count("commits") == 0


def test_quarantine_keeps_valid_rows_and_records_each_bad_one(tmp_path: Path) -> None:
    rows = _rows(N)
    rows[9]["sha"] = None
    rows[19]["author_ts"] = None
    rows[29]["parents"] = ["zz"]
    rows.append(dict(rows[0]))  # an exact repeat: dropped, not an error
    path = _write(tmp_path / "mixed.parquet", rows)
    wh = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(InputError, match="3 of 61 rows are invalid"):
        import_commits(path, wh)
    res = import_commits(path, wh, quarantine_invalid=True)
    assert (res["commits_added"], res["invalid_rows"], res["quarantined"], res["duplicates_dropped"]) == (N - 3, 3, 3, 1)
    q = wh.read("select sha, stage, reason, detail from ingest_quarantine order by detail")
    assert q["stage"].to_list() == ["import"] * 3
    assert sorted(q["reason"].to_list()) == sorted(["sha is null or empty", "author_ts is null",
                                                    "a parent is null or not a full hex object id"])
    assert any("row 10" in d for d in q["detail"].to_list())
    again = import_commits(path, wh, quarantine_invalid=True)  # exactly once
    assert (again["commits_added"], again["quarantined"], again["already_stored"]) == (0, 0, N - 3)
    assert wh.count("commits") == N - 3 and wh.count("ingest_quarantine") == 3


def test_a_failure_while_writing_rolls_back_the_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "ok.parquet", _rows(N))
    wh = Warehouse(tmp_path / "w.duckdb")
    real = importer.wh.append_new
    calls = {"n": 0}

    def failing(con: Any, table: str, df: pl.DataFrame, keys: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 5:  # third batch of commits
            raise OSError("disk went away")
        return real(con, table, df, keys)

    monkeypatch.setattr(importer.wh, "append_new", failing)
    with pytest.raises(OSError):
        import_commits(path, wh, batch_size=10)
    monkeypatch.setattr(importer.wh, "append_new", real)
    assert not wh.has_table("commits") or wh.count("commits") == 0
    assert import_commits(path, wh, batch_size=10)["commits_added"] == N


def test_prepare_reports_without_writing(tmp_path: Path) -> None:
    prep = prepare_import(_write(tmp_path / "ok.parquet", _rows(4)), repo="renamed")
    assert prep.valid["repo"].unique().to_list() == ["renamed"] and prep.invalid_rows == 0
    assert not (tmp_path / "w.duckdb").exists()


# -- invalid UTF-8 in commits --------------------------------------------------------------------

def _raw_commit(repo: Path, parent: str | None, message: bytes, encoding: str | None = None,
                author: bytes = b"T") -> str:
    """A commit object with exactly these bytes (``git commit`` would rewrite invalid UTF-8 as Latin-1)."""
    tree = git(repo, "write-tree").strip()
    head = f"tree {tree}\n" + (f"parent {parent}\n" if parent else "")
    body = (head.encode() + b"author " + author + b" <t@example.org> 1700000000 +0000\n"
            b"committer T <t@example.org> 1700000000 +0000\n"
            + (f"encoding {encoding}\n".encode() if encoding else b"") + b"\n" + message + b"\n")
    return subprocess.run(["git", "-C", str(repo), "hash-object", "-t", "commit", "-w", "--stdin"], input=body,
                          capture_output=True, check=True).stdout.decode().strip()


# name -> (message bytes, encoding header, author bytes, stored subject, stored author, quarantine reason or None)
ENCODINGS = {
    "valid utf-8": (b"net: na\xc3\xafve caf\xc3\xa9", None, b"T", "net: na\u00efve caf\u00e9", "T", None),
    "invalid, no header": (b"net: bad \xff\xfe caf\xe9", None, b"T", "net: bad \ufffd\ufffd caf\ufffd", "T",
                           "invalid UTF-8 in commit message"),
    "invalid, header UTF-8": (b"net: bad \xe9t\xe9", "UTF-8", b"T", "net: bad \ufffdt\ufffd", "T",
                              "invalid UTF-8 in commit message"),
    "invalid, unknown header": (b"net: bad \xe9", "x-no-such-charset", b"T", "net: bad \ufffd", "T",
                                "invalid UTF-8 in commit message"),
    "latin-1, declared": (b"net: caf\xe9 cr\xe8me", "ISO-8859-1", b"Ren\xe9", "net: caf\u00e9 cr\u00e8me",
                          "Ren\u00e9", None),
    "invalid author, no header": (b"net: ok", None, b"Ren\xe9", "net: ok", "Ren\ufffd",
                                  "invalid UTF-8 in commit author_name"),
}


@pytest.fixture(scope="module")
def encodings_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    repo = tmp_path_factory.mktemp("enc") / "enc"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f").write_text("x\n")
    git(repo, "add", "f")
    parent, shas = None, {}
    for name, (msg, enc, author, *_) in ENCODINGS.items():
        parent = shas[name] = _raw_commit(repo, parent, msg, enc, author)
    git(repo, "update-ref", "HEAD", parent)  # type: ignore[arg-type]
    return repo, shas


@pytest.mark.parametrize("log_output_encoding", [None, "ISO-8859-1"])
def test_commit_text_is_decoded_once_and_invalid_bytes_are_replaced_and_quarantined(
        encodings_repo: tuple[Path, dict[str, str]], tmp_path: Path, log_output_encoding: str | None) -> None:
    src, shas = encodings_repo
    repo = tmp_path / "enc"
    subprocess.run(["cp", "-a", str(src), str(repo)], check=True)
    if log_output_encoding:  # the repository's own config must not change what is stored
        git(repo, "config", "i18n.logOutputEncoding", log_output_encoding)
    wh = Warehouse(tmp_path / "w.duckdb")
    ingest_repository(repo, wh)
    stored = {r["sha"]: r for r in wh.read("select sha, subject, author_name from commits").iter_rows(named=True)}
    q = wh.read("select sha, reason from ingest_quarantine where stage = 'parse'")
    for name, (_, _, _, subject, author, reason) in ENCODINGS.items():
        row = stored[shas[name]]
        assert (row["subject"], row["author_name"]) == (subject, author), name
        reasons = q.filter(pl.col("sha") == shas[name])["reason"].to_list()
        assert reasons == ([reason] if reason else []), (name, reasons)
