"""Point-in-time patch features (JIT defect metrics, kernel specifics, text) per commit.

Every feature of a commit uses only what was visible when that commit entered the tree: the
commit itself and the history with a strictly earlier ``committer_ts``. All computations are
polars group/join/as-of expressions over the whole history (no per-row Python loops).
"""

from kforge.features.build import (
           FEATURE_COLUMNS,
           NUMERIC_FEATURES,
           build_patch_features,
           files_from_commit_files,
)
from kforge.features.pit import point_in_time_check

__all__ = ["FEATURE_COLUMNS", "NUMERIC_FEATURES", "build_patch_features", "files_from_commit_files",
           "point_in_time_check"]
