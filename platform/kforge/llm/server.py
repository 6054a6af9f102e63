"""A small LLM server on 127.0.0.1 that speaks both the OpenAI chat API and Ollama's generate API.

It serves any :class:`~kforge.llm.base.Backend` (the embedded SmolLM2 by default), so the HTTP
clients are exercised against a real server: ``kforge llm serve`` runs it, the tests start it in
a thread.

Example::

    with LLMServer(EmbeddedBackend()) as srv:
        OpenAIBackend(srv.url, "any").complete("Be terse.", "Say hi.", GenParams(max_tokens=8))
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kforge.errors import InputError
from kforge.llm.base import Backend, GenParams


def _params(max_tokens: Any, temperature: Any, seed: Any) -> GenParams:
    p = GenParams(max_tokens=int(max_tokens if max_tokens is not None else 64),
                  temperature=float(temperature if temperature is not None else 0.0), seed=int(seed or 0))
    p.check()
    return p


def _chat(backend: Backend, body: dict[str, Any]) -> dict[str, Any]:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise InputError("messages must be a non-empty list")
    system = "\n".join(str(m.get("content", "")) for m in msgs if m.get("role") == "system")
    user = "\n".join(str(m.get("content", "")) for m in msgs if m.get("role") != "system")
    done = backend.complete(system, user, _params(body.get("max_tokens"), body.get("temperature"), body.get("seed")))
    return {"id": f"kforge-{time.time_ns()}", "object": "chat.completion", "created": int(time.time()),
            "model": done.model, "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": done.text}}]}


def _generate(backend: Backend, body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("prompt"), str):
        raise InputError("prompt must be a string")
    opts = body.get("options") or {}
    done = backend.complete(str(body.get("system") or ""), body["prompt"],
                            _params(opts.get("num_predict"), opts.get("temperature"), opts.get("seed")))
    return {"model": done.model, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "response": done.text, "done": True}


ROUTES = {"/v1/chat/completions": _chat, "/api/generate": _generate}


def _handler(backend: Backend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, obj: dict[str, Any]) -> None:
            raw = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": backend.model, "object": "model"}]})
            elif self.path == "/api/tags":
                self._send(200, {"models": [{"name": backend.model}]})
            else:
                self._send(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            route = ROUTES.get(self.path)
            if route is None:
                self._send(404, {"error": f"no route {self.path}"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if not isinstance(body, dict):
                    raise InputError("the request body must be a JSON object")
                self._send(200, route(backend, body))
            except (json.JSONDecodeError, InputError, ValueError, TypeError) as exc:
                self._send(400, {"error": str(exc)})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
            return

    return Handler


class LLMServer:
    """``backend`` served on ``host:port`` (port 0: any free port) from a daemon thread."""

    def __init__(self, backend: Backend, host: str = "127.0.0.1", port: int = 0) -> None:
        self.backend = backend
        if not 0 <= port <= 65535:
            raise InputError(f"--port must be within 0..65535 (0: any free port), got {port}")
        try:
            self.httpd = ThreadingHTTPServer((host, port), _handler(backend))
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port") from None
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LLMServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="kforge-llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "LLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
