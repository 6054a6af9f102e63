"""The whole graph loads, and the jobs, schedules and sensors users rely on exist."""

import dagster as dg

from jobs.definitions import build_definitions, domain_modules

REQUIRED_GROUPS = {"kernel_commits", "patch_features", "acceptance", "generation", "mixins", "healing", "telemetry"}
REQUIRED_JOBS = {"ingest_repository_job", "refresh_commit_tables", "retrain_acceptance", "retrain_generation",
                 "retrain_mixins", "retrain_healing", "retrain_telemetry", "refresh_model_monitoring"}
REQUIRED_SCHEDULES = {"nightly_ingest", "nightly_commit_tables", "nightly_acceptance", "nightly_generation",
                      "nightly_mixins", "nightly_healing", "nightly_telemetry", "hourly_model_monitoring"}
REQUIRED_SENSORS = {"repository_sensor", "acceptance_feedback_sensor", "generation_feedback_sensor",
                    "healing_feedback_sensor", "mixins_outcomes_sensor", "telemetry_feedback_sensor"}


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


# Assets that use the warehouse but are deliberately not writer-tagged: training and evaluation
# steps that read tables for minutes and write a few rows at the end (under the file lock). Tagging
# them would serialise all training behind one writer slot.
UNTAGGED_WAREHOUSE_USERS = {
    "acceptance_commit_model", "acceptance_email_model", "generation_models", "healing_model", "healing_strategies",
    "healing_rule_suggestions", "mixin_model", "oom_forecaster", "oom_recommender", "model_monitoring_report",
}


def test_every_bulk_warehouse_writer_carries_the_writer_tag(kforge_home) -> None:
    """The multiprocess executor's ``kforge/warehouse=write`` limit (kforge.scale.executor) only
    covers tagged steps: every asset that needs the warehouse is tagged or listed above on purpose."""
    from kforge.scale.executor import WAREHOUSE_TAG

    with dg.instance_for_test():
        defs = build_definitions()
    seen = set()
    for ad in defs.assets or []:
        if not isinstance(ad, dg.AssetsDefinition) or "warehouse" not in ad.required_resource_keys:
            continue
        name = ad.node_def.name
        seen.add(name)
        tagged = ad.node_def.tags.get(WAREHOUSE_TAG) == "write"
        assert tagged != (name in UNTAGGED_WAREHOUSE_USERS), (
            f"{name}: {'tagged but listed as untagged' if tagged else 'uses the warehouse without the writer tag'}")
    assert seen >= UNTAGGED_WAREHOUSE_USERS | {"ingest_commits", "patch_features", "generation_corpus", "healing_corpus"}
