"""Run config for Dagster's multiprocess executor with capped concurrency (no Dagster import).

DuckDB takes one writer: the warehouse's file lock already serialises the writes themselves,
so steps can run in parallel safely. The caps keep a machine from running more steps than it
has cores, and ``tag_concurrency_limits`` keep steps tagged as warehouse writers
(``op_tags=WAREHOUSE_WRITER_TAGS``) from queueing on the lock while holding a process.

Example (a job launched from the UI launchpad or ``dagster job launch -c``)::

    execution:
      config:
        multiprocess:
          max_concurrent: 2
          tag_concurrency_limits: [{key: kforge/warehouse, value: write, limit: 1}]
"""

from typing import Any

from kforge.errors import InputError

WAREHOUSE_TAG = "kforge/warehouse"
WAREHOUSE_WRITER_TAGS = {WAREHOUSE_TAG: "write"}


def multiprocess_run_config(max_concurrent: int = 2, warehouse_writers: int = 1) -> dict[str, Any]:
    """``run_config`` selecting the multiprocess executor with both caps."""
    if not 1 <= max_concurrent <= 256:
        raise InputError(f"max_concurrent must be 1..256, got {max_concurrent}")
    if not 1 <= warehouse_writers <= max_concurrent:
        raise InputError(f"warehouse_writers must be 1..max_concurrent ({max_concurrent}), got {warehouse_writers}")
    return {"execution": {"config": {"multiprocess": {
        "max_concurrent": max_concurrent,
        "tag_concurrency_limits": [{"key": WAREHOUSE_TAG, "value": "write", "limit": warehouse_writers}],
    }}}}
