"""The Dagster instance under the kforge home (DAGSTER_HOME = KFORGE_HOME/dagster).

Runs that die are seen to die (issue 18, part 5). Every run kforge executes in-process carries its
owner (:func:`owner_tags`: pid, host and a start-time token, so a reused pid is not mistaken for
the owner). :func:`mark_dead_runs_failed` reports the unfinished runs of owners that are gone as
failed; ``kforge materialize`` calls it first. While ``dagster dev`` runs, its daemon does the same
every 30 s: the instance config gets ``run_monitoring`` and a run launcher
(:class:`kforge.dagster_io.run_launcher.KforgeRunLauncher`) that answers the daemon's health check
with the same test, :func:`owner_alive`.
"""

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kforge.config import DAGSTER_YAML, INSTANCE_SECTIONS, Paths
from kforge.errors import StorageError

PARTITIONS = "repositories"
PID_TAG, HOST_TAG, STARTED_TAG = "kforge/pid", "kforge/host", "kforge/started"

def ensure_instance_config(paths: Paths) -> Path:
    """Write the home's dagster.yaml, or add the sections of :data:`INSTANCE_SECTIONS` it lacks
    (homes made before them), atomically; sections already there are left as they are."""
    cfg = paths.dagster_home / "dagster.yaml"
    try:
        paths.dagster_home.mkdir(parents=True, exist_ok=True)
        text = cfg.read_text() if cfg.exists() else DAGSTER_YAML
        missing = [body for key, body in INSTANCE_SECTIONS.items() if not re.search(rf"^{key}:", text, re.M)]
        if missing or not cfg.exists():
            tmp = cfg.with_name(f".dagster.yaml.{os.getpid()}.tmp")
            tmp.write_text(text.rstrip("\n") + "\n" + "".join(missing))
            os.replace(tmp, cfg)
    except OSError as exc:
        raise StorageError(f"cannot write the Dagster instance config {cfg}: {exc.strerror or exc}. "
                           "Pass --home DIR (or set KFORGE_HOME) to a writable directory, or fix the permissions") from exc
    return cfg


def _process_token(pid: int) -> str:
    """Names one process for the machine's uptime: boot id + start time in clock ticks ('' off Linux)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return f"{boot}:{fields[19]}" if fields[0] not in ("Z", "X") else "exited"


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of the runs it executes."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), STARTED_TAG: _process_token(os.getpid())}


def owner_alive(tags: Mapping[str, str]) -> bool | None:
    """Whether the process named by a run's owner tags still runs: None when it cannot be told (no
    owner tags, or another host), False when the pid is gone, a zombie, or now a different process."""
    pid, host = tags.get(PID_TAG, ""), tags.get(HOST_TAG)
    if not pid.isdigit() or host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                            # alive, another user's
    token, now = tags.get(STARTED_TAG, ""), _process_token(int(pid))
    return now != "exited" and not (token and now and now != token)


def dead_owner_message(tags: Mapping[str, str]) -> str:
    return (f"kforge: the process that ran this run (pid {tags.get(PID_TAG)} on {tags.get(HOST_TAG)}) is gone: it was "
            "killed or crashed before the run finished, so the run is marked failed. Re-run it (kforge materialize).")


def mark_dead_runs_failed(inst: Any) -> list[str]:  # noqa: ANN401 - dagster type imported lazily
    """Report as failed every unfinished run on this host whose owner process is gone; the ids of
    those runs. Runs without owner tags (launched by the UI or the daemon) and runs owned by another
    host or a live process are left alone."""
    import dagster as dg

    unfinished = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
                  dg.DagsterRunStatus.CANCELING]
    failed = []
    for run in inst.get_runs(filters=dg.RunsFilter(statuses=unfinished, tags={HOST_TAG: socket.gethostname()})):
        if owner_alive(run.tags) is not False:
            continue
        current = inst.get_run_by_id(run.run_id)        # another kforge may have just done it
        if current is not None and current.status in unfinished:
            inst.report_run_failed(current, dead_owner_message(run.tags))
            failed.append(run.run_id)
    return failed


def instance(paths: Paths):  # noqa: ANN201 - dagster type imported lazily
    import dagster as dg

    ensure_instance_config(paths)
    if os.environ.get("DAGSTER_HOME") != str(paths.dagster_home):
        return dg.DagsterInstance.from_config(str(paths.dagster_home))
    return dg.DagsterInstance.get()


def add_repository_partition(paths: Paths, name: str) -> None:
    inst = instance(paths)
    if not inst.has_dynamic_partition(PARTITIONS, name):
        inst.add_dynamic_partitions(PARTITIONS, [name])


def report_ingestion(paths: Paths, name: str, metadata: dict[str, object]) -> None:
    """Record a CLI ingestion in Dagster as materializations of the repository's partition, so the
    UI shows what `kforge ingest` stored (same tables the assets write)."""
    import dagster as dg

    inst = instance(paths)
    clean = {k: v for k, v in metadata.items() if isinstance(v, (int, float, str, bool))}
    for key in ("commits", "file_changes", "ingest_quarantine"):
        inst.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=key, partition=name, metadata={**clean, "source": "kforge ingest (CLI)"}))
