"""Runs that die are seen to die (issue 18, part 5): a `materialize` killed with -9 no longer stays
STARTED in the embedded Dagster instance. Its runs carry their owner (pid, host, start-time token);
the next `materialize` (and the daemon's run monitoring, through the run launcher's health check)
marks the runs of a dead owner failed, and leaves every other run alone."""

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
from dagster._core.test_utils import create_run_for_test
from dagster._daemon.monitoring.run_monitoring import monitor_started_run
from kforge.config import DAGSTER_YAML, Paths
from kforge.dagster_io.instance import (
    HOST_TAG,
    INSTANCE_SECTIONS,
    PID_TAG,
    STARTED_TAG,
    ensure_instance_config,
    instance,
    mark_dead_runs_failed,
    owner_tags,
)
from kforge.dagster_io.materialize import materialize_selection
from kforge.dagster_io.run_launcher import KforgeRunLauncher

from ._helpers import child_env

GONE = "is gone"

SLOW_MATERIALIZE = """
import sys, time
from pathlib import Path
import dagster as dg
from kforge.config import Paths
from kforge.dagster_io.materialize import materialize_selection

@dg.asset
def slow_asset() -> None:
    Path(sys.argv[2]).write_text("started")
    time.sleep(600)

materialize_selection(dg.Definitions(assets=[slow_asset]), Paths.of(sys.argv[1]))
"""


@dg.asset
def quick_asset() -> int:
    return 1


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _status(inst: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    run = inst.get_run_by_id(run_id)
    assert run is not None
    return run.status


def _failure_message(inst: dg.DagsterInstance, run_id: str) -> str:
    events = inst.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return events[-1].dagster_event.message if events else ""


def test_a_materialize_killed_with_9_is_marked_failed_by_the_next_one(kforge_home: Path, tmp_path: Path) -> None:
    paths = Paths.of(kforge_home)
    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_MATERIALIZE, str(kforge_home), str(marker)],
                            env=child_env(kforge_home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):                  # the child imports dagster, then starts the run
            if marker.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert marker.exists(), proc.stderr.read() if proc.poll() is not None else "the run never started"
        inst = instance(paths)
        (run,) = inst.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert (run.tags[PID_TAG], run.tags[HOST_TAG]) == (str(proc.pid), socket.gethostname())
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert _status(inst, run.run_id) == dg.DagsterRunStatus.STARTED      # what the UI showed forever before

    summary = materialize_selection(dg.Definitions(assets=[quick_asset]), paths)
    assert summary.succeeded
    assert _status(inst, run.run_id) == dg.DagsterRunStatus.FAILURE
    assert f"pid {proc.pid}" in _failure_message(inst, run.run_id) and GONE in _failure_message(inst, run.run_id)
    (new_id,) = summary.run_ids
    assert inst.get_run_by_id(new_id).tags[PID_TAG] == str(os.getpid())
    assert mark_dead_runs_failed(inst) == []                            # once only


def test_only_unfinished_runs_of_a_dead_owner_on_this_host_are_marked(kforge_home: Path) -> None:
    inst = instance(Paths.of(kforge_home))
    mine, s = owner_tags(), dg.DagsterRunStatus
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])      # exits, and waits unreaped for us
    cases = {   # case: (tags, status, marked failed)
        "dead pid, STARTED": ({**mine, PID_TAG: str(_dead_pid())}, s.STARTED, True),
        "dead pid, STARTING": ({**mine, PID_TAG: str(_dead_pid())}, s.STARTING, True),
        "dead pid, NOT_STARTED": ({**mine, PID_TAG: str(_dead_pid())}, s.NOT_STARTED, True),
        "dead pid, CANCELING": ({**mine, PID_TAG: str(_dead_pid())}, s.CANCELING, True),
        "pid reused by another process": ({**mine, STARTED_TAG: "another-boot:12345"}, s.STARTED, True),
        "zombie owner": ({**mine, PID_TAG: str(zombie.pid)}, s.STARTED, True),
        "live owner": (mine, s.STARTED, False),
        "dead pid on another host": ({**mine, PID_TAG: str(_dead_pid()), HOST_TAG: "other-host.example"}, s.STARTED, False),
        "no owner tags (launched by the UI)": ({}, s.STARTED, False),
        "dead pid, finished: SUCCESS": ({**mine, PID_TAG: str(_dead_pid())}, s.SUCCESS, False),
        "dead pid, finished: CANCELED": ({**mine, PID_TAG: str(_dead_pid())}, s.CANCELED, False),
    }
    try:
        for _ in range(500):
            if Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.01)
        runs = {case: create_run_for_test(inst, job_name="some_job", status=status, tags=tags).run_id
                for case, (tags, status, _) in cases.items()}
        marked = mark_dead_runs_failed(inst)
    finally:
        zombie.wait()
    assert sorted(marked) == sorted(runs[c] for c, (_, _, m) in cases.items() if m)
    assert {c: _status(inst, runs[c]) for c in cases} == {c: s.FAILURE if m else st for c, (_, st, m) in cases.items()}
    assert all((GONE in _failure_message(inst, runs[c])) is m for c, (_, _, m) in cases.items())


def test_the_daemon_run_monitoring_fails_a_dead_owners_run_through_the_launcher(kforge_home: Path) -> None:
    inst = instance(Paths.of(kforge_home))
    assert inst.run_monitoring_enabled and isinstance(inst.run_launcher, KforgeRunLauncher)
    dead = create_run_for_test(inst, job_name="j", status=dg.DagsterRunStatus.STARTED,
                               tags={**owner_tags(), PID_TAG: str(_dead_pid())})
    alive = create_run_for_test(inst, job_name="j", status=dg.DagsterRunStatus.STARTED, tags=owner_tags())
    ui = create_run_for_test(inst, job_name="j", status=dg.DagsterRunStatus.STARTED)
    for run in (dead, alive, ui):
        (record,) = inst.get_run_records(filters=dg.RunsFilter(run_ids=[run.run_id]))
        monitor_started_run(inst, None, record, logging.getLogger("test"))     # what the daemon does each poll
    assert [_status(inst, r.run_id) for r in (dead, alive, ui)] == [
        dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTED]
    assert GONE in _failure_message(inst, dead.run_id)


def test_an_older_homes_instance_config_gains_run_monitoring_and_keeps_what_it_had(tmp_path: Path) -> None:
    paths = Paths.of(tmp_path / "old-home")
    paths.dagster_home.mkdir(parents=True)
    cfg = paths.dagster_home / "dagster.yaml"
    before = "telemetry:\n  enabled: false\nrun_queue:\n  max_concurrent_runs: 2\n"   # a home made before issue 18
    assert not any(body in before for body in INSTANCE_SECTIONS.values())
    cfg.write_text(before)
    ensure_instance_config(paths)
    text = cfg.read_text()
    assert text.startswith(before) and all(body in text for body in INSTANCE_SECTIONS.values())
    assert text == before + "".join(INSTANCE_SECTIONS.values()) == DAGSTER_YAML   # now as a new home's
    ensure_instance_config(paths)
    assert cfg.read_text() == text                                        # idempotent
    inst = dg.DagsterInstance.from_config(str(paths.dagster_home))       # the schema accepts it
    assert inst.run_monitoring_enabled and inst.run_monitoring_max_resume_run_attempts == 0

    own = "telemetry:\n  enabled: false\nrun_launcher:\n  module: dagster._core.launcher\n  class: DefaultRunLauncher\n"
    cfg.write_text(own)                                                   # a launcher of its own is kept
    ensure_instance_config(paths)
    assert cfg.read_text() == own + INSTANCE_SECTIONS["run_monitoring"]
