from pathlib import Path

import dagster as dg
import pytest
from kforge.config import Paths
from kforge.dagster_io import DataResource, GitReposResource, MlflowResource, WarehouseResource
from kforge.git.ingest import register_repository
from kforge.storage import Warehouse

from assets.kernel_commits import (
    author_expertise_table,
    commit_chains,
    commit_diffs,
    commit_tags,
    imported_commits,
    ingest_commits,
    repositories,
    training_exports,
)
from jobs.kernel_commits import nightly_ingest, repository_sensor

ASSETS = [ingest_commits, imported_commits, commit_tags, commit_chains, author_expertise_table, commit_diffs,
          training_exports]


@pytest.fixture()
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _resources(home: Path, data: str = "") -> dict:
    return {"warehouse": WarehouseResource(home=str(home)), "mlflow": MlflowResource(home=str(home)),
            "git_repos": GitReposResource(), "data": DataResource(data_dir=data)}


def test_materialize_group_on_demo_repo(kforge_home: Path, demo_repo: Path, instance: dg.DagsterInstance) -> None:
    wh = Warehouse(Paths.of(kforge_home).warehouse)
    register_repository(wh, "demo", demo_repo)
    instance.add_dynamic_partitions(repositories.name, ["demo"])
    res = dg.materialize(ASSETS[:1], partition_key="demo", instance=instance, resources=_resources(kforge_home))
    assert res.success
    mats = {m.asset_key.to_user_string(): m for m in res.get_asset_materialization_events()}
    assert mats["commits"].materialization.metadata["commits_added"].value == 600
    res = dg.materialize(ASSETS, selection=[a.key for a in ASSETS[1:]], instance=instance,
                         resources=_resources(kforge_home))
    assert res.success
    checks = res.get_asset_check_evaluations()
    assert [c.passed for c in checks] == [True]
    for table in ("commit_tags", "commit_chains", "commit_labels", "author_expertise", "commit_diffs"):
        assert wh.count(table) > 0, table
    assert (Paths.of(kforge_home).exports / "bugfix.jsonl").exists()
    # point in time: an author's first commit in a subsystem has no prior commits there
    first = wh.read("select min(prior_commits_in_subsystem) m from author_expertise")["m"][0]
    assert first == 0
    # rematerializing ingestion adds nothing
    res = dg.materialize(ASSETS[:1], partition_key="demo", instance=instance, resources=_resources(kforge_home))
    mats = {m.asset_key.to_user_string(): m for m in res.get_asset_materialization_events()}
    assert mats["commits"].materialization.metadata["commits_added"].value == 0


def test_imported_commits_reads_the_data_dir(kforge_home: Path, shared_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "kernel").mkdir(parents=True)
    (data / "kernel" / "bpftool.commits.parquet").symlink_to(shared_data / "kernel" / "bpftool.commits.parquet")
    res = dg.materialize([imported_commits], resources=_resources(kforge_home, str(data)))
    assert res.success
    assert Warehouse(Paths.of(kforge_home).warehouse).count("commits") == 856


def test_repository_sensor_adds_partitions_and_keeps_cursor(kforge_home: Path, demo_repo: Path,
                                                            instance: dg.DagsterInstance) -> None:
    res = {"git_repos": GitReposResource(paths=[str(demo_repo)]), "warehouse": WarehouseResource(home=str(kforge_home))}
    ctx = dg.build_sensor_context(instance=instance, resources=res)
    result = repository_sensor(ctx)
    assert [r.partition_key for r in result.run_requests] == ["demo-repo"]
    assert result.dynamic_partitions_requests[0].partition_keys == ["demo-repo"]
    cursor = result.cursor
    assert cursor.startswith(f"{demo_repo.resolve()}=")  # keyed by the repository's top level
    # same head: skip
    ctx2 = dg.build_sensor_context(instance=instance, resources=res, cursor=cursor)
    again = repository_sensor(ctx2)
    assert isinstance(again, dg.SkipReason)
    # a subdirectory of the same repository is the same repository: nothing new
    sub = next(p for p in demo_repo.iterdir() if p.is_dir() and p.name != ".git")
    same = dg.build_sensor_context(instance=instance, cursor=cursor,
                                   resources={**res, "git_repos": GitReposResource(paths=[str(sub)])})
    assert isinstance(repository_sensor(same), dg.SkipReason)
    # another repository with the same basename is refused with the reason, never merged
    import subprocess

    other = demo_repo.parent / "elsewhere" / "demo-repo"
    other.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    (other / "f").write_text("x\n")
    subprocess.run(["git", "-C", str(other), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(other), "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "x"],
                   check=True)
    clash = dg.build_sensor_context(instance=instance, cursor=cursor,
                                    resources={**res, "git_repos": GitReposResource(paths=[str(other)])})
    skipped = repository_sensor(clash)
    assert isinstance(skipped, dg.SkipReason) and "is taken by another repository" in skipped.skip_message
    # nothing configured: the clones already registered are watched (before: always skipped, so a deployed
    # sensor, whose resource names no paths, never ran)
    empty = dg.build_sensor_context(instance=instance, resources={**res, "git_repos": GitReposResource()})
    watched = repository_sensor(empty)
    assert [r.partition_key for r in watched.run_requests] == ["demo-repo"]
    same_head = dg.build_sensor_context(instance=instance, cursor=watched.cursor,
                                        resources={**res, "git_repos": GitReposResource()})
    assert isinstance(repository_sensor(same_head), dg.SkipReason)
    # nothing configured and nothing registered: skip with a reason
    bare = dg.build_sensor_context(instance=instance, resources={
        "git_repos": GitReposResource(), "warehouse": WarehouseResource(home=str(kforge_home / "bare"))})
    assert "no clone registered" in repository_sensor(bare).skip_message


def test_nightly_ingest_requests_one_run_per_repository() -> None:
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(instance=instance)
        assert isinstance(nightly_ingest(ctx), dg.SkipReason)
        instance.add_dynamic_partitions(repositories.name, ["a", "b"])
        import datetime as dt

        when = dt.datetime(2026, 1, 2, 1, 0, tzinfo=dt.UTC)
        reqs = nightly_ingest(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
        assert sorted(r.partition_key for r in reqs) == ["a", "b"]
        assert {r.run_key for r in reqs} == {"a:2026-01-02", "b:2026-01-02"}
    assert nightly_ingest.execution_timezone == "UTC"


@pytest.mark.parametrize("bad", ["no-such-repo"])
def test_unknown_partition_fails_clearly(kforge_home: Path, bad: str) -> None:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(repositories.name, [bad])
        res = dg.materialize(ASSETS[:1], partition_key=bad, instance=instance, resources=_resources(kforge_home),
                             raise_on_error=False)
        assert not res.success
        failure = res.get_step_failure_events()[0]
        err = failure.step_failure_data.error
        assert err.cause.cls_name == "InputError" and "kforge ingest PATH" in err.cause.message
