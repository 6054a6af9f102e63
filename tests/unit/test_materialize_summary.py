"""Issue 17: what `kforge materialize` / `make demo` print and how their runs appear in the UI."""

from pathlib import Path

import dagster as dg
import pytest
from kforge.config import Paths
from kforge.dagster_io.instance import instance as kforge_instance
from kforge.dagster_io.materialize import MATERIALIZE_JOB, TRIGGER_TAG, materialize_selection
from kforge.dagster_io.progress import format_summary


@dg.asset(check_specs=[dg.AssetCheckSpec("beats_majority", asset="toy_model", description="test_acc > majority"),
                       dg.AssetCheckSpec("generalizes", asset="toy_model", description="per group")])
def toy_model() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"family": "unit", "model": "kforge-toy", "model_version": 3, "gate_decision": "blocked",
                  "gate_reason": "blocked by gates: beats_majority (failed)", "gate_metric": "test_acc",
                  "gate_challenger_score": dg.MetadataValue.float(0.61), "baseline_majority": 0.64,
                  "baseline_majority_accuracy": 0.64, "gate_baselines": "majority"},
        check_results=[dg.AssetCheckResult(check_name="beats_majority", passed=False,
                                           metadata={"status": "failed", "detail": "0.6100 vs majority 0.6400"}),
                       dg.AssetCheckResult(check_name="generalizes", passed=False,
                                           severity=dg.AssetCheckSeverity.WARN,
                                           metadata={"status": "not run", "detail": "one group"})])


@dg.asset
def skipped_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    context.log.info("chatty info that must not reach the terminal")
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.asset(deps=[toy_model])
def table_after() -> None:
    return None


def test_named_job_progress_lines_and_summary(kforge_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    defs = dg.Definitions(assets=[toy_model, skipped_model, table_after])
    summary = materialize_selection(defs, Paths.of(kforge_home), trigger="demo", champion_of=lambda name: 2)
    out = capsys.readouterr().out
    assert summary.succeeded and summary.runs == 1
    lines = [x for x in out.splitlines() if x.startswith("[")]
    assert len(lines) == 3 and all(" ok " in x and x.rstrip().endswith(" s") for x in lines), out
    assert "[3/3]" in lines[-1]
    assert "DEBUG" not in out and "STEP_START" not in out and "chatty info" not in out
    # a failed check is listed with its reason; a check that did not run is not called failed
    assert summary.failed_checks == ["toy_model:beats_majority"]
    (row,) = summary.models
    assert (row.family, row.model, row.version, row.decision, row.champion) == ("unit", "kforge-toy", "3", "blocked", "no")
    assert row.score == pytest.approx(0.61) and row.baselines == {"majority": pytest.approx(0.64)}
    assert row.failed_checks == ["beats_majority: 0.6100 vs majority 0.6400"]
    table = format_summary(summary.models)
    assert "test_acc 0.610 vs majority 0.640" in table and "kforge-toy" in table and "generalizes" not in table
    run = kforge_instance(Paths.of(kforge_home)).get_run_by_id(summary.run_ids[0])
    assert run.job_name == MATERIALIZE_JOB and run.tags[TRIGGER_TAG] == "demo"


def test_summary_marks_the_champion_and_skipped_models() -> None:
    from kforge.dagster_io.progress import SummaryRow

    rows = [SummaryRow("acceptance", "kforge-acceptance-email", "acceptance_email_model", decision="skipped",
                       note="no patch e-mails"),
            SummaryRow("mixins", "kforge-mixins", "mixin_model", "2", "promoted", "yes", "brier", 0.1,
                       {"rules": 0.13})]
    table = format_summary(rows)
    assert "skipped: no patch e-mails" in table
    assert "brier 0.100 vs rules 0.130" in table.splitlines()[3]
    assert "yes" in table.splitlines()[3]
