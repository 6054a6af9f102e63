"""The Dagster instance under the kforge home (DAGSTER_HOME = KFORGE_HOME/dagster)."""

import os

from kforge.config import Paths

PARTITIONS = "repositories"


def instance(paths: Paths):  # noqa: ANN201 - dagster type imported lazily
    import dagster as dg

    os.environ.setdefault("DAGSTER_HOME", str(paths.dagster_home))
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    if os.environ["DAGSTER_HOME"] != str(paths.dagster_home):
        return dg.DagsterInstance.from_config(str(paths.dagster_home))
    return dg.DagsterInstance.get()


def add_repository_partition(paths: Paths, name: str) -> None:
    inst = instance(paths)
    if not inst.has_dynamic_partition(PARTITIONS, name):
        inst.add_dynamic_partitions(PARTITIONS, [name])
