"""Asset group ``patch_features``: point-in-time change metrics per commit (JIT + kernel + text).

The asset check recomputes probe commits' features with all later history removed and fails if
any value differs (the proof that nothing from after the commit leaks into its features).
"""

import time

import dagster as dg
import polars as pl
from kforge.dagster_io import WarehouseResource
from kforge.dagster_io.metadata import table_md
from kforge.features import NUMERIC_FEATURES, build_patch_features, point_in_time_check
from kforge.features.build import event_times_for
from kforge.features.line_origins import for_repositories
from kforge.features.pit import record_point_in_time
from kforge.git.ingest import registered_repositories
from pydantic import Field

GROUP = "patch_features"


class PatchFeaturesConfig(dg.Config):
    pit_probes: int = Field(default=4, description="Commits whose features are recomputed with later history removed.")


@dg.asset(
    group_name=GROUP, deps=["commits", "file_changes", "commit_chains", "imported_commits", "commit_diffs"],
    description="Per non-merge commit: Kamei JIT metrics, kernel specifics, message text (point in time).",
    check_specs=[dg.AssetCheckSpec("point_in_time", asset="patch_features", blocking=True,
                                   description="Recomputing with later history removed gives the same values.")],
)
def patch_features(context: dg.AssetExecutionContext, config: PatchFeaturesConfig,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    commits, files = wh.read_table("commits"), wh.read_table("file_changes")
    chains = wh.read_table("commit_chains") if wh.has_table("commit_chains") else None
    # diff-content features where diffs are stored (training uses them only when they cover the rows)
    diffs = wh.read("select sha, diff, truncated from commit_diffs") if wh.has_table("commit_diffs") else None
    start = time.perf_counter()
    # line origins (who wrote the lines each commit touches) from the registered clones
    repos = registered_repositories(wh)
    origins, replay = for_repositories(repos, commits, event_times_for(commits, chains))
    feats = build_patch_features(commits, files, chains, diffs, origins)
    seconds = time.perf_counter() - start
    wh.replace("patch_features", feats)
    report = point_in_time_check(commits, files, feats, n_probes=config.pit_probes, diffs=diffs, repos=repos)
    record_point_in_time(wh, feats, report)
    summary = feats.select(NUMERIC_FEATURES[:14]).describe().filter(pl.col("statistic").is_in(["mean", "50%", "max"]))
    return dg.MaterializeResult(
        metadata={"dagster/row_count": feats.height, "features": len(NUMERIC_FEATURES) + 2,
                  "compute_seconds": round(seconds, 2), "repos": feats["repo"].n_unique(),
                  "commits_with_diff": int(feats["has_diff"].sum()) if "has_diff" in feats.columns else 0,
                  "commits_with_line_origins": int(feats["has_line_origins"].sum()),
                  "line_origin_replay": str(replay),
                  "jit_summary": table_md(summary)},
        check_results=[dg.AssetCheckResult(
            check_name="point_in_time", passed=report.passed,
            metadata={"probes": report.checked, "mismatches": len(report.mismatches),
                      "first_mismatches": str(report.mismatches[:5])})],
    )


defs = dg.Definitions(assets=[patch_features])
