"""Chaos run (minutes, not a test): the whole graph under the multiprocess executor, repeated,
with kill -9 of the run at random moments, then a clean re-run; reports what held.

For each round: materialize every asset (kforge's definitions, multiprocess executor with
max_concurrent/warehouse-writer caps) in a child process, SIGKILL the child (and its step
processes) after a random delay, and check the warehouse: it opens, no table has duplicate keys,
ingested rows were not lost. Finally one uninterrupted run must succeed and every registered
model version must be READY with a loadable artifact and the champion must carry a passed gate.

    .venv/bin/python bench/chaos.py --rounds 5 --home /tmp/kforge-chaos [--max-concurrent 2]
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"commits": ["repo", "sha"], "file_changes": ["repo", "sha", "path"], "patch_features": ["repo", "sha"],
        "commit_tags": ["repo", "sha", "tag", "rule"], "commit_labels": ["repo", "sha"]}

RUN = """
import json, sys
import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob
inst = dg.DagsterInstance.get()
job = ReconstructableJob.for_file(sys.argv[1], "whole_graph")
with dg.execute_job(job, instance=inst, run_config={'execution': {'config': {'multiprocess': {'max_concurrent': int(sys.argv[2])}}}}) as res:
    failed = [e.step_key for e in res.all_events if e.is_step_failure]
    print(json.dumps({"success": res.success, "failed_steps": failed}))
"""

JOB_FILE = '''
import dagster as dg

def whole_graph():
    from jobs.definitions import build_definitions
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = [k for k in dg.AssetSelection.all().resolve(graph) if graph.get(k).partitions_def is None]
    job = dg.define_asset_job("chaos_whole_graph", selection=dg.AssetSelection.assets(*keys))
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("chaos_whole_graph")
'''


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "KFORGE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}", "OMP_NUM_THREADS": "1"}


def kforge(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kforge.cli.main", "--home", str(home), *args], cwd=ROOT,
                          env=env_for(home), capture_output=True, text=True)


def check_warehouse(home: Path, commits_expected: int) -> dict:
    from kforge.config import Paths
    from kforge.storage import Warehouse

    wh = Warehouse(Paths.of(home).warehouse)
    out: dict = {"tables": len(wh.tables())}
    for table, keys in KEYS.items():
        if wh.has_table(table):
            n, k = wh.read(f"select count(*) n, count(distinct ({', '.join(keys)})) k from {table}").row(0)
            out[table] = {"rows": n, "duplicates": n - k}
    out["commits_lost"] = commits_expected - out.get("commits", {}).get("rows", 0)
    return out


def check_registry(home: Path) -> list[dict]:
    import mlflow
    from kforge.config import Paths
    from kforge.registry import Tracker

    t = Tracker(Paths.of(home))
    client = t.client()
    rows = []
    for rm in client.search_registered_models():
        champ = t.champion(rm.name)
        for mv in client.search_model_versions(f"name='{rm.name}'"):
            try:
                mlflow.artifacts.download_artifacts(f"models:/{rm.name}/{mv.version}", dst_path=None)
                loadable = True
            except Exception as exc:  # noqa: BLE001 - report, do not stop
                loadable = f"{type(exc).__name__}: {str(exc)[:120]}"
            rows.append({"model": rm.name, "version": int(mv.version), "status": mv.status, "loadable": loadable,
                         "champion": champ is not None and int(champ.version) == int(mv.version),
                         "gate": (mv.tags or {}).get("kforge.gate.decision", "")})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default="/tmp/kforge-chaos")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-concurrent", type=int, default=2)
    ap.add_argument("--min-delay", type=float, default=20.0)
    ap.add_argument("--max-delay", type=float, default=240.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    home = Path(args.home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    job_file = home / "chaos_job.py"
    job_file.write_text(JOB_FILE)
    repo = home / "demo-repo"
    if not (repo / ".git").exists():
        kforge(home, "demo-repo", str(repo))
    res = kforge(home, "ingest", str(repo))
    if res.returncode != 0:
        print(res.stderr, file=sys.stderr)
        return 1
    expected = json.loads(res.stdout.strip().splitlines()[-1])["commits_in_history"]
    report = []
    for i in range(args.rounds):
        delay = rng.uniform(args.min_delay, args.max_delay)
        proc = subprocess.Popen([sys.executable, "-c", RUN, str(job_file), str(args.max_concurrent)], cwd=ROOT,
                                env=env_for(home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                start_new_session=True)
        start = time.monotonic()
        while proc.poll() is None and time.monotonic() - start < delay:
            time.sleep(0.5)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and its step processes
        out = proc.communicate()[0]
        row = {"round": i, "delay_s": round(delay, 1), "killed": killed,
               "result": out.strip().splitlines()[-1] if out.strip() else None,
               "warehouse": check_warehouse(home, expected)}
        report.append(row)
        print(json.dumps(row), flush=True)
    final = subprocess.run([sys.executable, "-c", RUN, str(job_file), str(args.max_concurrent)], cwd=ROOT,
                           env=env_for(home), capture_output=True, text=True)
    summary = {"final_run": final.stdout.strip().splitlines()[-1] if final.stdout.strip() else final.stderr[-2000:],
               "warehouse": check_warehouse(home, expected), "registry": check_registry(home)}
    print(json.dumps(summary, indent=1))
    dups = [t for r in report + [summary] for t, v in r["warehouse"].items() if isinstance(v, dict) and v["duplicates"]]
    lost = [r["warehouse"]["commits_lost"] for r in report + [summary] if r["warehouse"]["commits_lost"]]
    bad_versions = [v for v in summary["registry"] if v["status"] != "READY" or v["loadable"] is not True]
    bad_champs = [v for v in summary["registry"] if v["champion"] and v["gate"] not in ("promoted", "")]
    print(f"held: duplicates={not dups} no_lost_commits={not lost} versions_whole={not bad_versions} "
          f"champions_gated={not bad_champs}")
    return 0 if not (dups or lost or bad_versions or bad_champs) else 1


if __name__ == "__main__":
    sys.exit(main())
