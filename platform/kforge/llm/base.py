"""What every LLM backend shares: generation parameters, prompt templates, the recorded answer.

An answer records the backend, the model, the sha256 of the prompt template's text and the
generation parameters, so two scores are comparable exactly when those four agree.

Example::

    tpl = PromptTemplate("ask", system="You are terse.", user="{question}")
    ans = ask(make_backend(LLMConfig()), tpl, {"question": "What is an OOM kill?"}, GenParams(max_tokens=32))
    ans.text, ans.model, ans.template_hash, ans.params
"""

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from kforge.errors import InputError

BACKENDS = ("embedded", "openai", "ollama")
DEFAULT_URLS = {"ollama": "http://127.0.0.1:11434"}


@dataclass(frozen=True)
class GenParams:
    """Decoding parameters: greedy when ``temperature`` is 0 (the default, reproducible)."""

    max_tokens: int = 64
    temperature: float = 0.0
    seed: int = 0

    def check(self) -> None:
        if not 1 <= self.max_tokens <= 4096:
            raise InputError(f"max tokens must be within 1..4096, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise InputError(f"temperature must be within 0..2, got {self.temperature}")


@dataclass(frozen=True)
class Completion:
    """A backend's raw reply: the text and the model that says it produced it."""

    text: str
    model: str


class Backend(Protocol):
    """One way to reach a chat model."""

    name: str
    model: str

    def complete(self, system: str, user: str, params: GenParams) -> Completion: ...


@dataclass(frozen=True)
class PromptTemplate:
    """A named prompt with ``str.format`` fields; its hash is the sha256 of :attr:`text`."""

    name: str
    system: str
    user: str

    @property
    def text(self) -> str:
        return f"[system]\n{self.system}\n[user]\n{self.user}"

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def render(self, values: dict[str, Any]) -> tuple[str, str]:
        try:
            return self.system.format(**values), self.user.format(**values)
        except KeyError as exc:
            raise InputError(f"prompt template {self.name!r} needs the field {exc.args[0]!r}") from None


@dataclass(frozen=True)
class LLMAnswer:
    """An answer with its provenance."""

    text: str
    model: str
    backend: str
    template: str
    template_hash: str
    params: dict[str, Any]
    elapsed_s: float = field(default=0.0, compare=False)

    def provenance(self) -> dict[str, Any]:
        """What makes two answers comparable (everything but the text and the timing)."""
        return {"model": self.model, "backend": self.backend, "template": self.template,
                "template_hash": self.template_hash, "params": self.params}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ask(backend: Backend, template: PromptTemplate, values: dict[str, Any], params: GenParams | None = None) -> LLMAnswer:
    """Render ``template`` with ``values``, ask ``backend``, return the answer with its provenance."""
    params = params or GenParams()
    params.check()
    system, user = template.render(values)
    t0 = time.perf_counter()
    done = backend.complete(system, user, params)
    return LLMAnswer(text=done.text.strip(), model=done.model or backend.model, backend=backend.name,
                     template=template.name, template_hash=template.hash, params=asdict(params),
                     elapsed_s=round(time.perf_counter() - t0, 3))


@dataclass(frozen=True)
class LLMConfig:
    """Which backend to use. ``from_env`` reads ``KFORGE_LLM_BACKEND``, ``KFORGE_LLM_BASE_URL``,
    ``KFORGE_LLM_MODEL`` and ``KFORGE_LLM_API_KEY`` (the one place they are read)."""

    backend: str = "embedded"
    base_url: str = ""
    model: str = ""
    api_key: str = ""
    timeout_s: float = 120.0
    device: str = "cpu"

    @classmethod
    def from_env(cls, **overrides: Any) -> "LLMConfig":
        env = {"backend": os.environ.get("KFORGE_LLM_BACKEND", "") or "embedded",
               "base_url": os.environ.get("KFORGE_LLM_BASE_URL", ""),
               "model": os.environ.get("KFORGE_LLM_MODEL", ""),
               "api_key": os.environ.get("KFORGE_LLM_API_KEY", "")}
        env.update({k: v for k, v in overrides.items() if v not in (None, "")})
        return cls(**env)


def make_backend(cfg: LLMConfig) -> Backend:
    """The backend ``cfg`` names (nothing is loaded or contacted yet)."""
    if cfg.backend not in BACKENDS:
        raise InputError(f"unknown LLM backend {cfg.backend!r}; choose one of {', '.join(BACKENDS)}")
    if cfg.timeout_s <= 0:
        raise InputError(f"the LLM timeout must be positive, got {cfg.timeout_s:g}")
    if cfg.backend == "embedded":
        from kforge.llm.embedded import EmbeddedBackend

        return EmbeddedBackend(device=cfg.device)
    from kforge.llm.http import OllamaBackend, OpenAIBackend

    url = cfg.base_url or DEFAULT_URLS.get(cfg.backend, "")
    if not url:
        raise InputError(f"the {cfg.backend} backend needs a server: pass --base-url URL (or set KFORGE_LLM_BASE_URL)")
    if cfg.backend == "openai":
        return OpenAIBackend(url, cfg.model or "default", timeout_s=cfg.timeout_s, api_key=cfg.api_key)
    return OllamaBackend(url, cfg.model or "qwen2.5-coder:7b", timeout_s=cfg.timeout_s)
