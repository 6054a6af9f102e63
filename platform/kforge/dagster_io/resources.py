"""Typed Dagster resources. Nothing is opened or read from the environment until a method runs.

* ``WarehouseResource``: the DuckDB warehouse (polars in/out, one locked write path).
* ``MlflowResource``: MLflow tracking + registry with champion/challenger helpers.
* ``GitReposResource``: the list of repository paths a sensor watches.
* ``DataResource``: the real-data directory (``--data`` / ``KFORGE_DATA``), or embedded defaults.
* ``TextEncoderResource``: the pretrained sentence encoder (all-MiniLM-L6-v2), cached in the home.
* ``LLMResource``: a chat model: embedded SmolLM2-135M-Instruct (default, offline, in-process), an
  OpenAI-compatible server or Ollama; an API key comes from ``EnvVar("KFORGE_LLM_API_KEY")`` at launch.
"""

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from kforge.config import Paths, resolve_data_dir
from kforge.llm.base import Backend, LLMConfig, make_backend
from kforge.registry import Tracker
from kforge.storage import Warehouse
from kforge.text import TextEncoder


class WarehouseResource(ConfigurableResource):
    """DuckDB warehouse under ``home`` (empty: ``$KFORGE_HOME`` or ``./.kforge`` at run time)."""

    home: str = ""

    def paths(self) -> Paths:
        return Paths.of(self.home or None).ensure()

    def get(self) -> Warehouse:
        return Warehouse(self.paths().warehouse)


class MlflowResource(ConfigurableResource):
    """MLflow tracking and registry; defaults to sqlite + file artifacts under the kforge home."""

    home: str = ""
    tracking_uri: str = ""

    def tracker(self) -> Tracker:
        """The tracker, activated: plain ``mlflow`` calls in this process use the same store."""
        return Tracker(Paths.of(self.home or None), tracking_uri=self.tracking_uri).activate()


class GitReposResource(ConfigurableResource):
    """Repository paths to watch (the ``repository_sensor`` adds a partition per new path)."""

    paths: list[str] = []

    def existing(self) -> list[Path]:
        return [Path(p).expanduser().resolve() for p in self.paths if Path(p).expanduser().exists()]


class DataResource(ConfigurableResource):
    """Real data laid out like ``../shared/data``; empty means embedded defaults (demo data)."""

    data_dir: str = ""

    def root(self) -> Path | None:
        return resolve_data_dir(self.data_dir or None)

    def file(self, *parts: str) -> Path | None:
        root = self.root()
        if root is None:
            return None
        p = root.joinpath(*parts)
        return p if p.exists() else None


class TextEncoderResource(ConfigurableResource):
    """all-MiniLM-L6-v2 from its wheel, extracted once into the home; embeddings cached in the warehouse."""

    home: str = ""
    device: str = "cpu"
    batch_size: int = 32

    def encoder(self) -> TextEncoder:
        paths = Paths.of(self.home or None).ensure()
        return TextEncoder(paths, Warehouse(paths.warehouse), device=self.device, batch_size=self.batch_size)


class LLMResource(ConfigurableResource):
    """A chat model: embedded SmolLM2 (default), an OpenAI-compatible server, or Ollama."""

    backend: str = Field(default="embedded", description="embedded | openai | ollama")
    base_url: str = Field(default="", description="server URL for openai/ollama (ollama: http://127.0.0.1:11434)")
    model: str = Field(default="", description="model name the server knows (ignored by embedded)")
    api_key: str = Field(default="", description="bearer token for openai-compatible servers (use EnvVar)")
    timeout_s: float = Field(default=120.0, description="per-request timeout, seconds")
    device: str = Field(default="cpu", description="embedded model device")

    def config(self) -> LLMConfig:
        return LLMConfig(backend=self.backend, base_url=self.base_url, model=self.model, api_key=self.api_key,
                         timeout_s=self.timeout_s, device=self.device)

    def get(self) -> Backend:
        return make_backend(self.config())


def home_resources(home: str = "", data_dir: str = "") -> dict[str, ConfigurableResource]:
    """The resources of a code location, sharing one home setting (empty: ``$KFORGE_HOME`` or
    ``./.kforge`` at run time) and one data setting."""
    return {
        "warehouse": WarehouseResource(home=home),
        "mlflow": MlflowResource(home=home),
        "git_repos": GitReposResource(),
        "data": DataResource(data_dir=data_dir),
        "text_encoder": TextEncoderResource(home=home),
        "llm": LLMResource(),
    }
