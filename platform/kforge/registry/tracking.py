"""A thin layer over MLflow: one experiment per asset group, standard run tags.

Every run carries ``dagster_run_id``, ``asset_key``, ``data_version`` and ``git_sha`` tags;
models are registered under ``kforge-<name>`` and a new version gets the ``challenger`` alias.
"""

import functools
import hashlib
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from kforge.config import Paths
from kforge.errors import KforgeError
from kforge.git.gitcmd import run_git
from kforge.registry import aliases


def data_version(df: pl.DataFrame) -> str:
    """A content hash of a training table (order-insensitive), 16 hex chars."""
    if df.height == 0:
        return "empty"
    h = hashlib.sha256()
    h.update(",".join(f"{n}:{t}" for n, t in df.schema.items()).encode())
    safe = df.select([pl.col(c).cast(pl.String) if df.schema[c] in (pl.Object,) else pl.col(c) for c in df.columns])
    h.update(safe.hash_rows(seed=7).sort().to_numpy().tobytes())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The git sha of the kforge checkout, or 'unknown' outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = run_git(here, "rev-parse", "HEAD", timeout=10)
        return out.stdout.decode(errors="replace").strip() or "unknown"
    except (KforgeError, OSError, subprocess.SubprocessError):
        return "unknown"


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the MLflow UI opens such an experiment on its runs table
NOTE_TAG = "mlflow.note.content"  # the experiment's description in the MLflow UI
GROUP_NOTES = {
    "acceptance": "Patch acceptance: P(a merged commit is later fixed or reverted) and P(a patch e-mail is merged), "
                  "trained on point-in-time features and gated on a time-split held-out set.",
    "generation": "Generation: level-1 subsystem/type/size predictors, NNGen retrieval and a torch language model "
                  "(with LoRA adapters) that draft commit messages and patches.",
    "healing": "Healing: kernel-crash and Python-error classifiers (rules + models), and the fix-strategy bandit.",
    "mixins": "Mixin compatibility: P(two mixins work together on a node type), learned from exercise outcomes.",
    "telemetry": "Telemetry: OOM forecasting, the OOM action recommender and the learned scheduler, trained on "
                 "memory and scheduler simulators.",
}


def experiment_tags(group: str) -> dict[str, str]:
    """Tags every ``kforge/<group>`` experiment is created with."""
    note = GROUP_NOTES.get(group, f"kforge models of the {group} family.")
    return {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND,
            NOTE_TAG: f"{note}\n\nModels (primary held-out metric, baselines it must beat):\n"}


class Tracker:
    """MLflow tracking + registry rooted in one kforge home (sqlite backend, file artifacts)."""

    def __init__(self, paths: Paths, tracking_uri: str = "") -> None:
        import os

        self.paths = paths.ensure()
        # explicit argument > KFORGE_MLFLOW_TRACKING_URI (set by scripts/services.sh) > sqlite under the home
        self.tracking_uri = tracking_uri or os.environ.get("KFORGE_MLFLOW_TRACKING_URI", "") or paths.tracking_uri()

    @property
    def is_local(self) -> bool:
        return self.tracking_uri.startswith(("sqlite:", "file:", "/"))

    def activate(self) -> "Tracker":
        """Point MLflow's process-wide tracking and registry URIs here (for code that loads
        ``models:/...`` URIs through plain ``mlflow`` calls, e.g. in a multiprocess step)."""
        self._mlflow()
        return self

    def _mlflow(self) -> Any:
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow

    def client(self) -> Any:
        from mlflow import MlflowClient

        self._mlflow()
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, group: str) -> str:
        mlflow = self._mlflow()
        name = f"kforge/{group}"
        exp = mlflow.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        # a remote tracking server owns its artifact root; locally, artifacts live under the home
        location = (self.paths.mlartifacts / group).as_uri() if self.is_local else None
        try:
            return mlflow.create_experiment(name, artifact_location=location, tags=experiment_tags(group))
        except Exception:  # created concurrently by another step
            exp = mlflow.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def describe_model(self, group: str, model: str, line: str) -> None:
        """Make experiment ``kforge/<group>`` open on its runs table (``mlflow.experimentKind``) and
        list ``model`` in its description: what it learns, its primary metric and its baselines."""
        client = self.client()
        exp_id = self.experiment_id(group)
        tags = client.get_experiment(exp_id).tags or {}
        if tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        note = tags.get(NOTE_TAG) or experiment_tags(group)[NOTE_TAG]
        entry = f"- **{model}**: {line}"
        lines = [x for x in note.splitlines() if not x.startswith(f"- **{model}**:")]
        new = "\n".join([*lines, entry]) if lines and lines[-1].strip() else "\n".join([*lines, "", entry])
        if new != note:
            client.set_experiment_tag(exp_id, NOTE_TAG, new)

    @contextmanager
    def run(
        self,
        group: str,
        run_name: str,
        *,
        dagster_run_id: str = "",
        asset_key: str = "",
        data_version: str = "",
        tags: dict[str, str] | None = None,
    ) -> Iterator[Any]:
        """Start an MLflow run in experiment ``kforge/<group>`` with the standard tags."""
        mlflow = self._mlflow()
        exp_id = self.experiment_id(group)
        all_tags = {
            "dagster_run_id": dagster_run_id or "cli",
            "asset_key": asset_key or run_name,
            "data_version": data_version or "unknown",
            "git_sha": code_version(),
            "code_version": code_version(),
            "kforge_group": group,
            **(tags or {}),
        }
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=all_tags) as active:
            yield active

    # -- registry helpers (the gate is the release path, release.py) --------------------------------------
    def register(self, run_id: str, artifact_path: str, name: str, tags: dict[str, str] | None = None) -> int:
        """Register ``runs:/run_id/artifact_path`` as a new version of ``name`` with alias challenger."""
        return aliases.register_challenger(self.client(), run_id, artifact_path, name, tags or {})

    def champion(self, name: str) -> Any | None:
        return aliases.get_alias(self.client(), name, aliases.CHAMPION)

    def version_of(self, name: str, alias: str = aliases.CHAMPION) -> int | None:
        """The version number behind ``name@alias`` (None when the alias is not set)."""
        mv = aliases.get_alias(self.client(), name, alias)
        return int(mv.version) if mv is not None else None

    def model_uri(self, name: str, alias: str = aliases.CHAMPION) -> str:
        return f"models:/{name}@{alias}"

    def promote(self, name: str, version: int, reason: str = "manual") -> None:
        aliases.promote(self.client(), name, version, reason)

    def rollback(self, name: str) -> int:
        return aliases.rollback(self.client(), name)

    def list_models(self, prefix: str = "kforge-") -> pl.DataFrame:
        return aliases.list_versions(self.client(), prefix)
