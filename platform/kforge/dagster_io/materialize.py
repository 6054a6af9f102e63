"""In-process materialization (what the UI does), used by ``kforge materialize`` and ``make demo``.

Partitioned assets (ingestion, one partition per repository) run once per partition first;
then everything else in the selection, in one run, in dependency order.
"""

import importlib
import warnings
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster import DagsterError

from kforge.config import Paths
from kforge.dagster_io.instance import instance as kforge_instance
from kforge.dagster_io.instance import mark_dead_runs_failed, owner_tags
from kforge.dagster_io.progress import (
    SummaryRow,
    failed_check_evaluations,
    logger_defs,
    run_config,
    summary_rows,
)
from kforge.errors import InputError


@dataclass
class MaterializeSummary:
    runs: int
    succeeded: bool
    assets: list[str]
    failed_checks: list[str]
    run_ids: list[str] = field(default_factory=list)
    models: list[SummaryRow] = field(default_factory=list)


CODE_LOCATION = "jobs.definitions"  # the module workspace.yaml loads
MATERIALIZE_JOB = "materialize_all"  # the job in-process materializations run as (listed in the UI)
INGEST_JOB = "ingest_repository_job"  # the per-repository ingestion job (partitioned assets)
TRIGGER_TAG = "kforge/trigger"


def load_code_location(module: str = CODE_LOCATION) -> dg.Definitions:
    """The ``Definitions`` of a code location module (its ``build_definitions()`` or ``defs``), the way
    ``dagster dev -w workspace.yaml`` finds them; the library itself never imports the app."""
    mod = importlib.import_module(module)
    build = getattr(mod, "build_definitions", None)
    defs = build() if callable(build) else getattr(mod, "defs", None)
    if callable(defs) and not isinstance(defs, dg.Definitions):
        defs = defs()
    if not isinstance(defs, dg.Definitions):
        raise InputError(f"module {module!r} has no Dagster Definitions (build_definitions() or defs)")
    return defs


def materialize_selection(defs: dg.Definitions, paths: Paths, selection: str | None = None, data: str | None = None,
                          partitions: list[str] | None = None, trigger: str = "cli",
                          champion_of: Any = None) -> MaterializeSummary:
    """Materialize ``selection`` of ``defs`` (Dagster selection syntax, e.g. ``group:kernel_commits``;
    None = all) against the kforge home ``paths``, with the real data under ``data`` if given.

    Runs appear in the UI as the named jobs ``ingest_repository`` (one run per repository partition)
    and ``materialize_all`` (everything else, in dependency order), tagged ``kforge/trigger=<trigger>``.
    Dagster's console logger stays at WARNING; each finished step prints one line with its duration.
    ``champion_of(model) -> version | None`` fills the summary's champion column."""
    from kforge.dagster_io.resources import home_resources

    inst = kforge_instance(paths)
    mark_dead_runs_failed(inst)     # runs of a kforge killed earlier (kill -9) stop showing as STARTED
    graph = defs.resolve_asset_graph()
    with warnings.catch_warnings():  # the selection syntax is the one the UI's search box takes; its
        warnings.simplefilter("ignore", dg.BetaWarning)  # group: parser still flags a beta parameter
        try:
            sel = dg.AssetSelection.from_string(selection) if selection else dg.AssetSelection.all()
            keys = sel.resolve(graph)
        except (DagsterError, ValueError) as exc:   # the selection itself, nothing else
            raise InputError(f"invalid --select {selection!r}: {exc}") from None
    if not keys:
        raise InputError(f"--select {selection!r} selects no assets (groups: "
                         f"{', '.join(sorted({graph.get(k).group_name or '' for k in graph.get_all_asset_keys()}))})")
    if partitions:
        known = set(inst.get_dynamic_partitions("repositories"))
        unknown = sorted(set(partitions) - known)
        if unknown:
            raise InputError(f"unknown repository partition(s) {', '.join(unknown)}; known: {', '.join(sorted(known)) or 'none'}"
                             " (add one with `kforge ingest PATH`)")
    partitioned = {k for k in keys if graph.get(k).partitions_def is not None}
    rest = keys - partitioned
    jobs = [dg.define_asset_job(INGEST_JOB, selection=dg.AssetSelection.assets(*partitioned))] if partitioned else []
    if rest:
        jobs.append(dg.define_asset_job(MATERIALIZE_JOB, selection=dg.AssetSelection.assets(*rest)))
    local = dg.Definitions(assets=list(defs.assets or []), asset_checks=list(defs.asset_checks or []), jobs=jobs,
                           resources=home_resources(str(paths.home), data or ""), loggers=logger_defs())
    tags = {TRIGGER_TAG: trigger, **owner_tags()}
    runs, ok, failed_checks, run_ids, models = 0, True, [], [], []
    if partitioned:
        job = local.resolve_job_def(INGEST_JOB)
        for pk in partitions or inst.get_dynamic_partitions("repositories"):
            res = job.execute_in_process(instance=inst, partition_key=pk, tags=tags, raise_on_error=False,
                                         run_config=run_config(_steps(job)))
            runs += 1
            ok &= res.success
            run_ids.append(res.run_id)
    if rest and ok:
        job = local.resolve_job_def(MATERIALIZE_JOB)
        res = job.execute_in_process(instance=inst, tags=tags, raise_on_error=False, run_config=run_config(_steps(job)))
        runs += 1
        ok &= res.success
        run_ids.append(res.run_id)
        failed_checks = [f"{ev.asset_key.to_user_string()}:{ev.check_name}" for ev in failed_check_evaluations(res)]
        models = summary_rows(res, champion_of)
    return MaterializeSummary(runs, ok, sorted(k.to_user_string() for k in keys), failed_checks, run_ids, models)


def _steps(job: dg.JobDefinition) -> int:
    """How many steps a run of ``job`` executes (a multi-asset is one step; so is a separate check)."""
    return len(job.graph.node_dict)
