"""The Definitions root that ``workspace.yaml`` loads.

Lazy: nothing here opens a database or reads the environment at import time. Every module in
``assets/`` and ``jobs/`` that exposes ``defs`` (a ``dagster.Definitions`` without resources) is
merged; resources are bound once, here.
"""

import importlib
import pkgutil

import dagster as dg
from kforge.dagster_io import DataResource, GitReposResource, MlflowResource, WarehouseResource

import assets as assets_pkg
import jobs as jobs_pkg

_SKIP = {"jobs.definitions"}


def domain_modules() -> list[str]:
    """Module names that contribute definitions, in a stable order."""
    names = []
    for pkg in (assets_pkg, jobs_pkg):
        for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
            if info.name not in _SKIP and not info.name.rsplit(".", 1)[-1].startswith("_"):
                names.append(info.name)
    return sorted(names)


def resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(),
        "mlflow": MlflowResource(),
        "git_repos": GitReposResource(),
        "data": DataResource(),
    }


def build_definitions() -> dg.Definitions:
    parts = []
    for name in domain_modules():
        module = importlib.import_module(name)
        if isinstance(getattr(module, "defs", None), dg.Definitions):
            parts.append(module.defs)
    return dg.Definitions.merge(*parts, dg.Definitions(resources=resources()))


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
