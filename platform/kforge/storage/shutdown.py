"""Release DuckDB's module-level type constants before the interpreter finalizes.

``duckdb`` keeps ~30 ``DuckDBPyType`` constants in module globals (``duckdb.sqltypes``,
``duckdb.value.constant``). When other native extensions (torch) are loaded, CPython can finalize
DuckDB's nanobind extension before those modules' dictionaries are cleared, and nanobind then dumps
a "leaked instances/types/functions" report to stderr at every exit. Dropping the constants in an
``atexit`` hook, which runs before finalization and after every connection of ours is closed
(connections are context-managed by :class:`~kforge.storage.Warehouse`), lets them be freed in order.
"""

import atexit
import gc
import sys

_registered = False


def release_duckdb_types() -> int:
    """Drop the references DuckDB's own modules hold to ``DuckDBPyType`` constants; returns how many."""
    n = 0
    for name, mod in list(sys.modules.items()):
        if not (name == "duckdb" or name.startswith(("duckdb.", "_duckdb"))):
            continue
        d = getattr(mod, "__dict__", None)
        if not isinstance(d, dict):
            continue
        for k, v in list(d.items()):
            if type(v).__name__ == "DuckDBPyType":
                d[k] = None
                n += 1
    gc.collect()
    return n


def register() -> None:
    """Register :func:`release_duckdb_types` to run at interpreter exit (once per process)."""
    global _registered
    if not _registered:
        atexit.register(release_duckdb_types)
        _registered = True
