"""Every family's feedback sensor has one shape: skip when nothing is new, request its retraining
job with a run_key from the JSON cursor, describe its policy."""

from pathlib import Path

import dagster as dg
import pytest
from kforge.config import Paths
from kforge.dagster_io import MlflowResource, WarehouseResource
from kforge.feedback import add_feedback
from kforge.storage import Warehouse

from jobs.definitions import build_definitions

ROWS = {
    "healing": {"kind": "fix", "error_class": "KeyError", "strategy": "default-value", "success": "true"},
    "mixins": {"mixins": "Caching,Retry", "node_type": "EFFECT", "passed": "true"},
    "generation": {"verdict": "reject", "generated_message": "fix: x"},
}


@pytest.fixture()
def defs(kforge_home: Path) -> dg.Definitions:
    with dg.instance_for_test():
        return build_definitions()


def test_sensor_set_and_descriptions(defs: dg.Definitions) -> None:
    names = {s.name for s in defs.sensors or []}
    assert {"acceptance_feedback_sensor", "generation_feedback_sensor", "healing_feedback_sensor",
            "mixins_feedback_sensor", "repository_sensor"} == names
    for s in defs.sensors or []:
        if s.name.endswith("_feedback_sensor"):
            assert "Retrain" in (s.description or "") and "new labelled feedback rows" in s.description
            family = s.name.removesuffix("_feedback_sensor")
            assert s.job_name == f"retrain_{family}"
            job = defs.resolve_job_def(s.job_name)
            assert job.tags.get("kforge/family") == family


@pytest.mark.parametrize("family", ["healing", "generation"])
def test_feedback_sensor_ticks(defs: dg.Definitions, kforge_home: Path, family: str) -> None:
    sensor = defs.resolve_sensor_def(f"{family}_feedback_sensor")
    res = {"warehouse": WarehouseResource(home=str(kforge_home)), "mlflow": MlflowResource(home=str(kforge_home))}
    ctx = dg.build_sensor_context(cursor=None, resources=res)
    assert isinstance(sensor(ctx), dg.SkipReason)
    wh = Warehouse(Paths.of(kforge_home).warehouse)
    for _ in range(5):
        try:
            add_feedback(family, dict(ROWS[family]), wh)
        except Exception as exc:  # the row shape is the family's: show which field it wants
            pytest.fail(f"{family}: {exc}")
    ctx = dg.build_sensor_context(cursor=None, resources=res)
    req = sensor(ctx)
    assert isinstance(req, dg.RunRequest), req
    assert req.run_key.startswith(f"{family}-") and ctx.cursor.startswith('{"last_request_id": ')
    again = dg.build_sensor_context(cursor=ctx.cursor, resources=res)
    assert isinstance(sensor(again), dg.SkipReason)


def test_drift_descriptions_name_what_the_live_error_is_compared_with(defs: dg.Definitions) -> None:
    """Acceptance compares its champions' live Brier with their held-out Brier; generation compares the
    share of rejected reviews with a fixed policy ceiling, which is no held-out figure and is not called one."""
    acceptance = defs.resolve_sensor_def("acceptance_feedback_sensor").description or ""
    assert "exceeds its held-out Brier by more than 0.05" in acceptance
    generation = defs.resolve_sensor_def("generation_feedback_sensor").description or ""
    assert "held-out" not in generation and "exceeds the policy ceiling of 70%" in generation
