"""In-process materialization (what the UI does), used by ``kforge materialize`` and ``make demo``.

Partitioned assets (ingestion, one partition per repository) run once per partition first;
then everything else in the selection, in one run, in dependency order.
"""

import os
from dataclasses import dataclass

import dagster as dg

from kforge.config import Paths
from kforge.dagster_io.instance import instance as kforge_instance
from kforge.errors import InputError


@dataclass
class MaterializeSummary:
    runs: int
    succeeded: bool
    assets: list[str]
    failed_checks: list[str]


def _resources(paths: Paths, data: str | None) -> dict[str, dg.ConfigurableResource]:
    from kforge.dagster_io import DataResource, GitReposResource, MlflowResource, WarehouseResource

    return {"warehouse": WarehouseResource(home=str(paths.home)), "mlflow": MlflowResource(home=str(paths.home)),
            "git_repos": GitReposResource(), "data": DataResource(data_dir=data or "")}


def materialize_selection(paths: Paths, selection: str | None = None, data: str | None = None,
                          partitions: list[str] | None = None) -> MaterializeSummary:
    """Materialize ``selection`` (Dagster selection syntax, e.g. ``group:kernel_commits``; None = all)."""
    from jobs.definitions import build_definitions

    os.environ["KFORGE_HOME"] = str(paths.home)
    if data:
        os.environ["KFORGE_DATA"] = data
    inst = kforge_instance(paths)
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    sel = dg.AssetSelection.from_string(selection) if selection else dg.AssetSelection.all()
    keys = sel.resolve(graph)
    if not keys:
        raise InputError(f"--select {selection!r} selects no assets (groups: "
                         f"{', '.join(sorted({graph.get(k).group_name or '' for k in graph.get_all_asset_keys()}))})")
    if partitions:
        known = set(inst.get_dynamic_partitions("repositories"))
        unknown = sorted(set(partitions) - known)
        if unknown:
            raise InputError(f"unknown repository partition(s) {', '.join(unknown)}; known: {', '.join(sorted(known)) or 'none'}"
                             " (add one with `kforge ingest PATH`)")
    assets_defs = list(defs.assets or [])
    checks = list(defs.asset_checks or [])
    resources = _resources(paths, data)
    partitioned = {k for k in keys if graph.get(k).partitions_def is not None}
    rest = keys - partitioned
    runs, ok, failed_checks = 0, True, []
    if partitioned:
        keys_available = partitions or inst.get_dynamic_partitions("repositories")
        for pk in keys_available:
            res = dg.materialize(assets_defs + checks, selection=list(partitioned), partition_key=pk,
                                 instance=inst, resources=resources, raise_on_error=False)
            runs += 1
            ok &= res.success
    if rest and ok:
        res = dg.materialize(assets_defs + checks, selection=list(rest), instance=inst, resources=resources,
                             raise_on_error=False)
        runs += 1
        ok &= res.success
        for ev in res.get_asset_check_evaluations():
            if not ev.passed:
                failed_checks.append(f"{ev.asset_key.to_user_string()}:{ev.check_name}")
    return MaterializeSummary(runs, ok, sorted(k.to_user_string() for k in keys), failed_checks)
