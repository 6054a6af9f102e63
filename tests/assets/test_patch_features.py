"""The patch_features asset on the demo repository, with its point-in-time check."""

from pathlib import Path

import dagster as dg
from kforge.config import Paths
from kforge.dagster_io import DataResource, GitReposResource, MlflowResource, WarehouseResource
from kforge.git.ingest import register_repository
from kforge.storage import Warehouse

from assets.kernel_commits import commit_chains, commit_diffs, imported_commits, ingest_commits, repositories
from assets.patch_features import patch_features


def test_patch_features_materialize_with_point_in_time_check(kforge_home: Path, demo_repo: Path) -> None:
    res = {"warehouse": WarehouseResource(home=str(kforge_home)), "mlflow": MlflowResource(home=str(kforge_home)),
           "git_repos": GitReposResource(), "data": DataResource()}
    wh = Warehouse(Paths.of(kforge_home).warehouse)
    register_repository(wh, "demo", demo_repo)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(repositories.name, ["demo"])
    assert dg.materialize([ingest_commits], partition_key="demo", instance=instance, resources=res).success
    out = dg.materialize([imported_commits, commit_chains, commit_diffs, patch_features], instance=instance, resources=res,
                         run_config={"ops": {"patch_features": {"config": {"pit_probes": 3}}}})
    assert out.success
    check = out.get_asset_check_evaluations()
    pit = [c for c in check if c.check_name == "point_in_time"][0]
    assert pit.passed and pit.metadata["probes"].value == 3
    feats = wh.read_table("patch_features")
    merges = wh.read("select count(*) n from commits where is_merge")["n"][0]
    assert feats.height == wh.count("commits") - merges
    assert feats["exp"].min() == 0 and feats["la"].max() > 0
    # stored diffs give the diff-content features (checked point in time above)
    assert feats["has_diff"].sum() == feats.height and feats["diff_added_lines"].max() > 0
    # the registered clone gives the line-origin features (also checked point in time above)
    mat = [e for e in out.get_asset_materialization_events() if e.asset_key.path[-1] == "patch_features"][0]
    meta = mat.materialization.metadata
    assert meta["commits_with_line_origins"].value == feats["has_line_origins"].sum() > 0.9 * feats.height
    assert feats["lo_rm_lines"].max() > 0 and feats["lo_tc_n_authors"].max() >= 2
    assert "'mismatches': 0" in meta["line_origin_replay"].value
