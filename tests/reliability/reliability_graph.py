"""A reconstructable job for the multiprocess tests: two kernel_commits derived tables
(parallel warehouse writers) plus two probe assets tagged as warehouse writers that record
when they held their step, so the tag limit can be checked. The whole graph: bench/chaos.py."""

import time

import dagster as dg
from kforge.dagster_io import WarehouseResource
from kforge.scale.executor import WAREHOUSE_WRITER_TAGS

SELECTION = ["commit_tags", "commit_chains"]


def _probe(name: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, group_name="reliability_probes", op_tags=WAREHOUSE_WRITER_TAGS, deps=["commits"])
    def probe(warehouse: WarehouseResource) -> None:
        import polars as pl

        start = time.time()
        time.sleep(1.0)
        warehouse.get().append("probe_windows", pl.DataFrame({"asset": [name], "start": [start], "end": [time.time()]}))

    return probe


PROBES = [_probe(f"probe_{i}") for i in range(2)]


def build() -> dg.JobDefinition:
    from assets.kernel_commits import defs as kc
    assets = [a for a in kc.assets if isinstance(a, dg.AssetsDefinition)]
    # the default executor (multi_or_in_process), as for every kforge job: run config picks multiprocess
    job = dg.define_asset_job("scale_out_graph", selection=dg.AssetSelection.assets(*SELECTION, *PROBES))
    from jobs.definitions import resources

    defs = dg.Definitions(assets=[*assets, *PROBES], jobs=[job], resources=resources())
    return defs.resolve_job_def("scale_out_graph")
