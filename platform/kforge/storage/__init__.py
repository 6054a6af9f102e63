"""Storage: the DuckDB warehouse with a polars I/O path."""

from kforge.storage import shutdown
from kforge.storage.warehouse import Warehouse

shutdown.register()

__all__ = ["Warehouse"]
