"""kforge: a Dagster-orchestrated ML platform for software-engineering intelligence.

The package is pure library code: nothing here imports Dagster except ``kforge.dagster_io``.
"""

__version__ = "0.1.0"
