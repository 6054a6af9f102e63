"""Fixtures for end-to-end UI tests: a real `dagster dev` on loopback and headless Chromium."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "out" / "e2e"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status < 500:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def graphql(base: str, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Debian chromium is not installed: run scripts/install-system-deps.sh (make test does)")
    return path


def kforge_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KFORGE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    return subprocess.run([sys.executable, "-m", "kforge.cli.main", *args], env=env, check=True, capture_output=True,
                          text=True)


@pytest.fixture(scope="session")
def e2e_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kforge home with the synthetic demo repository ingested (partition registered)."""
    home = tmp_path_factory.mktemp("e2e") / "home"
    kforge_cli(home, "demo-repo", str(home / "demo-repo"))
    kforge_cli(home, "ingest", str(home / "demo-repo"))
    return home


@contextmanager
def serve(cmd: list[str], env: dict[str, str], log_path: Path, health_url: str, timeout: float) -> Iterator[None]:
    """Run a server in its own process group until the block ends; its output goes to ``log_path``."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(health_url, timeout=timeout)
            yield
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def dagster_ui(e2e_home: Path) -> Iterator[str]:
    """`dagster dev` (webserver + daemon) over the e2e home, loopback only."""
    base = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "KFORGE_HOME": str(e2e_home), "DAGSTER_HOME": str(e2e_home / "dagster")}
    cmd = [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(ROOT / "workspace.yaml"),
           "-h", "127.0.0.1", "-p", base.rsplit(":", 1)[1]]
    with serve(cmd, env, e2e_home / "dagster-dev.log", f"{base}/server_info", timeout=180):
        graphql(base, "mutation { setNuxSeen }")
        yield base


@pytest.fixture(scope="session")
def mlflow_ui(e2e_home: Path) -> Iterator[str]:
    """`mlflow server` over the same KFORGE_HOME, one worker, loopback only."""
    base = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
           f"sqlite:///{e2e_home}/mlflow.db", "--default-artifact-root", str(e2e_home / "mlartifacts"),
           "--host", "127.0.0.1", "--port", base.rsplit(":", 1)[1], "--workers", "1"]
    with serve(cmd, env, e2e_home / "mlflow-server.log", f"{base}/health", timeout=120):
        yield base


@pytest.fixture()
def page(chromium_path: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS, headless=True)
        pg = browser.new_page(viewport={"width": 1600, "height": 1000})
        pg.set_default_timeout(60_000)
        yield pg
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
