"""Whatever breaks, one line `kforge: error: ...` with the hint that fixes it, exit 2: numbers out of
range, unwritable or self-destroying output paths, a read-only home, a full disk, damaged stores."""

import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import duckdb
import polars as pl
import pytest
from kforge.cli.main import environment_error, main
from kforge.config import Paths
from kforge.storage import Warehouse


def _run(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = main(["--home", str(home), *args])
    return rc, capsys.readouterr().err


def _one_line(err: str, *needles: str) -> None:
    assert err.startswith("kforge: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


# -- numbers ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["export", "standard", "--out", "{tmp}/x.jsonl", "--limit", "1e20"], "expected a whole number"),
    (["export", "standard", "--out", "{tmp}/x.jsonl", "--limit", "100000000000000000000"], "out of range"),
    (["export", "standard", "--out", "{tmp}/x.jsonl", "--limit", "2.5"], "expected a whole number"),
    (["export", "standard", "--out", "{tmp}/x.jsonl", "--limit", "ten"], "expected a whole number"),
    (["export", "standard", "--out", "{tmp}/x.jsonl", "--min-quality", "nan"], "finite number"),
    (["export", "standard", "--out", "{tmp}/x.jsonl", "--test-fraction", "inf"], "finite number"),
    (["export", "standard", "--out", "{tmp}/x.jsonl", "--test-fraction", "1e400"], "finite number"),
    (["acceptance", "score", "--input", "{tmp}/in.parquet", "--output", "{tmp}/o.parquet", "--top", "9" * 30],
     "out of range"),
    (["models", "promote", "kforge-x", "1e20"], "expected a whole number"),
    (["demo-repo", "{tmp}/r", "--commits", "-99999999999999999999"], "out of range"),
    (["telemetry", "evaluate", "--duration", "nan"], "finite number"),
])
def test_numbers_out_of_range_are_one_line(kforge_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           args: list[str], message: str) -> None:
    rc, err = _run(kforge_home, capsys, *[a.format(tmp=tmp_path) for a in args])
    assert rc == 2
    _one_line(err, message, "--help")
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "r").exists()


SEEDS = "give a whole number within 0..4294967295"
SIM_SECONDS = "give a number <= 86400"


# each of these used to end in a numpy traceback (a negative seed), run on with a value that means
# nothing (a risk threshold of 7, a negative --max-rows read as "all but the first N", a negative
# --min-delta that promotes a worse model) or simulate until memory ran out (--duration 1e9)
@pytest.mark.parametrize(("args", "message"), [
    (["telemetry", "simulate", "steady", "--seed", "-1", "--duration", "10", "--out", "{tmp}/t.jsonl"], SEEDS),
    (["telemetry", "simulate", "steady", "--seed", "4294967296", "--out", "{tmp}/t.jsonl"], SEEDS),
    (["telemetry", "simulate", "steady", "--duration", "1e9", "--out", "{tmp}/t.jsonl"], SIM_SECONDS),
    (["telemetry", "explain", "leak", "--no-llm", "--seed", "-1"], SEEDS),
    (["telemetry", "explain", "leak", "--no-llm", "--duration", "20", "--threshold", "7"], "within 0..1"),
    (["telemetry", "train", "--model", "scheduler", "--sched-test-seeds", "1000,-1"], SEEDS),
    (["telemetry", "train", "--simulate", "--fit-seeds", "0,x"], "expected a whole number"),
    (["telemetry", "train", "--simulate", "--sim-duration", "1e9"], SIM_SECONDS),
    (["telemetry", "train", "--model", "recommender", "--rec-duration", "1e9"], SIM_SECONDS),
    (["telemetry", "evaluate", "--skip-policy", "--duration", "1e9"], SIM_SECONDS),
    (["mixins", "exercise", "--sets", "1", "--trials-per-pair", "0", "--seed", "-1"], SEEDS),
    (["mixins", "train", "--seed", "-1"], SEEDS),
    (["mixins", "train", "--min-delta", "-0.5"], "give a number >= 0"),
    (["train", "generation", "--max-rows", "-5"], "give a whole number >= 0"),
    (["generation", "train", "--max-rows", "-5"], "give a whole number >= 0"),
])
def test_numbers_outside_their_range_are_one_line_before_any_work(kforge_home: Path, tmp_path: Path, args: list[str],
                                                                  message: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = _run(kforge_home, capsys, *[a.format(tmp=tmp_path) for a in args])
    assert rc == 2
    _one_line(err, message, "--help")
    assert not (tmp_path / "t.jsonl").exists()
    assert not Warehouse(Paths.of(kforge_home).warehouse).has_table("mixin_outcomes")


def test_the_ends_of_each_range_are_accepted() -> None:
    from kforge.cli.main import build_parser

    parse = build_parser().parse_args
    assert parse(["telemetry", "simulate", "steady", "--seed", "4294967295", "--duration", "86400",
                  "--out", "t.jsonl"]).seed == 4294967295
    args = parse(["telemetry", "explain", "leak", "--seed", "0", "--duration", "10", "--threshold", "1"])
    assert (args.seed, args.duration, args.threshold) == (0, 10.0, 1.0)
    args = parse(["telemetry", "train", "--fit-seeds", "0, 4294967295,", "--rec-seeds", "", "--sim-duration", "10"])
    assert (args.fit_seeds, args.rec_seeds, args.calib_seeds, args.sim_duration) == ((0, 4294967295), (), (4, 5), 10.0)
    assert parse(["mixins", "train", "--min-delta", "0", "--seed", "0"]).min_delta == 0.0
    assert parse(["train", "generation", "--max-rows", "0"]).max_rows == 0


def test_argparse_mistakes_are_one_line_too(kforge_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = _run(kforge_home, capsys, "exprot")
    assert rc == 2
    _one_line(err, "invalid choice", "kforge --help")
    rc, err = _run(kforge_home, capsys, "export", "standard")
    assert rc == 2
    _one_line(err, "required: --out", "kforge export --help")


# -- output paths ----------------------------------------------------------------------------------

WRITERS = [
    ["export", "standard", "--out", "{out}"],
    ["acceptance", "score", "--input", "{tmp}/in.parquet", "--output", "{out}"],
    ["healing", "classify", "--input", "{tmp}/in.jsonl", "--output", "{out}"],
    ["telemetry", "simulate", "steady", "--out", "{out}"],
]
BAD_OUTPUTS = [
    ("{tmp}/missing/dir/o.parquet", "does not exist: create it first (mkdir -p"),
    ("/proc/kforge-o.parquet", "pseudo-filesystem"),
    ("/proc/self/comm", "pseudo-filesystem"),
    ("/sys/kernel/kforge-o.parquet", "pseudo-filesystem"),
    ("/dev/null", "pseudo-filesystem"),
    ("{tmp}", "is a directory"),
    ("{tmp}/afile/o.parquet", "is not a directory"),
    ("", "empty"),
]


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: " ".join(w[:2]))
@pytest.mark.parametrize(("out", "message"), BAD_OUTPUTS)
def test_output_paths_that_cannot_be_written_are_refused_first(kforge_home: Path, tmp_path: Path, writer: list[str],
                                                               out: str, message: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [a.format(tmp=tmp_path, out=out.format(tmp=tmp_path)) for a in writer]
    rc, err = _run(kforge_home, capsys, *args)
    assert rc == 2
    _one_line(err, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no directory or file was made


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink"])
@pytest.mark.parametrize("command", ["acceptance", "healing"])
def test_output_equal_to_input_is_refused_and_the_input_kept(kforge_home: Path, tmp_path: Path, spelling: str,
                                                             command: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / ("in.parquet" if command == "acceptance" else "in.jsonl")
    if command == "acceptance":
        pl.DataFrame({"sha": ["a" * 40], "repo": ["r"]}).write_parquet(src)
    else:
        src.write_text('{"id": "e1", "log": "BUG: kernel NULL pointer dereference"}\n')
    original = src.read_bytes()
    out = {"same": src, "dot": tmp_path / "." / src.name, "symlink": tmp_path / "link", "hardlink": tmp_path / "hard"}
    if spelling == "symlink":
        (tmp_path / "link").symlink_to(src)
    if spelling == "hardlink":
        os.link(src, tmp_path / "hard")
    sub = ["acceptance", "score"] if command == "acceptance" else ["healing", "classify"]
    rc, err = _run(kforge_home, capsys, *sub, "--input", str(src), "--output", str(out[spelling]))
    assert rc == 2
    _one_line(err, "is also the input", "--input")
    assert src.read_bytes() == original


@pytest.mark.parametrize("store", ["warehouse.duckdb", "mlflow.db", "warehouse.duckdb.lock"])
def test_output_onto_a_store_of_the_home_is_refused(kforge_home: Path, store: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    Warehouse(Paths.of(kforge_home).warehouse).append("t", pl.DataFrame({"k": [1]}))
    (kforge_home / "mlflow.db").touch()
    target = kforge_home / store
    before = target.read_bytes()
    rc, err = _run(kforge_home, capsys, "export", "standard", "--out", str(target))
    assert rc == 2
    _one_line(err, "of the kforge home")
    assert target.read_bytes() == before


# -- a read-only home ------------------------------------------------------------------------------

@pytest.fixture()
def read_only_home(tmp_path: Path) -> Iterator[Path]:
    """A populated home on a read-only file system (a remounted tmpfs as root, chmod 555 otherwise)."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    root = os.geteuid() == 0
    if root:
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True)
        if res.returncode != 0:
            pytest.skip("running as root and cannot mount a tmpfs: a read-only home cannot be made")
    home = mnt / "home"
    Paths.of(home).ensure()
    Warehouse(Paths.of(home).warehouse).append("t", pl.DataFrame({"k": [1, 2]}))
    try:
        if root:
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        else:
            for p in [home, *home.rglob("*")]:
                p.chmod(0o555 if p.is_dir() else 0o444)
        yield home
    finally:
        if root:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        else:
            for p in [home, *home.rglob("*")]:
                p.chmod(0o755)


@pytest.mark.parametrize(("args", "message"), [
    (["query", "select count(*) from t"], "cannot write in"),
    (["models", "list"], "cannot create the MLflow store"),
    (["export", "standard", "--out", "{home}/x.jsonl"], "cannot be written here"),
    (["ingest", "{repo}", "--name", "demo"], "cannot write in"),
])
def test_a_read_only_home_is_one_line(read_only_home: Path, demo_repo: Path, args: list[str], message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = _run(read_only_home, capsys, *[a.format(home=read_only_home, repo=demo_repo) for a in args])
    assert rc == 2
    _one_line(err, message)
    assert "--home DIR" in err or "writable directory" in err


def test_a_home_that_cannot_be_created_is_one_line(read_only_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = _run(read_only_home / "sub" / "home", capsys, "query", "select 1")
    assert rc == 2
    _one_line(err, "cannot set up the kforge home", "--home DIR")


# -- full disks and damaged stores (mapped at the CLI boundary) -----------------------------------

def _sqlalchemy(message: str) -> Exception:
    from sqlalchemy.exc import OperationalError

    return OperationalError("PRAGMA main.table_xinfo(\"runs\")", {}, sqlite3.OperationalError(message))


FAULTS = [
    (lambda: _sqlalchemy("disk I/O error"), "disk I/O error"),
    (lambda: _sqlalchemy("database or disk is full"), "no space left"),
    (lambda: _sqlalchemy("attempt to write a readonly database"), "cannot be written"),
    (lambda: _sqlalchemy("unable to open database file"), "cannot be written"),
    (lambda: _sqlalchemy("database disk image is malformed"), "is damaged"),
    (lambda: sqlite3.DatabaseError("file is not a database"), "is damaged"),
    (lambda: sqlite3.OperationalError("database is locked"), "locked by another process"),
    (lambda: RuntimeError("(sqlite3.OperationalError) disk I/O error"), "disk I/O error"),
    (lambda: OSError(errno.ENOSPC, "No space left on device", "/x/warehouse.duckdb"), "no space left"),
    (lambda: OSError(errno.EDQUOT, "Disk quota exceeded"), "no space left"),
    (lambda: OSError(errno.EROFS, "Read-only file system", "HOME/dagster/x"), "cannot be written"),
    (lambda: PermissionError(errno.EACCES, "Permission denied", "/elsewhere/out.json"), "choose a path you can write"),
    (lambda: OSError(errno.EIO, "Input/output error", "HOME/mlflow.db"), "disk I/O error"),
    (lambda: FileNotFoundError(errno.ENOENT, "No such file or directory", "/nope.jsonl"), "check the path"),
    (lambda: duckdb.IOException("Could not write file: No space left on device"), "no space left"),
    (lambda: duckdb.Error("Corrupt database file: computed checksum 1 does not match stored checksum 2"), "is damaged"),
]


@pytest.mark.parametrize(("make", "message"), FAULTS)
def test_faults_of_the_environment_become_one_line(kforge_home: Path, monkeypatch: pytest.MonkeyPatch, make,  # noqa: ANN001
                                                   message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A command that hits the fault deep inside (here: `models list`, where MLflow opens sqlite)."""
    from kforge.cli import common

    def boom(self):  # noqa: ANN001, ANN202
        exc = make()
        if isinstance(exc, OSError) and isinstance(exc.filename, str) and exc.filename.startswith("HOME"):
            exc.filename = exc.filename.replace("HOME", str(kforge_home))
        try:
            raise exc
        except Exception as inner:  # wrapped once, as MLflow and Dagster do
            raise RuntimeError("while opening the store") from inner

    monkeypatch.setattr(common.Ctx, "tracker", boom)
    rc, err = _run(kforge_home, capsys, "models", "list")
    assert rc == 2
    _one_line(err, message)


def test_bugs_keep_their_traceback(kforge_home: Path) -> None:
    assert environment_error(KeyError("x"), kforge_home) is None
    assert environment_error(ValueError("disk full of bugs"), kforge_home) is None


def test_a_full_disk_during_materialize_is_one_line(kforge_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """What a full tmpfs did to `kforge materialize` (raw sqlite 'disk I/O error' from Dagster's run storage)."""
    from kforge.dagster_io import materialize

    def full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise _sqlalchemy("disk I/O error")

    monkeypatch.setattr(materialize, "materialize_selection", full)
    monkeypatch.setattr("kforge.cli.main.shutil.disk_usage", lambda p: _usage(0))
    rc, err = _run(kforge_home, capsys, "materialize", "--select", "commits")
    assert rc == 2
    _one_line(err, "no space left", "then re-run")


def _usage(free: int) -> SimpleNamespace:
    return SimpleNamespace(total=100 * 2**20, used=100 * 2**20 - free, free=free)


# -- a damaged warehouse ---------------------------------------------------------------------------

def _damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    if how == "truncated":
        os.truncate(path, size // 3)
    elif how == "empty":
        os.truncate(path, 0)
    elif how == "garbage":
        path.write_bytes(os.urandom(8192))
    elif how == "header":
        with path.open("r+b") as f:
            f.write(b"\0" * 4096)
    elif how == "block":
        with path.open("r+b") as f:
            f.seek(size // 2)
            f.write(b"\x13" * (size // 4))


@pytest.fixture()
def big_home(kforge_home: Path) -> Path:
    wh = Warehouse(Paths.of(kforge_home).warehouse)
    n = 200_000
    wh.append("t", pl.DataFrame({"k": range(n), "v": [f"value-{i * 7919 % 100003}" for i in range(n)]}))
    return kforge_home


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage", "header", "block"])
def test_a_damaged_warehouse_is_one_line(big_home: Path, how: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _damage(Paths.of(big_home).warehouse, how)
    commands = [["query", "select sum(k), max(v) from t"]]
    if how != "block":  # a damaged data block shows only when that table's data is read
        commands += [["export", "standard", "--out", str(tmp_path / "x.jsonl")],
                     ["feedback", "add", "acceptance", "item_id=" + "a" * 40, "outcome=true", "repo=r", "target=commit"]]
    for args in commands:
        rc, err = _run(big_home, capsys, *args)
        assert rc == 2, args
        _one_line(err, "kforge doctor")
        assert "damaged" in err, err
