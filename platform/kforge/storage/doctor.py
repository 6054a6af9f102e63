"""Check a kforge home, and copy it consistently (``kforge doctor [--backup DIR]``).

:func:`check_home` only reads: the warehouse (opens, every table reads in full so DuckDB verifies
each block's checksum), the MLflow store (sqlite ``quick_check``, runs left RUNNING by a process
that is gone, registered versions whose artifacts are missing, aliases pointing at no version)
and the Dagster run storage (runs left STARTED by a dead process). Each finding says how to repair it.

:func:`backup_home` copies the home into a new directory: the warehouse under its shared lock (no
writer can be mid-transaction), every sqlite file through sqlite's online backup API (consistent
even while MLflow or Dagster write), the artifacts as files; then it opens the copies to prove them.

Example::

    report = check_home(Paths.of("~/.kforge"))
    print(report.healthy, [f.what for f in report.problems])
    backup_home(Paths.of("~/.kforge"), Path("/backups/kforge-2024-06-01"))
"""

import contextlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb

from kforge.config import Paths
from kforge.errors import InputError, StorageError
from kforge.storage.lock import file_lock

UNFINISHED_DAGSTER = ("NOT_STARTED", "STARTING", "STARTED", "CANCELING")
FINISHED_DAGSTER = ("SUCCESS", "FAILURE", "CANCELED")


@dataclass(frozen=True)
class Finding:
    """One thing the doctor looked at: what it found and, for a problem, how to repair it."""

    area: str
    ok: bool
    what: str
    repair: str = ""


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    @property
    def healthy(self) -> bool:
        return not self.problems

    def add(self, area: str, ok: bool, what: str, repair: str = "") -> None:
        self.findings.append(Finding(area, ok, what, repair))


# -- reading without writing ------------------------------------------------------------------------

@contextlib.contextmanager
def _shared_lock(paths: Paths) -> Iterator[str]:
    """The warehouse's shared lock, or none on a read-only home (no writer can run there either);
    yields a note saying which."""
    lock = paths.warehouse.with_name(paths.warehouse.name + ".lock")
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(lock, exclusive=False, timeout_s=60.0))
            note = ""
        except OSError:
            note = "read without the lock (the home is not writable, so no kforge process can write it)"
        yield note


def _sqlite_ro(db: Path) -> sqlite3.Connection:
    """A read-only connection that never creates, migrates or journals anything. On a read-only
    directory a WAL-mode database cannot make its -shm file: it is then opened as immutable
    (nothing can write it there either)."""
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        con.execute("select count(*) from sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:
        con.close()
        if os.access(db.parent, os.W_OK):
            raise
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro&immutable=1", uri=True, timeout=30)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def check_warehouse(paths: Paths, report: Report) -> None:
    wh = paths.warehouse
    if not wh.exists():
        report.add("warehouse", True, f"no warehouse yet at {wh} (created by the first ingest)")
        return
    restore = ("restore warehouse.duckdb from a backup (`kforge doctor --backup DIR` makes one), or move it aside "
               "and rebuild: `kforge ingest REPO` then `kforge materialize`")
    with _shared_lock(paths) as note:
        try:
            con = duckdb.connect(str(wh), read_only=True)
        except duckdb.Error as exc:
            report.add("warehouse", False, f"{wh} does not open: {_first_line(exc)}", restore)
            return
        try:
            tables = [r[0] for r in con.execute(
                "select table_name from duckdb_tables() where database_name = current_database() order by 1").fetchall()]
            size = con.execute("pragma database_size").fetchall()[0]
            bad = []
            for t in tables:
                quoted = '"' + t.replace('"', '""') + '"'
                try:  # hashing whole rows reads every column, so every block's checksum is verified
                    con.execute(f"select count(*), bit_xor(hash({quoted})) from {quoted}").fetchall()
                except duckdb.Error as exc:
                    bad.append(f"{t} ({_first_line(exc)})")
                    con.close()  # a failed read may invalidate the connection: the next table gets a fresh one
                    con = duckdb.connect(str(wh), read_only=True)
        except duckdb.Error as exc:
            report.add("warehouse", False, f"{wh} opens but its catalog does not read: {_first_line(exc)}", restore)
            return
        finally:
            con.close()
    extra = f"; {note}" if note else ""
    if bad:
        report.add("warehouse", False, f"{len(bad)} of {len(tables)} tables do not read in full: {'; '.join(bad)}",
                   f"{restore}; the other tables still read, so `kforge query` can save what they hold first")
    else:
        report.add("warehouse", True, f"{wh}: {len(tables)} tables read in full, {size[1]} in {size[3]} blocks{extra}")
    wal = wh.with_name(wh.name + ".wal")
    if wal.exists():
        report.add("warehouse", True, f"{wal.name} is present ({wal.stat().st_size} bytes): the last writer stopped "
                   "before a checkpoint; DuckDB replays it on the next write")


def _home_processes(home: Path) -> list[int]:
    """Live processes (other than this one) started for this home: ``--home`` on their command line
    or KFORGE_HOME / DAGSTER_HOME in their environment (Linux /proc; [] elsewhere)."""
    home = home.resolve()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            env = dict(kv.split(b"=", 1) for kv in (entry / "environ").read_bytes().split(b"\0") if b"=" in kv)
            cwd = Path(os.readlink(entry / "cwd"))
        except (OSError, ValueError):
            continue
        if not any(w in b" ".join(argv) for w in (b"kforge", b"dagster", b"python", b"mlflow")):
            continue
        homes = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == b"--home"]
        homes += [a[len(b"--home="):] for a in argv if a.startswith(b"--home=")]
        homes += [env[k] for k in (b"KFORGE_HOME",) if k in env]
        homes += [os.fsencode(Path(os.fsdecode(env[b"DAGSTER_HOME"])).parent)] if b"DAGSTER_HOME" in env else []
        if any((cwd / os.fsdecode(h)).resolve() == home for h in homes if h):
            found.append(pid)
    return found


def _owner_alive(tags: dict[str, str]) -> bool | None:
    """Whether a Dagster run's owner process lives (None: cannot tell), by the owner tags kforge stamps."""
    try:
        from kforge.dagster_io.instance import owner_alive
    except ImportError:  # pragma: no cover - older instance module without owner tags
        return None
    return owner_alive(tags)


def _boot_time() -> float:
    with contextlib.suppress(OSError, ValueError, StopIteration):
        line = next(x for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime "))
        return float(line.split()[1])
    return 0.0


def check_dagster(paths: Paths, report: Report, live: list[int]) -> dict[str, str]:
    """Report Dagster runs left unfinished by a dead process (read-only); run id -> status."""
    db = paths.dagster_home / "history" / "runs.db"
    if not db.exists():
        report.add("dagster", True, "no Dagster runs recorded in this home")
        return {}
    try:
        con = _sqlite_ro(db)
        try:
            integrity = con.execute("pragma quick_check").fetchone()[0]
            runs = con.execute("select run_id, status, pipeline_name, start_time from runs").fetchall()
            tags: dict[str, dict[str, str]] = {}
            for run_id, key, value in con.execute("select run_id, key, value from run_tags"):
                tags.setdefault(run_id, {})[key] = value
        finally:
            con.close()
    except sqlite3.Error as exc:
        report.add("dagster", False, f"{db} does not read: {_first_line(exc)}",
                   f"move {paths.dagster_home} aside (run history only: the warehouse and models are unaffected); "
                   "kforge creates a fresh one")
        return {}
    if integrity != "ok":
        report.add("dagster", False, f"{db} fails sqlite's quick_check: {integrity}",
                   f"restore {paths.dagster_home} from a backup, or move it aside (run history only)")
    status = {r[0]: r[1] for r in runs}
    unfinished = [r for r in runs if r[1] in UNFINISHED_DAGSTER]
    dead, unknown = [], []
    for run_id, st, job, _start in unfinished:
        alive = _owner_alive(tags.get(run_id, {}))
        if alive is False or (alive is None and not live):
            dead.append(f"{run_id[:8]} ({job}, {st})")
        elif alive is None:
            unknown.append(run_id[:8])
    if dead:
        report.add("dagster", False, f"{len(dead)} Dagster run(s) left unfinished by a process that is gone: "
                   f"{', '.join(dead)}",
                   "kforge marks such runs failed when it next materializes (`kforge materialize`), the daemon of "
                   "`make dev` does so within a minute; or terminate them in the Dagster UI (Runs page)")
    if unknown:
        report.add("dagster", True, f"{len(unknown)} unfinished Dagster run(s) may still be running "
                   f"(processes using this home: {', '.join(map(str, live))}): {', '.join(unknown)}")
    if not dead and not unknown:
        report.add("dagster", True, f"{len(runs)} Dagster runs recorded, none left unfinished")
    return status


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and uri.startswith("/"):
        return Path(uri)
    return None


def _has_files(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(p.is_file() for p in path.rglob("*")))


def check_mlflow(paths: Paths, report: Report, live: list[int], dagster_status: dict[str, str]) -> None:
    db = paths.mlflow_db
    if not db.exists():
        report.add("mlflow", True, "no MLflow store yet (created by the first training run)")
        return
    try:
        con = _sqlite_ro(db)
    except sqlite3.Error as exc:
        report.add("mlflow", False, f"{db} does not open: {_first_line(exc)}", "restore mlflow.db from a backup")
        return
    try:
        integrity = con.execute("pragma quick_check").fetchone()[0]
        if integrity != "ok":
            report.add("mlflow", False, f"{db} fails sqlite's quick_check: {integrity}",
                       "restore mlflow.db and mlartifacts/ from a backup (`kforge doctor --backup DIR` makes one)")
        _check_runs(con, report, live, dagster_status, paths)
        _check_registry(con, report)
    except sqlite3.Error as exc:
        report.add("mlflow", False, f"{db} does not read: {_first_line(exc)}",
                   "restore mlflow.db and mlartifacts/ from a backup (`kforge doctor --backup DIR` makes one)")
    finally:
        con.close()


def _check_runs(con: sqlite3.Connection, report: Report, live: list[int], dagster_status: dict[str, str],
                paths: Paths) -> None:
    running = con.execute("select run_uuid, name, start_time from runs where status = 'RUNNING' "
                          "and lifecycle_stage = 'active'").fetchall()
    boot = _boot_time()
    orphans, maybe = [], []
    for run_uuid, name, start_ms in running:
        row = con.execute("select value from tags where run_uuid = ? and key = 'dagster_run_id'", [run_uuid]).fetchone()
        dagster_run = row[0] if row else ""
        if start_ms and boot and start_ms / 1000 < boot:
            orphans.append(f"{run_uuid} ({name}, started before this machine booted)")
        elif dagster_status.get(dagster_run) in FINISHED_DAGSTER:
            orphans.append(f"{run_uuid} ({name}, its Dagster run {dagster_run[:8]} is {dagster_status[dagster_run]})")
        elif not live:
            orphans.append(f"{run_uuid} ({name}, no process is using this home)")
        else:
            maybe.append(run_uuid)
    if orphans:
        ids = " ".join(o.split()[0] for o in orphans)
        report.add("mlflow", False, f"{len(orphans)} MLflow run(s) left RUNNING by a process that is gone: "
                   f"{'; '.join(orphans)}",
                   "mark them failed (nothing else changes): .venv/bin/python -c \"import sys; from mlflow import "
                   f"MlflowClient; c = MlflowClient('{paths.tracking_uri()}'); "
                   "[c.set_terminated(r, 'FAILED') for r in sys.argv[1:]]\" " + ids)
    if maybe:
        report.add("mlflow", True, f"{len(maybe)} MLflow run(s) RUNNING while processes use this home "
                   f"({', '.join(map(str, live))}): {', '.join(maybe)}")
    if not running:
        report.add("mlflow", True, "no MLflow run left RUNNING")


def _check_registry(con: sqlite3.Connection, report: Report) -> None:
    versions = con.execute("select name, version, source, storage_location, status from model_versions").fetchall()
    logged = dict(con.execute("select model_id, artifact_location from logged_models").fetchall()) if con.execute(
        "select count(*) from sqlite_master where name = 'logged_models'").fetchone()[0] else {}
    missing, unchecked, not_ready = [], 0, []
    for name, version, source, location, status in versions:
        uri = location or ""
        if not uri and source and source.startswith("models:/"):
            uri = logged.get(source.removeprefix("models:/").split("/")[0], "")
        path = _local_path(uri or source or "")
        if status != "READY":
            not_ready.append(f"{name} v{version} ({status})")
        if path is None:
            unchecked += 1
        elif not _has_files(path):
            missing.append(f"{name} v{version} ({path})")
    aliases = con.execute("select a.name, a.alias, a.version from registered_model_aliases a left join model_versions v "
                          "on v.name = a.name and v.version = a.version where v.version is null").fetchall()
    if missing:
        report.add("registry", False, f"{len(missing)} registered version(s) whose artifacts are missing: "
                   f"{'; '.join(missing)}",
                   "restore mlartifacts/ from a backup; or, if a missing one holds an alias, point the alias at a "
                   "good version (`kforge models promote NAME VERSION`) or retrain the family")
    if not_ready:
        report.add("registry", False, f"{len(not_ready)} registered version(s) not READY: {'; '.join(not_ready)}",
                   "promote a READY version (`kforge models promote NAME VERSION`) or retrain the family")
    if aliases:
        report.add("registry", False, "alias(es) pointing at no version: "
                   + "; ".join(f"{n}@{a} -> v{v}" for n, a, v in aliases),
                   "point each at an existing version: `kforge models promote NAME VERSION` (champion) or retrain")
    if not (missing or not_ready or aliases):
        note = f" ({unchecked} stored remotely, not checked)" if unchecked else ""
        report.add("registry", True, f"{len(versions)} registered version(s), artifacts present, aliases valid{note}")


def check_home(paths: Paths, live: Callable[[Path], list[int]] = _home_processes) -> Report:
    """Everything :mod:`kforge.storage.doctor` checks, read-only. ``live`` lists the processes using
    the home (for orphaned runs); tests pass their own."""
    report = Report()
    if not paths.home.is_dir():
        report.add("home", False, f"no kforge home at {paths.home}",
                   "pass --home DIR (or set KFORGE_HOME) to an existing home, or create one with `kforge ingest`")
        return report
    users = live(paths.home)
    check_warehouse(paths, report)
    dagster_status = check_dagster(paths, report, users)
    check_mlflow(paths, report, users, dagster_status)
    return report


# -- backup -----------------------------------------------------------------------------------------

def _sqlite_copy(src: Path, dst: Path) -> None:
    source = _sqlite_ro(src)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _copy_tree(src: Path, dst: Path) -> int:
    """Copy a directory; sqlite files through the backup API (their -wal/-shm sidecars are folded in)."""
    n = 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".db":
            _sqlite_copy(path, dst / rel)
        else:
            shutil.copy2(path, dst / rel)
        n += 1
    return n


def backup_destination(paths: Paths, dest: Path) -> Path:
    """``dest`` resolved, or an InputError when a backup cannot go there (checked before any work)."""
    dest = dest.expanduser().resolve()
    if not paths.home.is_dir():
        raise InputError(f"no kforge home at {paths.home} to back up")
    if dest == paths.home or paths.home in dest.parents:
        raise InputError(f"--backup {dest} is inside the home {paths.home}: choose a directory elsewhere")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError(f"--backup {dest} exists and is not an empty directory: choose a new directory")
    return dest


def backup_home(paths: Paths, dest: Path) -> dict[str, object]:
    """Copy the home into ``dest`` (new or empty) consistently and verify the copies; the manifest
    (also written to ``dest/kforge-backup.json``). Exports and the model cache are not copied:
    both are rebuilt from what is."""
    dest = backup_destination(paths, dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        copied: dict[str, object] = {"home": str(paths.home), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if paths.warehouse.exists():
            with _shared_lock(paths):
                shutil.copy2(paths.warehouse, dest / paths.warehouse.name)
                wal = paths.warehouse.with_name(paths.warehouse.name + ".wal")
                if wal.exists():
                    shutil.copy2(wal, dest / wal.name)
            con = duckdb.connect(str(dest / paths.warehouse.name), read_only=True)
            try:
                copied["warehouse_tables"] = {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for (t,) in
                                              con.execute("select table_name from duckdb_tables() order by 1").fetchall()}
            finally:
                con.close()
        if paths.mlflow_db.exists():
            _sqlite_copy(paths.mlflow_db, dest / paths.mlflow_db.name)
            con2 = _sqlite_ro(dest / paths.mlflow_db.name)
            try:
                copied["mlflow_check"] = con2.execute("pragma quick_check").fetchone()[0]
            finally:
                con2.close()
            if copied["mlflow_check"] != "ok":   # a copy that fails its check is no backup: never say it is
                raise StorageError(f"the copied {paths.mlflow_db.name} fails sqlite's quick_check "
                                   f"({copied['mlflow_check']}); run `kforge doctor` on the home, remove {dest} and retry")
        for sub in (paths.mlartifacts, paths.dagster_home):
            if sub.is_dir():
                copied[f"{sub.name}_files"] = _copy_tree(sub, dest / sub.name)
    except (OSError, sqlite3.Error, duckdb.Error) as exc:
        raise StorageError(f"the backup into {dest} failed ({_first_line(exc)}); the home was not changed: free "
                           "space or choose another directory, remove the partial copy, and retry") from exc
    copied["restore"] = (f"stop kforge, then copy {dest}/* into {paths.home} (artifact paths in mlflow.db name that "
                         "directory); check it with `kforge doctor`")
    (dest / "kforge-backup.json").write_text(json.dumps(copied, indent=1, default=str) + "\n")
    return copied
