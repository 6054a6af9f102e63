"""The whole graph loads, and the jobs, schedules and sensors users rely on exist."""

import json
import os
from pathlib import Path

import dagster as dg

from jobs.definitions import build_definitions, domain_modules

REQUIRED_GROUPS = {"kernel_commits", "patch_features", "acceptance", "generation", "mixins", "healing", "telemetry"}
REQUIRED_JOBS = {"ingest_repository_job", "refresh_commit_tables", "retrain_acceptance", "retrain_generation",
                 "retrain_mixins", "retrain_healing", "retrain_telemetry", "refresh_model_monitoring",
                 "nightly_refresh_and_retrain"}
REQUIRED_SCHEDULES = {"nightly_ingest", "nightly_retrain", "hourly_model_monitoring"}
REQUIRED_SENSORS = {"repository_sensor", "acceptance_feedback_sensor", "generation_feedback_sensor",
                    "healing_feedback_sensor", "mixins_feedback_sensor"}


def test_definitions_load_and_name_what_users_need(kforge_home) -> None:
    with dg.instance_for_test():
        _check_definitions(build_definitions())


def _check_definitions(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert REQUIRED_GROUPS <= groups
    assert REQUIRED_JOBS <= {j.name for j in defs.jobs or []}
    assert REQUIRED_SCHEDULES <= {s.name for s in defs.schedules or []}
    assert REQUIRED_SENSORS <= {s.name for s in defs.sensors or []}
    for s in defs.schedules or []:
        assert s.execution_timezone, f"schedule {s.name} needs an explicit timezone"
    assert {"warehouse", "mlflow", "git_repos", "data"} <= set(defs.resources or {})
    assert defs.resolve_all_job_defs()


def test_every_domain_module_exposes_defs_without_resources() -> None:
    import importlib

    for name in domain_modules():
        module = importlib.import_module(name)
        d = getattr(module, "defs", None)
        assert isinstance(d, dg.Definitions), name
        assert not d.resources, f"{name}: resources are bound once in jobs/definitions.py"


def test_importing_definitions_opens_nothing(tmp_path, monkeypatch) -> None:
    home = tmp_path / "untouched"
    monkeypatch.setenv("KFORGE_HOME", str(home))
    build_definitions()
    assert not home.exists()


SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")


def _snapshot(defs: dg.Definitions) -> dict[str, list[str]]:
    graph = defs.resolve_asset_graph()
    return {
        "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
        "checks": sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys),
        "jobs": sorted(j.name for j in defs.jobs or []),
        "schedules": sorted(f"{s.name} {s.cron_schedule} {s.execution_timezone}" for s in defs.schedules or []),
        "sensors": sorted(s.name for s in defs.sensors or []),
    }


def test_definitions_snapshot(kforge_home) -> None:
    """Every asset, check, job, schedule and sensor, by name: a change to the graph is a reviewed
    change to tests/definitions_snapshot.json (KFORGE_UPDATE_SNAPSHOT=1 rewrites it)."""
    with dg.instance_for_test():
        snap = _snapshot(build_definitions())
    if os.environ.get("KFORGE_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(snap, indent=1) + "\n")
    assert snap == json.loads(SNAPSHOT.read_text())


def test_writer_policy_is_declared_once(kforge_home) -> None:
    """No asset hand-sets concurrency tags: the root's executor caps concurrent steps, the
    warehouse's file lock serialises writes, retraining jobs carry their family tag."""
    from jobs.definitions import MAX_CONCURRENT_STEPS

    with dg.instance_for_test():
        defs = build_definitions()
    for ad in defs.assets or []:
        if isinstance(ad, dg.AssetsDefinition):
            assert not any(k.startswith("kforge/") for k in ad.node_def.tags), ad.node_def.name
    for job in defs.resolve_all_job_defs():  # every job runs under the root's capped executor
        schema = job.executor_def.config_schema
        assert hasattr(schema, "resolve_config"), f"{job.name}: its executor is not the root's configured one"
        resolved = schema.resolve_config({})
        assert job.executor_def.name == "multiprocess" and resolved.success, job.name
        assert resolved.value["config"]["max_concurrent"] == MAX_CONCURRENT_STEPS == 2, job.name
    job = defs.resolve_job_def("retrain_mixins")
    assert job.tags["kforge/family"] == "mixins"


def test_everything_a_user_can_click_has_a_description(kforge_home) -> None:
    """Issue 17: every job, schedule, sensor, asset and asset check says what it is; a release check's
    description names its metric or threshold."""
    with dg.instance_for_test():
        defs = build_definitions()
    missing = [f"job {j.name}" for j in defs.jobs or [] if not (j.description or "").strip()]
    missing += [f"schedule {s.name}" for s in defs.schedules or [] if not (s.description or "").strip()]
    missing += [f"sensor {s.name}" for s in defs.sensors or [] if not (s.description or "").strip()]
    for ad in defs.assets or []:
        if not isinstance(ad, dg.AssetsDefinition):
            continue
        missing += [f"asset {k.to_user_string()}" for k in ad.keys if not (ad.descriptions_by_key.get(k) or "").strip()]
        missing += [f"check {s.key.asset_key.to_user_string()}:{s.name}" for s in ad.check_specs
                    if not (s.description or "").strip()]
    for cd in defs.asset_checks or []:
        missing += [f"check {s.key.asset_key.to_user_string()}:{s.name}" for s in cd.check_specs
                    if not (s.description or "").strip()]
    assert not missing, missing
    assert "materialize_all" in {j.name for j in defs.jobs or []}
    from kforge.acceptance.spec import COMMIT_MODEL

    for check in (s for ad in defs.assets or [] if isinstance(ad, dg.AssetsDefinition) for s in ad.check_specs
                  if s.key.asset_key == dg.AssetKey(COMMIT_MODEL.asset_key) and s.name.startswith("beats_")):
        assert COMMIT_MODEL.metric in check.description, check.description
