"""Dagster's default run launcher plus a worker health check, so the daemon's run monitoring fails
runs whose kforge process died (kill -9, OOM) instead of leaving them STARTED (issue 18, part 5).

The instance config names it (:data:`kforge.dagster_io.instance.INSTANCE_SECTIONS`). Runs it cannot
judge (no kforge owner tags: launched by the UI or the daemon; or owned on another host) are
reported running, as the default launcher, which has no health check, would leave them.
"""

from dagster import DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun

from kforge.dagster_io.instance import dead_owner_message, owner_alive


class KforgeRunLauncher(DefaultRunLauncher):
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        if owner_alive(run.tags) is False:
            return CheckRunHealthResult(WorkerStatus.FAILED, dead_owner_message(run.tags))
        return CheckRunHealthResult(WorkerStatus.RUNNING)
