"""The Definitions root that ``workspace.yaml`` loads, and the policy applied once for all families.

Lazy: nothing here opens a database or reads the environment at import time. Every module in
``assets/`` and ``jobs/`` that exposes ``defs`` (a ``dagster.Definitions`` without resources) is
merged; resources, the executor and the nightly schedule are declared once, here.

Policy:
* **Warehouse writers.** DuckDB takes one writer; the warehouse's file lock serialises every write
  (``kforge.storage.Warehouse.writer``). The executor runs at most ``MAX_CONCURRENT_STEPS`` steps of
  a run at once, so a run never queues more steps on that lock than the machine has cores.
* **Families.** Every retraining job carries ``kforge/family=<family>`` (the nightly job ``all``);
  ``deploy/dagster.yaml`` lets one such run train at a time, so the nightly run and a family's feedback
  run never train the same family at once.
* **Nightly.** ``nightly_ingest`` (01:00 UTC) reads new commits of every registered repository;
  ``nightly_retrain`` (02:00 UTC) runs one job over every other asset in dependency order: commit
  tables, features, and every family's models through the release path.
"""

import importlib
import pkgutil

import dagster as dg
from kforge.dagster_io.materialize import MATERIALIZE_JOB
from kforge.dagster_io.resources import home_resources

import assets as assets_pkg
import jobs as jobs_pkg

_SKIP = {"jobs.definitions"}
FAMILY_TAG = "kforge/family"
MAX_CONCURRENT_STEPS = 2
INGESTION_ASSETS = ("commits", "file_changes", "ingest_quarantine")


def retrain_job(family: str, selection: dg.AssetSelection, description: str) -> "dg.JobDefinition":
    """``retrain_<family>``: the job a family's feedback sensor requests (tagged with its family)."""
    return dg.define_asset_job(f"retrain_{family}", selection=selection, description=description,
                               tags={FAMILY_TAG: family})


AFTER_INGESTION = dg.AssetSelection.all() - dg.AssetSelection.assets(*INGESTION_ASSETS)

nightly_refresh_and_retrain = dg.define_asset_job(
    "nightly_refresh_and_retrain", selection=AFTER_INGESTION,
    description="Rebuild the commit tables and features, then retrain and gate every model family.",
    tags={FAMILY_TAG: "all"})
materialize_all = dg.define_asset_job(
    MATERIALIZE_JOB, selection=AFTER_INGESTION,
    description="Everything after ingestion, in dependency order: what `kforge materialize` and `make demo` run "
                "(their runs carry kforge/trigger=cli or demo).")
nightly_retrain = dg.ScheduleDefinition(
    name="nightly_retrain", cron_schedule="0 2 * * *", execution_timezone="UTC", target=nightly_refresh_and_retrain,
    description="Nightly 02:00 UTC, after nightly_ingest: refresh every derived table and retrain every family "
                "(a family whose data, code and params did not change registers nothing).")


def domain_modules() -> list[str]:
    """Module names that contribute definitions, in a stable order."""
    names = []
    for pkg in (assets_pkg, jobs_pkg):
        for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
            if info.name not in _SKIP and not info.name.rsplit(".", 1)[-1].startswith("_"):
                names.append(info.name)
    return sorted(names)


def resources() -> dict[str, dg.ConfigurableResource]:
    return home_resources()


def build_definitions() -> dg.Definitions:
    parts = []
    for name in domain_modules():
        module = importlib.import_module(name)
        if isinstance(getattr(module, "defs", None), dg.Definitions):
            parts.append(module.defs)
    root = dg.Definitions(resources=resources(), jobs=[nightly_refresh_and_retrain, materialize_all], schedules=[nightly_retrain],
                          executor=dg.multiprocess_executor.configured({"max_concurrent": MAX_CONCURRENT_STEPS}))
    return dg.Definitions.merge(*parts, root)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
