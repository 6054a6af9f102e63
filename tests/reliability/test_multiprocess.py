"""The multiprocess executor over parallel warehouse writers: capped, repeated, no lock failures
(the warehouse file lock serialises the writes themselves)."""

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableJob
from kforge.config import Paths
from kforge.storage import Warehouse

HERE = Path(__file__).resolve().parent


def _windows(inst: dg.DagsterInstance, run_id: str) -> dict[str, list[float]]:
    spans: dict[str, list[float]] = {}
    for rec in inst.get_records_for_run(run_id).records:
        ev = rec.event_log_entry
        if ev.dagster_event and ev.dagster_event.event_type_value in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):
            spans.setdefault(ev.step_key, []).append(ev.timestamp)
    return spans


def _max_overlap(spans: dict[str, list[float]]) -> int:
    points = sorted([(min(t), 1) for t in spans.values()] + [(max(t), -1) for t in spans.values()])
    cur = best = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


def test_multiprocess_graph_capped_repeated_without_lock_failures(ingested_home: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    import reliability_graph

    job = ReconstructableJob.for_file(str(HERE / "reliability_graph.py"), "build")

    inst = dg.DagsterInstance.from_config(str(ingested_home / "dagster"))  # persistent (sqlite) instance
    wh = Warehouse(Paths.of(ingested_home).warehouse)
    snapshots = []
    for i in range(2):
        with dg.execute_job(job, instance=inst,
                            run_config={"execution": {"config": {"multiprocess": {"max_concurrent": 3}}}}) as result:
            failures = [e.message for e in result.all_events if e.is_step_failure]
            assert result.success, failures
            spans = _windows(inst, result.run_id)
        assert len(spans) == len(reliability_graph.SELECTION) + len(reliability_graph.PROBES)
        assert 2 <= _max_overlap(spans) <= 3, spans  # really parallel, never above the cap
        probes = sorted(r[0] for r in wh.read("select asset from probe_windows").rows())
        assert probes == sorted(["probe_0", "probe_1"] * (i + 1)), probes  # every writer's append landed, none doubled
        snapshots.append({t: wh.read(f"select count(*) n from {t}").row(0) for t in ("commit_chains", "commit_tags")})
    assert snapshots[0] == snapshots[1]  # a repeated run replaces, never duplicates
    assert snapshots[0]["commit_tags"][0] > 0 and snapshots[0]["commit_chains"][0] > 0
