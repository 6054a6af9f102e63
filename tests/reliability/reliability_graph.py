"""A reconstructable job for the multiprocess tests: two kernel_commits derived tables, two writer
probes (they append the window they held their step in) and two reader probes, so both the
parallelism cap and the warehouse's own write serialisation can be checked. The whole graph:
bench/chaos.py."""

import time

import dagster as dg
from kforge.dagster_io import WarehouseResource

SELECTION = ["commit_tags", "commit_chains"]


def _probe(name: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, group_name="reliability_probes", deps=["commits"])
    def probe(warehouse: WarehouseResource) -> None:
        import polars as pl

        start = time.time()
        time.sleep(1.0)
        warehouse.get().append("probe_windows", pl.DataFrame({"asset": [name], "start": [start], "end": [time.time()]}))

    return probe


def _reader(name: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, group_name="reliability_probes", deps=["commits"])
    def reader(warehouse: WarehouseResource) -> None:
        warehouse.get().count("commits")
        time.sleep(1.5)

    return reader


WRITER_PROBES = [_probe(f"probe_{i}") for i in range(2)]
READER_PROBES = [_reader(f"reader_{i}") for i in range(2)]
PROBES = [*WRITER_PROBES, *READER_PROBES]
WRITERS = [*SELECTION, "probe_0", "probe_1"]


def build() -> dg.JobDefinition:
    from assets.kernel_commits import defs as kc
    assets = [a for a in kc.assets if isinstance(a, dg.AssetsDefinition)]
    # the default executor (multi_or_in_process), as for every kforge job: run config picks multiprocess
    job = dg.define_asset_job("scale_out_graph", selection=dg.AssetSelection.assets(*SELECTION, *PROBES))
    from jobs.definitions import resources

    defs = dg.Definitions(assets=[*assets, *PROBES], jobs=[job], resources=resources())
    return defs.resolve_job_def("scale_out_graph")
