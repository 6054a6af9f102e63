"""kforge against the production stack: Dagster instance and MLflow server on PostgreSQL."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _pg(stack, db: str, sql: str) -> list[tuple]:  # noqa: ANN001
    import psycopg2

    con = psycopg2.connect(host="127.0.0.1", port=stack.pg_port, user=stack.env["KFORGE_PG_USER"],
                           password=stack.env["KFORGE_PG_PASSWORD"], dbname=db)
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        con.close()


def test_every_server_listens_on_loopback_only_and_start_is_idempotent(stack) -> None:  # noqa: ANN001
    ports = {stack.pg_port: "postgres", stack.mlflow_port: "mlflow", stack.dagster_port: "dagster-webserver"}
    listening = {c.laddr.port: c.laddr.ip for c in psutil.net_connections("inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port in ports}
    assert set(listening) == set(ports), f"not listening: {set(ports) - set(listening)}"
    assert all(ip == "127.0.0.1" for ip in listening.values()), listening
    again = stack.script("start", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "postgres already running" in again.stdout and "mlflow already running" in again.stdout
    status = stack.script("status").stdout
    for name in ("postgres", "mlflow", "dagster-webserver", "dagster-daemon"):
        assert f"{name}: running" in status, status
    assert oct((stack.dir / "env.sh").stat().st_mode & 0o777) == "0o600"


def test_kernel_commits_run_through_the_queue_and_daemon_on_postgres(stack_env, demo_repo: Path) -> None:  # noqa: ANN001
    import dagster as dg
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    env = {**os.environ, **stack_env.env}
    ingest = subprocess.run([str(BIN / "kforge"), "ingest", str(demo_repo), "--name", "demo"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert ingest.returncode == 0, ingest.stderr
    inst = dg.DagsterInstance.from_config(str(stack_env.home / "dagster"))
    assert isinstance(inst.run_storage, PostgresRunStorage)
    assert isinstance(inst.event_log_storage, PostgresEventLogStorage)
    assert inst.has_dynamic_partition("repositories", "demo")  # written by `kforge ingest` into Postgres
    launch = subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "refresh_commit_tables"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert launch.returncode == 0, launch.stderr[-3000:]
    deadline = time.monotonic() + 240
    run = None
    while time.monotonic() < deadline:
        runs = inst.get_runs(dg.RunsFilter(job_name="refresh_commit_tables"))
        run = runs[0] if runs else None
        if run is not None and run.is_finished:
            break
        time.sleep(2)
    assert run is not None, "the launched run never reached the run storage"
    assert run.status == dg.DagsterRunStatus.SUCCESS, (run.status, (stack_env.dir / "logs" / "dagster-daemon.log").read_text()[-3000:])
    # the queue (QueuedRunCoordinator) and the daemon moved it: it was QUEUED before it STARTED
    events = [e.event_log_entry.dagster_event.event_type_value
              for e in inst.get_records_for_run(run.run_id).records if e.event_log_entry.dagster_event]
    assert events.index("PIPELINE_ENQUEUED") < events.index("PIPELINE_STARTING") < events.index("PIPELINE_SUCCESS"), events
    materialized = {r[0] for r in _pg(stack_env, "dagster",
                                      "select asset_key from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'")}
    assert {'["commit_chains"]', '["commit_tags"]', '["commits"]'} <= materialized
    from kforge.config import Paths
    from kforge.storage import Warehouse

    wh = Warehouse(Paths.of(stack_env.home).warehouse)
    assert wh.count("commits") == 600 and wh.count("commit_chains") > 0


def test_model_logged_registered_and_promoted_through_the_mlflow_server(stack_env) -> None:  # noqa: ANN001
    import mlflow
    from kforge.config import Paths
    from kforge.dagster_io import MlflowResource
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    uri = stack_env.env["KFORGE_MLFLOW_TRACKING_URI"]
    assert uri.startswith("http://127.0.0.1:")
    tracker = MlflowResource(home=str(stack_env.home), tracking_uri=uri).tracker()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int)
    import polars as pl
    from kforge.registry.gates import Check, ModelSpec, size_check
    from kforge.registry.release import Candidate, Scored, release

    spec = ModelSpec(name="kforge-services-test", family="services", asset_key="services_model",
                     metric="test_accuracy", min_test_rows=20, point_in_time=False)
    keys = [str(i) for i in range(150, 200)]

    def score(d) -> Scored:  # noqa: ANN001 - the champion, downloaded through the tracking server
        return Scored(float(mlflow.sklearn.load_model(str(d)).score(X[150:], y[150:])), keys)

    results = []
    for c in (0.01, 1.0):
        model = LogisticRegression(C=c).fit(X[:150], y[:150])
        results.append(release(tracker, Candidate(
            spec, train_table=pl.DataFrame(X[:150], schema=["a", "b", "c"]), eval_keys=keys,
            score=float(model.score(X[150:], y[150:])), params={"C": c},
            checks=[Check("split_holds", True), size_check(len(keys), 20)],
            save_model=lambda d, m=model: mlflow.sklearn.save_model(
                m, str(d), pip_requirements=["scikit-learn"], signature=infer_signature(X[:2], m.predict(X[:2])),
                input_example=X[:2]),
            score_registered=score)))
    first, second = results
    assert first.promoted
    assert second.champion_version == first.version and second.champion_eval_rows_digest == second.eval_rows_digest
    v1, v2 = first.version, second.version
    assert int(tracker.champion("kforge-services-test").version) == (v2 if second.promoted else v1)
    loaded = mlflow.pyfunc.load_model(tracker.model_uri("kforge-services-test"))
    assert loaded.predict(X[:5]).shape == (5,)
    # the registry lives in Postgres, the artifacts under KFORGE_HOME/mlartifacts
    rows = _pg(stack_env, "mlflow", "select version from model_versions where name = 'kforge-services-test' order by 1")
    assert [r[0] for r in rows] == [v1, v2]
    aliases = dict(_pg(stack_env, "mlflow", "select alias, version from registered_model_aliases "
                                            "where name = 'kforge-services-test'"))
    assert aliases["champion"] == int(tracker.champion("kforge-services-test").version)
    # the server owns the artifact root (mlflow-artifacts:/ proxied to KFORGE_HOME/mlartifacts)
    assert any(Paths.of(stack_env.home).mlartifacts.rglob("MLmodel"))
