"""The Dagster instance under the kforge home (DAGSTER_HOME = KFORGE_HOME/dagster)."""

import os

from kforge.config import Paths

PARTITIONS = "repositories"


def instance(paths: Paths):  # noqa: ANN201 - dagster type imported lazily
    import dagster as dg

    paths.dagster_home.mkdir(parents=True, exist_ok=True)
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
