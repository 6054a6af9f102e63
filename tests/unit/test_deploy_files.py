"""The Kubernetes files in deploy/k8s stay consistent with the code they deploy (no cluster here:
these checks are what can be verified without one)."""

import importlib
import re
from pathlib import Path

import dagster
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def _load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def test_every_values_file_parses():
    names = sorted(p.name for p in K8S.glob("*.yaml"))
    assert names == ["dagster-values.yaml", "mlflow-values.yaml", "postgres-values.yaml", "run-config-k8s-executor.yaml"]
    for n in names:
        assert isinstance(_load(n), dict), n


def test_dagster_values_match_the_code_and_pinned_version():
    text = (K8S / "dagster-values.yaml").read_text()
    chart = re.search(r"--version (\S+)", text)
    assert chart and chart.group(1) == dagster.__version__  # chart version == the pinned dagster
    v = _load("dagster-values.yaml")
    dep = v["dagster-user-deployments"]["deployments"][0]
    module = dep["dagsterApiGrpcArgs"][dep["dagsterApiGrpcArgs"].index("-m") + 1]
    assert hasattr(importlib.import_module(module), "defs")  # the code location the gRPC server loads
    env = {e["name"] for e in dep["env"]}
    assert {"KFORGE_HOME", "KFORGE_DATA", "KFORGE_MLFLOW_TRACKING_URI"} <= env
    assert v["postgresql"]["enabled"] is False and v["runLauncher"]["type"] == "K8sRunLauncher"
    assert v["dagsterWebserver"]["service"]["type"] == "ClusterIP"  # not exposed outside the cluster


def test_services_share_one_postgres_and_the_writer_limit_uses_the_code_tag():
    dag, mlf = _load("dagster-values.yaml"), _load("mlflow-values.yaml")
    assert dag["postgresql"]["postgresqlHost"] == mlf["backendStore"]["postgres"]["host"]
    assert mlf["service"]["type"] == "ClusterIP"
    cfg = _load("run-config-k8s-executor.yaml")["execution"]["config"]
    assert "tag_concurrency_limits" not in cfg and cfg["max_concurrent"] >= 1  # writers serialise on the lock


def test_one_retraining_run_at_a_time_whatever_its_family_tag():
    """The nightly job is tagged kforge/family=all and a feedback retrain kforge/family=<family>: a limit per tag
    value (before) let both train the same family at once. The limit is on the key."""
    from jobs.definitions import FAMILY_TAG

    cfg = yaml.safe_load((K8S.parent / "dagster.yaml").read_text())
    limits = [lim for lim in cfg["concurrency"]["runs"]["tag_concurrency_limits"] if lim["key"] == FAMILY_TAG]
    assert limits == [{"key": FAMILY_TAG, "limit": 1}]
