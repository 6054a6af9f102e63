"""Storage: the DuckDB warehouse with a polars I/O path."""

from kforge.storage.warehouse import Warehouse

__all__ = ["Warehouse"]
