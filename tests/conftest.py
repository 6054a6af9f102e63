"""Shared fixtures: a temporary KFORGE_HOME per test, the real data directory, the demo repository."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# code that forgets to pass a tracking URI must not litter the checkout with ./mlflow.db
os.environ.setdefault("MLFLOW_TRACKING_URI", "sqlite:////tmp/kforge-tests-stray-mlflow.db")


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture()
def kforge_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh kforge home; KFORGE_HOME and DAGSTER_HOME point at it for the test."""
    home = tmp_path / "kforge-home"
    home.mkdir()
    monkeypatch.setenv("KFORGE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.delenv("KFORGE_DATA", raising=False)
    from kforge.config import Paths

    Paths.of(home).ensure()
    return home


@pytest.fixture()
def warehouse(kforge_home: Path):  # noqa: ANN201
    from kforge.config import Paths
    from kforge.storage import Warehouse

    return Warehouse(Paths.of(kforge_home).warehouse)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (CI has it beside the checkout); tests that need it skip elsewhere."""
    if not (SHARED_DATA / "kernel").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_repo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kforge.git.demo_repo import generate_demo_repo

    path = tmp_path_factory.mktemp("demo") / "demo-repo"
    generate_demo_repo(path, n_commits=600, seed=7)
    return path


@pytest.fixture()
def demo_repo(demo_repo_template: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic demo repository (600 commits), safe to modify."""
    dest = tmp_path / "demo-repo"
    shutil.copytree(demo_repo_template, dest, symlinks=True)
    return dest


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.org",
                "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.org", **(env or {})}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          env=full_env).stdout


@pytest.fixture(autouse=True)
def _reset_dagster_defs_state_storage():  # noqa: ANN202
    """dagster's instance_for_test leaves its (disposed) defs-state storage in a context variable;
    later definition loads in the same process then fail with 'undefined DagsterInstance weakref'."""
    yield
    try:
        from dagster._core.storage.defs_state import base

        base._current_storage.set(None)
    except (ImportError, AttributeError):  # pragma: no cover
        pass
