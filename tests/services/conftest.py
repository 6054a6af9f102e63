"""The production stack, started once per session the way `make services` starts it.

`scripts/services.sh start` installs PostgreSQL from Debian packages when it is missing (CI runs
as root), initialises a cluster under a temporary directory, starts it with the MLflow server,
the Dagster webserver and the daemon on 127.0.0.1 (free ports), and `stop` ends them. Tests skip
only when PostgreSQL is absent and cannot be installed (no apt-get, not root).
"""

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "services.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_installable() -> str | None:
    """None when PostgreSQL is there or the script can install it, else why not."""
    if list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return None
    if shutil.which("apt-get") is None:
        return "PostgreSQL is not installed and apt-get is not available"
    if os.geteuid() != 0 and shutil.which("sudo") is None:
        return "PostgreSQL is not installed and installing it needs root"
    return None


@dataclass
class Stack:
    home: Path
    dir: Path
    env: dict[str, str]
    pg_port: int
    mlflow_port: int
    dagster_port: int

    def script(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args, "--dir", str(self.dir), "--pg-port", str(self.pg_port),
             "--mlflow-port", str(self.mlflow_port), "--dagster-port", str(self.dagster_port)],
            env={**os.environ, "KFORGE_HOME": str(self.home)}, capture_output=True, text=True, timeout=timeout,
        )


def _read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
    return env


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    reason = postgres_installable()
    if reason:
        pytest.skip(reason)
    # PostgreSQL runs as user `postgres` when we are root: its directory must be reachable by it,
    # which pytest's 0700 tmp dirs are not.
    base = Path(tempfile.mkdtemp(prefix="kforge-services-", dir="/tmp"))
    base.chmod(0o755)
    st = Stack(home=base / "home", dir=base / "services", env={}, pg_port=free_port(),
               mlflow_port=free_port(), dagster_port=free_port())
    st.home.mkdir()
    res = st.script("start", timeout=600)
    try:
        assert res.returncode == 0, f"services.sh start failed:\n{res.stdout}\n{res.stderr}\n" + "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted((st.dir / "logs").glob("*.log")))
        st.env = _read_env(st.dir / "env.sh")
        yield st
    finally:
        st.script("stop", timeout=120)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def stack_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The variables of the stack's env.sh in this process (what `source env.sh` does)."""
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    return stack
