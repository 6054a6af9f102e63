"""The only place in the library that imports Dagster: typed resources and small helpers."""

from kforge.dagster_io.resources import DataResource, GitReposResource, MlflowResource, WarehouseResource

__all__ = ["DataResource", "GitReposResource", "MlflowResource", "WarehouseResource"]
