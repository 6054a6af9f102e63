"""Jobs, schedule and sensor for the kernel_commits group.

* ``ingest_repository_job`` (partitioned by repository) and ``refresh_commit_tables`` (derived tables).
* ``repository_sensor``: adds a partition for every configured path not known yet and requests its
  first ingestion (run_key = repo name + head sha, so one run per new head).
* ``nightly_ingest``: 01:00 UTC, one ingestion run per repository partition (the derived tables
  follow in ``nightly_retrain``, see ``jobs/definitions.py``).
"""

import dagster as dg
from kforge.dagster_io import GitReposResource, WarehouseResource
from kforge.git import gitcmd

from assets.kernel_commits import repositories

ingest_repository_job = dg.define_asset_job(
    "ingest_repository_job", selection=dg.AssetSelection.assets("commits", "file_changes", "ingest_quarantine"),
    partitions_def=repositories, description="Incremental ingestion of one repository (partition).",
)
refresh_commit_tables = dg.define_asset_job(
    "refresh_commit_tables",
    selection=dg.AssetSelection.groups("kernel_commits") - dg.AssetSelection.assets("commits", "file_changes", "ingest_quarantine"),
    description="Rebuild tags, chains, expertise, diffs and training exports from the stored commits.",
)


@dg.schedule(cron_schedule="0 1 * * *", execution_timezone="UTC", job=ingest_repository_job,
             description="Nightly: re-ingest every repository (only new commits are read).")
def nightly_ingest(context: dg.ScheduleEvaluationContext):
    keys = context.instance.get_dynamic_partitions(repositories.name)
    if not keys:
        return dg.SkipReason("no repositories registered: run `kforge ingest PATH`")
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [dg.RunRequest(run_key=f"{k}:{day}", partition_key=k) for k in keys]


@dg.sensor(job=ingest_repository_job, minimum_interval_seconds=300,
           description="Watches the configured repository paths (resource git_repos.paths), else every clone "
                       "registered by `kforge ingest`; new repos or new heads trigger ingestion.")
def repository_sensor(context: dg.SensorEvaluationContext, git_repos: GitReposResource, warehouse: WarehouseResource):
    from kforge.errors import KforgeError
    from kforge.git.identity import claim, identify
    from kforge.git.ingest import registered_repositories

    paths = git_repos.existing()
    if not paths:   # nothing configured: watch the clones already registered, so a new head is ingested
        paths = sorted(p for p in registered_repositories(warehouse.get()).values() if p.exists())
    if not paths:
        return dg.SkipReason("no repository paths configured (resource git_repos.paths) and no clone registered: "
                             "run `kforge ingest PATH`")
    # cursor: <repository top level>=<head sha>;... (a repository is identified by its top level, not its basename)
    known = dict(item.rsplit("=", 1) for item in (context.cursor or "").split(";") if "=" in item)
    requests, adds, refused = [], [], []
    for path in paths:
        try:
            ident = identify(path)
        except KforgeError as exc:
            refused.append(f"{path}: {exc}")
            continue
        top = str(ident.toplevel)
        head = gitcmd.resolve_ref(ident.toplevel, "HEAD")
        if head is None or known.get(top) == head:
            continue
        try:
            name = claim(warehouse.get(), ident)  # the name its rows are stored under; refuses a taken name
        except KforgeError as exc:
            refused.append(f"{path}: {exc}")
            continue
        if not context.instance.has_dynamic_partition(repositories.name, name) and name not in adds:
            adds.append(name)
        requests.append(dg.RunRequest(run_key=f"{name}:{head}", partition_key=name))
        known[top] = head
    for why in refused:
        context.log.warning(f"repository not ingested: {why}")
    if not requests:
        return dg.SkipReason("no new repositories or heads" + (f"; refused: {'; '.join(refused)}" if refused else ""))
    return dg.SensorResult(
        run_requests=requests, cursor=";".join(f"{k}={v}" for k, v in sorted(known.items())),
        dynamic_partitions_requests=[repositories.build_add_request(adds)] if adds else [],
    )


defs = dg.Definitions(jobs=[ingest_repository_job, refresh_commit_tables],
                      schedules=[nightly_ingest], sensors=[repository_sensor])
