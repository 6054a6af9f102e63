"""`kforge doctor`: warehouse integrity, orphaned runs, registry consistency (read-only; exit 0
healthy, 1 problems) and `--backup DIR`, a consistent copy that is itself healthy."""

import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from kforge.cli.main import main
from kforge.config import Paths
from kforge.storage import Warehouse
from kforge.storage.doctor import check_home


@pytest.fixture(scope="module")
def _pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Built once: a home with a warehouse table and two registered versions (champion v2,
    previous-champion v1), and a pristine copy of it (MLflow's artifact URIs name the home's path,
    so each test gets the same path back, restored in place)."""
    import mlflow
    from kforge.registry import Tracker

    home = tmp_path_factory.mktemp("doctor") / "home"
    Warehouse(Paths.of(home).warehouse).append(
        "t", pl.DataFrame({"k": range(50_000), "v": [f"row-{i}" for i in range(50_000)]}))
    tracker = Tracker(Paths.of(home))
    for _ in range(2):
        with tracker.run("demo", "fit") as run:
            mlflow.log_text("weights", "model/weights.txt")
        version = tracker.register(run.info.run_id, "model", "kforge-demo")
    tracker.promote("kforge-demo", 1, "test")
    tracker.promote("kforge-demo", version, "test")
    pristine = home.parent / "pristine"
    shutil.copytree(home, pristine)
    return home, pristine


@pytest.fixture()
def home(_pristine: tuple[Path, Path]) -> Path:
    home, pristine = _pristine
    keep = {p.relative_to(pristine) for p in pristine.rglob("*")}
    for extra in sorted((p for p in home.rglob("*") if p.relative_to(home) not in keep), reverse=True):
        shutil.rmtree(extra) if extra.is_dir() and not extra.is_symlink() else extra.unlink()
    shutil.copytree(pristine, home, dirs_exist_ok=True)  # files overwritten in place (same inodes)
    return home


def _doctor(home: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    rc = main(["--home", str(home), "doctor", *extra])
    out, err = capsys.readouterr()
    return rc, out + err


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_healthy_home_exits_0_and_doctor_changes_nothing(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _tree_digest(home)
    rc, out = _doctor(home, capsys)
    assert rc == 0, out
    assert "PROBLEM" not in out and out.rstrip().endswith("healthy")
    assert "1 tables read in full" in out and "2 registered version(s)" in out
    assert _tree_digest(home) == before


def test_a_missing_home_is_reported_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = _doctor(tmp_path / "nohome", capsys)
    assert rc == 1 and "no kforge home" in out
    assert not (tmp_path / "nohome").exists()


@pytest.mark.parametrize("how", ["truncated", "block"])
def test_a_damaged_warehouse_is_found(home: Path, how: str, capsys: pytest.CaptureFixture[str]) -> None:
    wh = Paths.of(home).warehouse
    size = wh.stat().st_size
    with wh.open("r+b") as f:
        if how == "truncated":
            f.truncate(size // 2)
        else:
            f.seek(size // 2)
            f.write(b"\x13" * (size // 4))
    rc, out = _doctor(home, capsys)
    assert rc == 1
    assert "warehouse  PROBLEM" in out and "restore warehouse.duckdb from a backup" in out
    assert "registry   ok" in out  # the other checks still ran


def _sql(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute(sql, params).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def test_a_version_whose_artifacts_are_gone_is_found(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from urllib.parse import urlparse

    (location,) = _sql(Paths.of(home).mlflow_db, "select storage_location from model_versions where version = 1")[0]
    shutil.rmtree(urlparse(location).path)
    rc, out = _doctor(home, capsys)
    assert rc == 1
    assert "artifacts are missing: kforge-demo v1" in out and "kforge models promote" in out


def test_an_alias_to_no_version_is_found(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _sql(Paths.of(home).mlflow_db, "delete from model_versions where name = 'kforge-demo' and version = 2")
    rc, out = _doctor(home, capsys)
    assert rc == 1
    assert "kforge-demo@champion -> v2" in out and "kforge models promote NAME VERSION" in out


def test_an_mlflow_run_left_running_is_orphaned_only_without_a_live_process(home: Path) -> None:
    from kforge.registry import Tracker

    client = Tracker(Paths.of(home)).client()
    run = client.create_run(client.get_experiment_by_name("kforge/demo").experiment_id)  # never terminated
    report = check_home(Paths.of(home), live=lambda h: [])
    assert not report.healthy
    (orphan,) = [f for f in report.problems if f.area == "mlflow"]
    assert run.info.run_id in orphan.what and "set_terminated" in orphan.repair
    still = check_home(Paths.of(home), live=lambda h: [12345])
    assert still.healthy and any(run.info.run_id in f.what for f in still.findings)


def _fake_dagster_runs(home: Path, runs: list[tuple[str, str, dict[str, str]]]) -> None:
    """Dagster's run storage, reduced to the columns doctor reads (runs, run_tags)."""
    db = Paths.of(home).dagster_home / "history" / "runs.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    con.execute("create table runs (run_id text, status text, pipeline_name text, start_time float)")
    con.execute("create table run_tags (id integer primary key, run_id text, key text, value text)")
    for run_id, status, tags in runs:
        con.execute("insert into runs values (?, ?, '__ephemeral_asset_job__', 0)", (run_id, status))
        con.executemany("insert into run_tags (run_id, key, value) values (?, ?, ?)",
                        [(run_id, k, v) for k, v in tags.items()])
    con.commit()
    con.close()


def test_dagster_runs_left_started_by_a_dead_process_are_reported(home: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    host = socket.gethostname()
    _fake_dagster_runs(home, [
        ("dead0000-run", "STARTED", {"kforge/pid": dead, "kforge/host": host}),
        ("live0000-run", "STARTED", {"kforge/pid": str(os.getpid()), "kforge/host": host}),
        ("done0000-run", "SUCCESS", {"kforge/pid": dead, "kforge/host": host}),
    ])
    db = Paths.of(home).dagster_home / "history" / "runs.db"
    before = db.read_bytes()
    report = check_home(Paths.of(home), live=lambda h: [])
    (finding,) = [f for f in report.problems if f.area == "dagster"]
    assert "dead0000" in finding.what and "live0000" not in finding.what and "done0000" not in finding.what
    assert db.read_bytes() == before  # reported, never changed


def test_backup_is_a_consistent_healthy_copy(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "backup"
    rc, out = _doctor(home, capsys, "--backup", str(dest))
    assert rc == 0, out
    assert "backup     ok" in out and "restore" in out
    assert Warehouse(dest / "warehouse.duckdb").count("t") == 50_000
    assert _sql(dest / "mlflow.db", "select count(*) from model_versions") == [(2,)]
    assert _sql(dest / "mlflow.db", "pragma integrity_check") == [("ok",)]
    assert (dest / "kforge-backup.json").exists() and any((dest / "mlartifacts").rglob("weights.txt"))
    rc, out = _doctor(dest, capsys)  # the copy is a home of its own that passes the same checks
    assert rc == 0, out


@pytest.mark.parametrize("where", ["nonempty", "inside"])
def test_backup_refuses_a_used_directory_or_one_inside_the_home(home: Path, tmp_path: Path, where: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "used" if where == "nonempty" else home / "exports" / "bk"
    if where == "nonempty":
        dest.mkdir()
        (dest / "keep.txt").write_text("mine")
    rc, out = _doctor(home, capsys, "--backup", str(dest))
    assert rc == 2 and "kforge: error: --backup" in out
    assert "warehouse" not in out  # refused before any check or copy ran
    if where == "nonempty":
        assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    else:
        assert not dest.exists()


@pytest.mark.parametrize("how", ["header", "garbage"])
def test_a_damaged_mlflow_store_is_found(home: Path, how: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = Paths.of(home).mlflow_db
    with db.open("r+b") as f:
        if how == "header":
            f.write(b"\0" * 100)
        else:
            f.seek(db.stat().st_size // 2)
            f.write(os.urandom(db.stat().st_size // 3))
    rc, out = _doctor(home, capsys)
    assert rc == 1
    assert "mlflow     PROBLEM" in out and "restore mlflow.db" in out


def test_a_backup_whose_registry_copy_fails_its_check_is_not_ok(home: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the copied mlflow.db's quick_check result was only written into the manifest, and the command
    still printed "backup ok"."""
    import kforge.storage.doctor as doctor

    real = doctor._sqlite_ro

    class Damaged:
        def __init__(self, path: Path) -> None:
            self.con = real(path)

        def execute(self, sql: str):  # noqa: ANN201
            if "quick_check" in sql:
                return type("R", (), {"fetchone": staticmethod(lambda: ("*** in database main *** page 7: bad",))})()
            return self.con.execute(sql)

        def __getattr__(self, name: str):  # noqa: ANN204 - everything else is the real connection
            return getattr(self.con, name)

    monkeypatch.setattr(doctor, "_sqlite_ro", Damaged)
    rc, out = _doctor(home, capsys, "--backup", str(tmp_path / "backup"))
    assert rc == 2 and "backup     ok" not in out
    assert "kforge: error: the copied mlflow.db fails sqlite's quick_check" in out
