import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from kforge.errors import InputError, NotARepositoryError
from kforge.git.ingest import ingest_repository
from kforge.storage import Warehouse

from tests.conftest import git

TABLES = ("commits", "file_changes")


def _snapshot(wh: Warehouse) -> dict[str, pl.DataFrame]:
    return {
        "commits": wh.read("select repo, sha, subject, lines_added, lines_deleted, n_files from commits order by sha"),
        "file_changes": wh.read('select repo, sha, path, added, deleted, "binary", subsystem from file_changes order by sha, path'),
    }


def test_ingest_demo_repo_then_incremental(demo_repo: Path, tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    r1 = ingest_repository(demo_repo, wh)
    assert r1.commits_added == r1.commits_in_history == 600
    assert wh.read("select count(distinct sha) n from commits")["n"][0] == 600
    # numstat totals equal git's own
    out = subprocess.run(["git", "-C", str(demo_repo), "log", "--numstat", "--no-renames", "--format="],
                         capture_output=True, text=True, check=True).stdout
    added = sum(int(line.split("\t")[0]) for line in out.splitlines() if line and line[0].isdigit())
    assert wh.read("select sum(added)::bigint s from file_changes")["s"][0] == added
    # Fixes: trailers from the generator are parsed
    assert wh.read("select count(*) n from commits where len(fixes) > 0")["n"][0] > 20
    # re-run reads nothing new
    r2 = ingest_repository(demo_repo, wh)
    assert (r2.commits_added, r2.already_stored) == (0, 600)
    # new commits: only they are added
    (demo_repo / "new.c").write_text("int x;\n")
    git(demo_repo, "add", "new.c")
    git(demo_repo, "commit", "-q", "-m", "x: add new file\n\nSigned-off-by: T <t@example.org>")
    r3 = ingest_repository(demo_repo, wh)
    assert r3.commits_added == 1 and r3.files_added == 1
    assert wh.count("commits") == 601


def test_invalid_utf8_and_binary_are_handled(demo_repo: Path, tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    ingest_repository(demo_repo, wh)
    q = wh.read("select reason from ingest_quarantine")
    assert "invalid UTF-8 in commit message" in q["reason"].to_list()
    assert wh.read("select count(*) n from commits where subject like '%\ufffd%'")["n"][0] == 1
    b = wh.read("select \"binary\", added from file_changes where path = 'firmware/demo.bin'")
    assert b["binary"].to_list() == [True]


@pytest.mark.parametrize("kind", ["missing", "file", "plain_dir"])
def test_not_a_repository(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "x"
    if kind == "file":
        target.write_text("hi")
    elif kind == "plain_dir":
        target.mkdir()
    with pytest.raises(NotARepositoryError):
        ingest_repository(target, Warehouse(tmp_path / "w.duckdb"))


def test_empty_repository_and_bad_ref(tmp_path: Path, demo_repo: Path) -> None:
    empty = tmp_path / "empty"
    subprocess.run(["git", "init", "-q", str(empty)], check=True)
    wh = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(InputError, match="empty repository"):
        ingest_repository(empty, wh)
    with pytest.raises(InputError, match="no commit named"):
        ingest_repository(demo_repo, wh, ref="no-such-branch")


def test_shallow_clone_is_ingested_and_noted(demo_repo: Path, tmp_path: Path) -> None:
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "50", f"file://{demo_repo}", str(shallow)], check=True)
    wh = Warehouse(tmp_path / "w.duckdb")
    r = ingest_repository(shallow, wh)
    assert r.commits_added == 50
    assert "shallow clone" in wh.read("select reason from ingest_quarantine")["reason"].to_list()


def test_missing_blob_is_quarantined_and_rest_ingested(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for i in range(5):
        (repo / f"f{i}.txt").write_text(f"content {i}\n" * (i + 1))
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", f"c{i}")
    blob = git(repo, "rev-parse", "HEAD~2:f2.txt").strip()
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    wh = Warehouse(tmp_path / "w.duckdb")
    r = ingest_repository(repo, wh)
    assert r.commits_added == 5  # the broken commit is stored from its trees
    q = wh.read("select sha, stage, reason from ingest_quarantine")
    assert q["stage"].to_list() == ["diff"]
    broken = q["sha"][0]
    rows = wh.read("select path, added from file_changes where sha = ?", [broken])
    assert rows["path"].to_list() == ["f2.txt"] and rows["added"].to_list() == [None]
    assert wh.read("select count(*) n from file_changes where added is not null")["n"][0] >= 4


def test_stored_rows_survive_a_failing_rerun(demo_repo: Path, tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    ingest_repository(demo_repo, wh)
    before = _snapshot(wh)
    shutil.rmtree(demo_repo / ".git" / "objects")
    with pytest.raises(InputError):
        ingest_repository(demo_repo, wh)
    after = _snapshot(wh)
    assert all(before[t].equals(after[t]) for t in TABLES)


KILL_SCRIPT = """
import sys
from kforge.git.ingest import ingest_repository
from kforge.storage import Warehouse
ingest_repository(sys.argv[1], Warehouse(sys.argv[2]), batch_size=25)
"""


def test_kill_9_during_ingestion_then_rerun_matches_clean_run(demo_repo: Path, tmp_path: Path) -> None:
    clean = Warehouse(tmp_path / "clean.duckdb")
    ingest_repository(demo_repo, clean, batch_size=25)
    expected = _snapshot(clean)

    db = tmp_path / "killed.duckdb"
    killed = 0
    for delay in (0.8, 1.2, 1.6):
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(demo_repo), str(db)],
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    ingest_repository(demo_repo, Warehouse(db), batch_size=25)
    got = _snapshot(Warehouse(db))
    assert killed >= 1, "the ingestion finished before it could be killed; make the repo bigger"
    for t in TABLES:
        assert got[t].equals(expected[t]), t


def test_huge_diff_is_counted_and_truncated_in_diffs(tmp_path: Path) -> None:
    from kforge.git.diffs import extract_diffs

    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "big.txt").write_text("".join(f"line {i}\n" for i in range(200_000)))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "x: add a huge generated file")
    wh = Warehouse(tmp_path / "w.duckdb")
    r = ingest_repository(repo, wh)
    assert r.commits_added == 1
    assert wh.read("select lines_added from commits")["lines_added"][0] == 200_000
    diffs, failed = extract_diffs(repo, "r", [r.head], max_bytes=65536)
    assert not failed and diffs["truncated"][0] and len(diffs["diff"][0].encode()) <= 65536
    assert diffs["diff_bytes_full"][0] > 1_000_000
