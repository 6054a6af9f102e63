"""Clients for LLM servers over HTTP (stdlib ``urllib``; no new dependency).

* :class:`OpenAIBackend`: ``POST {base_url}/v1/chat/completions`` (OpenAI, vLLM, llama.cpp,
  LM Studio, ``kforge llm serve``);
* :class:`OllamaBackend`: ``POST {base_url}/api/generate`` with ``stream: false``.

Every failure (no server, a timeout, an HTTP error, a reply that is not the expected JSON) is one
:class:`~kforge.errors.InputError` naming the URL and what to do.
"""

import json
import urllib.error
import urllib.request
from typing import Any

from kforge.errors import InputError
from kforge.llm.base import Completion, GenParams


def _check_url(base_url: str) -> str:
    url = base_url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InputError(f"the LLM base URL must start with http:// or https://, got {base_url!r}")
    return url


def post_json(url: str, body: dict[str, Any], timeout_s: float, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """POST ``body`` as JSON and return the decoded JSON object (one clear error otherwise)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - the URL is checked above
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:200].decode(errors="replace").strip()
        raise InputError(f"the LLM server at {url} answered HTTP {exc.code} ({detail or exc.reason}): "
                         "check --model and the server's log") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
            raise InputError(f"the LLM server at {url} did not answer within {timeout_s:g} s: "
                             "use a smaller model or a longer timeout") from None
        raise InputError(f"cannot reach the LLM server at {url} ({reason}): start it, fix --base-url, "
                         "or use --backend embedded") from None
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"the LLM server at {url} answered with something that is not JSON "
                         f"({raw[:80]!r}): is --base-url an LLM server?") from None
    if not isinstance(data, dict):
        raise InputError(f"the LLM server at {url} answered JSON that is not an object: is --base-url an LLM server?")
    return data


def _field(data: dict[str, Any], url: str, *path: str | int) -> Any:
    cur: Any = data
    for key in path:
        try:
            cur = cur[key]
        except (KeyError, IndexError, TypeError):
            where = ".".join(str(p) for p in path)
            raise InputError(f"the LLM server at {url} answered JSON without {where}: "
                             "is it the API --backend names?") from None
    return cur


class OpenAIBackend:
    """An OpenAI-compatible chat-completions server."""

    name = "openai"

    def __init__(self, base_url: str, model: str, timeout_s: float = 120.0, api_key: str = "") -> None:
        self.base_url, self.model, self.timeout_s, self.api_key = _check_url(base_url), model, timeout_s, api_key

    def complete(self, system: str, user: str, params: GenParams) -> Completion:
        url = f"{self.base_url}/v1/chat/completions"
        body = {"model": self.model, "messages": [{"role": "system", "content": system},
                                                  {"role": "user", "content": user}],
                "max_tokens": params.max_tokens, "temperature": params.temperature, "seed": params.seed,
                "stream": False}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        data = post_json(url, body, self.timeout_s, headers)
        text = _field(data, url, "choices", 0, "message", "content")
        return Completion(str(text or ""), str(data.get("model") or self.model))


class OllamaBackend:
    """An Ollama server's ``/api/generate``."""

    name = "ollama"

    def __init__(self, base_url: str, model: str, timeout_s: float = 120.0) -> None:
        self.base_url, self.model, self.timeout_s = _check_url(base_url), model, timeout_s

    def complete(self, system: str, user: str, params: GenParams) -> Completion:
        url = f"{self.base_url}/api/generate"
        body = {"model": self.model, "system": system, "prompt": user, "stream": False,
                "options": {"num_predict": params.max_tokens, "temperature": params.temperature, "seed": params.seed}}
        data = post_json(url, body, self.timeout_s)
        return Completion(str(_field(data, url, "response") or ""), str(data.get("model") or self.model))
