"""In-process materialization (what the UI does), used by ``kforge materialize`` and ``make demo``.

Partitioned assets (ingestion, one partition per repository) run once per partition first;
then everything else in the selection, in one run, in dependency order.
"""

import importlib
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


CODE_LOCATION = "jobs.definitions"  # the module workspace.yaml loads


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
                          partitions: list[str] | None = None) -> MaterializeSummary:
    """Materialize ``selection`` of ``defs`` (Dagster selection syntax, e.g. ``group:kernel_commits``;
    None = all) against the kforge home ``paths``, with the real data under ``data`` if given."""
    from kforge.dagster_io.resources import home_resources

    inst = kforge_instance(paths)
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
    resources = home_resources(str(paths.home), data or "")
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
